"""Cosine transforms of layers with symmetric kernels and mirrored boundaries.

Along an axis with a symmetric kernel (:math:`h[c + j] = h[c - j]` about its centre
:math:`c`), stride 1 and symmetric pads :math:`p = \\delta (k - 1) / 2` (output
size :math:`n`):

- **replicate** padding with :math:`p \\le 1` is the half-sample symmetric
  extension, and the orthonormal DCT-II :math:`Q` diagonalises each block:
  :math:`H = Q^T \\Lambda Q`, :math:`\\lambda_f = \\sum_j h[j]\\cos(\\pi f (j - c)
  \\delta / n)`. Then :math:`A = (I \\otimes Q)^T \\hat\\Lambda (I \\otimes Q)`
  with :math:`\\hat\\Lambda(f)` the :math:`C_\\text{out} \\times C_\\text{in}`
  matrix of the :math:`\\lambda_{ij}(f)` per group, and the Tikhonov normal
  equations decouple exactly, frequency by frequency (:func:`cosine_solve`);
- **reflect** padding (the whole-sample mirror, any :math:`p < n`) is the
  even extension of period :math:`2(n - 1)`: the DCT-I basis
  :math:`V_{jf} = \\cos(\\pi f j / (n - 1))` diagonalises each block,
  :math:`H = V \\Lambda V^{-1}` with :math:`\\lambda_f = \\sum_j h[j]\\cos(\\pi f
  (j - c)\\delta / (n - 1))`, but :math:`V` is orthogonal only in the weighted
  inner product :math:`W = \\mathrm{diag}(\\tfrac12, 1, \\dots, 1, \\tfrac12)`:
  :math:`V^T W V = D` diagonal. So :math:`A^T A` is not diagonalised, but
  :math:`P = A^H W A + d^2 W = V^{-T} D (\\hat\\Lambda^H \\hat\\Lambda + d^2 I)
  V^{-1}` is, and :math:`2^{-a} I \\preceq W \\preceq I` (:math:`a` axes of size
  at least 2) gives :math:`P \\preceq A^H A + d^2 I \\preceq 2^a P`: conjugate
  gradients preconditioned by :math:`P^{-1}` see a condition number of at most
  :math:`2^a` (4 for images), whatever ``damp`` (:func:`cosine_preconditioner`).

Every axis of the layer must qualify; :func:`cosine_class` says which transform
applies, or why none does. For other convs with stride 1 and centred pads (zero
padding, wider replicate pads, kernels that are not symmetric),
:func:`preconditioner_transform` takes the DCT-II form all the same: since
:math:`\\cos` is even, :math:`\\lambda_f` above is the symbol of the kernel's
symmetric part :math:`\\tfrac12 (h[c + j] + h[c - j])` (per axis) with the
half-sample symmetric boundary, Ng, Chan and Tang's preconditioner (SISC 21,
1999), exact for none of these layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..layers.conv import ConvOperator
from .algebra import (
    FrequencyStack,
    cache_key,
    check_stacks_budget,
    damped_residual,
    minimum_norm_solve,
    normal_inverses,
    solution_operators,
)
from .dct import dct1_norms, dct1_weights, from_frequencies, reversed_order, to_frequencies
from .diagonal import FormChoice
from .eigen import HermitianEigen, is_hermitian, singular_coefficients, symmetric_eigen
from .gradient import cosine_laplacian

__all__ = [
    "CosineForm",
    "cosine_class",
    "cosine_eigen",
    "cosine_form",
    "cosine_inverses",
    "cosine_preconditioner",
    "cosine_symbols",
    "cosine_vector",
    "preconditioner_transform",
]


def cosine_form(op: ConvOperator) -> FormChoice:
    """The layer's cosine form: the DCT-II's (exact) or the DCT-I's (bounding, with why it
    is not exact) where :func:`cosine_class` gives one, else none and why."""
    kind, why = cosine_class(op)
    return FormChoice(None if kind is None else CosineForm(op, kind), why)


@dataclass(frozen=True)
class CosineForm:
    """The :class:`~.diagonal.DiagonalForm` of a layer of :func:`cosine_class` ``kind``:
    exact for the DCT-II, bounding for the DCT-I (in its weighted norm)."""

    op: ConvOperator
    basis: str

    @property
    def exact(self) -> bool:
        return self.basis == "dct2"

    def solve(self, b, damp, x0, *, max_bytes=None):
        return cosine_solve(self.op, b, damp, x0, max_bytes=max_bytes)

    def normal_inverse(self, damp, *, penalty=0.0, max_bytes=None):
        return cosine_preconditioner(self.op, damp, penalty=penalty, max_bytes=max_bytes)

    def damp_spectrum(self, b):
        """In the DCT-II's coordinates, or the DCT-I's in its weighted norm (which counts
        the edge samples of reflect padding by half)."""
        b_hat = cosine_vector(self.op, b)
        eigen = cosine_eigen(self.op, self.basis)  # kept by the layer for the preconditioner
        if eigen is not None:
            return eigen.singular_values(), eigen.coefficients(b_hat), b_hat, 1
        return (*singular_coefficients(cosine_symbols(self.op, self.basis), b_hat), b_hat, 1)


def cosine_class(op: ConvOperator) -> tuple[str | None, str]:
    """``("dct2", "")`` for the exact class, ``("dct1", why)`` for reflect layers the
    DCT-I preconditions (``why`` says why they are not exact), ``(None, why)`` else."""
    g = op.geometry
    why = _not_centred(op)
    if why:
        return None, why
    if g.padding_mode not in ("replicate", "reflect"):
        return None, f"padding_mode={g.padding_mode!r} is neither replicate nor reflect"
    weight = np.asarray(op.weight)
    for axis, (pb, _) in enumerate(g.pads):
        if not np.array_equal(weight, np.flip(weight, axis=2 + axis)):
            o, i = np.argwhere(
                (weight != np.flip(weight, axis=2 + axis)).reshape(*weight.shape[:2], -1).any(-1)
            )[0]
            return None, f"kernel h_{o + 1}{i + 1} is not symmetric along axis {axis + 1}"
        if g.padding_mode == "replicate" and pb > 1:
            return None, f"replicate pad {pb} > 1 along axis {axis + 1} (exact for pads <= 1)"
    if g.padding_mode == "replicate":
        return "dct2", ""
    return "dct1", "reflect padding: the DCT-I diagonalises A but not A^H A"


def preconditioner_transform(op: ConvOperator) -> tuple[str | None, str]:
    """The transform of :func:`cosine_preconditioner`: :func:`cosine_class`'s where it
    has one; else ``"dct2"`` (Ng, Chan and Tang's Neumann form of the kernel's
    symmetric part) for any other conv with stride 1 and centred pads but a circular
    one; with ``why`` (``None`` and why not, otherwise)."""
    kind, why = cosine_class(op)
    if kind is not None:
        return kind, why
    not_centred = _not_centred(op)
    if not_centred:
        return None, not_centred
    if op.geometry.padding_mode == "circular":
        return None, "padding_mode='circular' (the DFT inverts its normal equations exactly)"
    return "dct2", f"the Neumann form of the kernel's symmetric part ({why})"


def _not_centred(op: ConvOperator) -> str:
    """Why the layer is not a conv with stride 1 and centred pads (``""`` if it is)."""
    g = op.geometry
    if op.transposed:
        return "a conv-transpose (the cosine forms are built for convs)"
    for axis, (k, s, dil, (pb, pa)) in enumerate(zip(g.kernel, g.stride, g.dilation, g.pads)):
        if s != 1:
            return f"stride {s} along axis {axis + 1} (the cosine forms need stride 1)"
        if k % 2 == 0 or pb != pa or pb != dil * (k - 1) // 2:
            return (
                f"the pads {(pb, pa)} along axis {axis + 1} do not centre the kernel of size "
                f"{k} (they must be dilation * (k - 1) / 2 on both sides, k odd)"
            )
    return ""


def _symbols(op: ConvOperator, kind: str) -> np.ndarray:
    """``(groups, F, C_out/G, C_in/G)``: the cosine symbol of every kernel pair, the
    frequencies in :func:`to_frequencies`'s order."""
    g = op.geometry
    weight = np.asarray(op.weight)
    spectrum = weight.astype(np.result_type(weight, np.float64))
    axes = list(enumerate(zip(g.input_spatial, g.kernel, g.dilation)))
    reverse = reversed_order(kind)
    for axis, (n, k, dil) in reversed(axes) if reverse else axes:
        period = n if kind == "dct2" else max(n - 1, 1)
        lags = (np.arange(k) - (k - 1) // 2) * dil
        table = np.cos(np.pi * np.arange(n)[:, None] * lags[None, :] / period)  # (n, k)
        # tensordot appends the frequency axis after the remaining tap axes
        tap = 2 + axis if reverse else 2
        spectrum = np.tensordot(spectrum, table, axes=([tap], [1]))
    c_out, c_group = weight.shape[:2]
    flat = spectrum.reshape(c_out, c_group, -1)
    groups = g.groups
    per_group = flat.reshape(groups, c_out // groups, c_group, -1)
    return np.moveaxis(per_group, -1, 1)


def cosine_solve(
    op: ConvOperator, b: np.ndarray, damp: float, x0: np.ndarray | None, max_bytes=None
) -> tuple[np.ndarray, float | None]:
    """The exact Tikhonov minimiser of a layer of the DCT-II class (flat vectors) and,
    for ``damp > 0``, its residual :math:`\\|A x - b\\| = \\|\\hat\\Lambda \\hat x - \\hat b\\|`
    (the DCT-II is orthonormal; ``None`` for ``damp = 0``); with ``damp > 0`` the
    per-frequency solution operators are kept by the layer, as in
    :func:`~.fourier.fourier_solve`."""
    g = op.geometry
    b_hat = to_frequencies(b, op.output_shape, g.groups, "dct2")
    if damp == 0:
        symbols = _checked_symbols(op, "dct2", max_bytes)
        x_hat = minimum_norm_solve(symbols, b_hat)
        return from_frequencies(x_hat, op.input_shape, "dct2"), None
    key = cache_key(op, "tikhonov-cosine", float(damp))
    symbols, solution = op.layer.cached(key, lambda: _solved(op, damp, max_bytes))
    x0_hat = None if x0 is None else to_frequencies(x0, op.input_shape, g.groups, "dct2")
    x_hat, residual = damped_residual(symbols, solution, b_hat, x0_hat)
    return from_frequencies(x_hat, op.input_shape, "dct2"), residual


def cosine_preconditioner(op: ConvOperator, damp: float, *, penalty: float = 0.0, max_bytes=None):
    """The map :math:`v \\mapsto P^{-1} v` of the module's text (DCT-II: the exact inverse of
    :math:`A^H A + d^2 I`; DCT-I: of :math:`A^H W A + d^2 W`), ``damp > 0``; its
    per-frequency inverses are kept by the layer. With a ``penalty`` :math:`\\rho > 0`,
    of :math:`A^H A + \\rho D^T D + d^2 I` (:math:`D` the Neumann gradient of
    :mod:`.gradient`; for the DCT-I, :math:`P` adds :math:`\\rho \\sum_a W_{-a} \\otimes
    D_a^T D_a`, within the same factor :math:`2^a`)."""
    kind, why = preconditioner_transform(op)
    if kind is None:
        raise ValueError(f"no cosine preconditioner: {why}")
    g = op.geometry
    inverses = cosine_inverses(op, kind, damp, penalty=penalty, max_bytes=max_bytes)
    norms = dct1_norms(g.input_spatial)[None, :, None] if kind == "dct1" else None

    def apply(v: np.ndarray) -> np.ndarray:
        solved = inverses.apply(to_frequencies(v, op.input_shape, g.groups, kind))
        if norms is not None:  # D^-1 of the DCT-I (no pass for the DCT-II)
            solved /= norms
        return from_frequencies(solved, op.input_shape, kind)

    return apply


def cosine_inverses(
    op: ConvOperator, kind: str, damp: float, *, penalty: float = 0.0, max_bytes=None
) -> FrequencyStack:
    """:math:`(\\Lambda^H \\Lambda + \\rho \\lambda_L + d^2 I)^{-1}` per frequency for the
    layer's ``kind`` symbols (``damp > 0``; :math:`\\lambda_L` the Laplacian's eigenvalues
    of :func:`~.gradient.cosine_laplacian`, :math:`\\rho` the ``penalty``), kept by the
    layer: from its eigendecomposition of the symbols where they are Hermitian and
    there is no penalty, else by Cholesky."""
    key = cache_key(op, "cosine-inverses", kind, float(damp), float(penalty))
    return op.layer.cached(key, lambda: _normal_inverses(op, kind, damp, penalty, max_bytes))


def _normal_inverses(op: ConvOperator, kind: str, damp: float, penalty: float, max_bytes):
    if penalty > 0:  # [Lambda; sqrt(rho lambda_L) I]: its Gram adds the penalty
        symbols = _checked_symbols(op, kind, max_bytes)
        laplacian = cosine_laplacian(op.geometry.input_spatial, kind)
        cols = symbols.shape[-1]
        rows = np.sqrt(penalty * laplacian)[None, :, None, None] * np.eye(cols)
        rows = np.broadcast_to(rows, (symbols.shape[0], *rows.shape[1:]))
        stacked = np.concatenate([symbols, rows], axis=2)
        return normal_inverses(stacked, damp, max_bytes=max_bytes)
    eigen = cosine_eigen(op, kind, max_bytes=max_bytes)
    if eigen is not None:
        return eigen.normal_inverses(damp)
    return normal_inverses(_checked_symbols(op, kind, max_bytes), damp, max_bytes=max_bytes)


def cosine_eigen(op: ConvOperator, kind: str, *, max_bytes=None) -> HermitianEigen | None:
    """The eigendecomposition of the layer's ``kind`` (``"dct2"`` or ``"dct1"``) symbols
    where they are Hermitian (symmetric channel mixing of symmetric kernels), else
    ``None``; kept by the layer, for :func:`~.parameters.choose_damp` and the
    preconditioner at every damp."""
    key = cache_key(op, "cosine-eigen", kind)
    return op.layer.cached(key, lambda: _hermitian_eigen(op, kind, max_bytes))


def _hermitian_eigen(op: ConvOperator, kind: str, max_bytes) -> HermitianEigen | None:
    if not _hermitian_mixing(op):  # the symbols cannot be Hermitian: none computed
        return None
    symbols = _checked_symbols(op, kind, max_bytes)  # Hermitian unless rounding differs
    return symmetric_eigen(symbols) if is_hermitian(symbols) else None


def _hermitian_mixing(op: ConvOperator) -> bool:
    """Whether every group's kernels satisfy :math:`h_{ij} = \\overline{h_{ji}}` exactly."""
    g = op.geometry
    if g.out_per_group != g.in_per_group:
        return False
    weight = np.asarray(op.weight)
    blocks = weight.reshape(g.groups, g.out_per_group, *weight.shape[1:])
    return np.array_equal(blocks, np.conj(np.swapaxes(blocks, 1, 2)))


def _solved(op: ConvOperator, damp: float, max_bytes):
    """The DCT-II symbols (as a stack) and their solution operators
    (:func:`~.algebra.solution_operators`)."""
    symbols = _checked_symbols(op, "dct2", max_bytes)
    return FrequencyStack.of(symbols), solution_operators(symbols, damp, max_bytes=max_bytes)


def _checked_symbols(op: ConvOperator, kind: str, max_bytes) -> np.ndarray:
    g = op.geometry
    rows, cols = g.out_per_group, g.in_per_group
    check_stacks_budget(
        g.groups,
        math.prod(g.input_spatial),
        rows * cols + 2 * cols * cols,
        f"cosine symbols and their inverses of a {op.shape} layer",
        max_bytes,
    )
    return _symbols(op, kind)


def cosine_coordinates(
    op: ConvOperator, v: np.ndarray, *, side: str = "output"
) -> tuple[np.ndarray, np.ndarray]:
    """The symbols ``(groups, F, rows, cols)`` and ``v`` (an output vector, or an input one
    with ``side="input"``) in coordinates where the layer is those symbols and the
    (weighted) norm is the Euclidean one: the orthonormal DCT-II, or
    :math:`D^{-1/2} V^T W v` for the DCT-I (:math:`\\|v\\|_W` preserved)."""
    v_hat = cosine_vector(op, v, side=side)
    return cosine_symbols(op, cosine_class(op)[0]), v_hat


def cosine_symbols(op: ConvOperator, kind: str, *, max_bytes=None) -> np.ndarray:
    """The layer's ``kind`` (``"dct2"`` or ``"dct1"``) symbols ``(groups, F, rows, cols)``."""
    return _checked_symbols(op, kind, max_bytes)


def cosine_vector(op: ConvOperator, v: np.ndarray, *, side: str = "output") -> np.ndarray:
    """``v`` in the coordinates of :func:`cosine_coordinates`, ``(groups, F, C / groups)``."""
    kind, why = cosine_class(op)
    if kind is None:
        raise ValueError(f"no cosine form: {why}")
    g = op.geometry
    shape = op.output_shape if side == "output" else op.input_shape
    if kind == "dct2":
        return to_frequencies(v, shape, g.groups, "dct2")
    weighted = v.reshape(shape) * dct1_weights(shape[1:])
    v_hat = to_frequencies(weighted, shape, g.groups, "dct1")  # V^T W v
    norms = dct1_norms(shape[1:])[None, :, None]
    return v_hat / np.sqrt(norms)
