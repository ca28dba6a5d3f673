"""Exact Tikhonov solves of circular layers, frequency by frequency.

A conv layer with circular padding and a stride :math:`s` that divides the size
:math:`n` (output :math:`M = n / s`) is block-diagonalised by the DFT after the
polyphase split: with :math:`\\hat x(f)` the DFTs of the :math:`s^d` polyphase
components of every input channel and :math:`\\hat y(f)` the DFT of every output
channel, :math:`\\hat y(f) = \\hat W(f) \\hat x(f)` at each of the :math:`M^d`
frequencies (:func:`toeplitz_conv.spectra.spectral.frequency_matrices`), group by
group. Both transforms are the unnormalised DFT on :math:`M^d` points, so the
normal equations decouple the same way:

.. math::

    (\\hat W^H \\hat W + d^2 I)\\, \\hat x = \\hat W^H \\hat b + d^2 \\hat x_0
    \\iff \\hat x = \\hat x_0 + \\hat W^H (\\hat W \\hat W^H + d^2 I)^{-1}
    (\\hat b - \\hat W \\hat x_0),

the second form (push-through) used when :math:`\\hat W` has fewer rows than
columns, so each solve is of size :math:`\\min(C_\\text{out}, C_\\text{in} s^d)` per
group. A conv-transpose :math:`T = \\bar A^H` (the conv with the conjugate weight,
adjoint) has :math:`\\hat T(f) = \\hat W_{\\bar w}(f)^H`, with the two transforms
exchanged. With ``damp = 0`` the solution is the minimum-norm least-squares one,
each frequency's singular values below :math:`\\max(m, n)\\,\\epsilon\\,\\sigma_{\\max}`
(of the whole layer) counted as zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft

from ..core.geometry import Geometry
from ..core.jit import fft_workers
from ..layers.conv import ConvOperator
from ..spectra.spectral import fft_covers, frequency_matrices
from .algebra import (
    cache_key,
    damped_solution,
    minimum_norm_solve,
    normal_inverses,
    solution_operators,
)
from .diagonal import FormChoice
from .eigen import fft_rounding, singular_coefficients
from .gradient import fourier_gradient_symbols

__all__ = [
    "FourierForm",
    "fourier_applicable",
    "fourier_form",
    "fourier_solve",
    "normal_inverse",
]


def fourier_applicable(op: ConvOperator) -> bool:
    """Whether the layer is circular with stride dividing the size (its whole matrix: a
    conv-transpose with ``output_padding >= stride`` is a submatrix, not applicable)."""
    return fft_covers(op)


def fourier_form(op: ConvOperator) -> FormChoice:
    """The layer's DFT form where :func:`fourier_applicable` holds (exact), else none
    and why."""
    if fourier_applicable(op):
        return FormChoice(FourierForm(op))
    g = op.geometry
    if g.padding_mode != "circular":
        return FormChoice(None, f"padding_mode={g.padding_mode!r} is not circular")
    return FormChoice(
        None,
        f"the stride {g.stride} does not divide the size {g.input_spatial} (with output "
        "size n / stride), or the conv-transpose is a submatrix",
    )


@dataclass(frozen=True)
class FourierForm:
    """The exact :class:`~.diagonal.DiagonalForm` of a circular layer: the polyphase DFT."""

    op: ConvOperator
    basis: str = "dft"
    exact: bool = True

    def solve(self, b, damp, x0, *, max_bytes=None):
        return fourier_solve(self.op, b, damp, x0, max_bytes=max_bytes), None

    def normal_inverse(self, damp, *, penalty=0.0, max_bytes=None):
        return normal_inverse(self.op, damp, penalty=penalty, max_bytes=max_bytes)

    def damp_spectrum(self, b):
        form = frequency_form(self.op)
        b_hat = form.output_hat(b)
        rounding = fft_rounding(b_hat.shape[1])
        return (*singular_coefficients(form.symbols, b_hat, rounding), b_hat, b_hat.shape[1])


@dataclass(frozen=True)
class FrequencyForm:
    """A layer :func:`fourier_applicable` holds for, frequency by frequency:
    :math:`\\widehat{A x}(f) = K(f)\\, \\hat x(f)` per group.

    Attributes
    ----------
    op : Conv or ConvTranspose
    symbols : numpy.ndarray
        ``(groups, F, rows, cols)``: :math:`K(f)` (:math:`\\hat W(f)` for a conv, the
        conjugate symbol's adjoint for a conv-transpose).
    half : bool
        Real transforms: only the frequencies of the last axis up to :math:`M/2` (the
        others are their conjugates, for a real layer on real vectors).
    """

    op: ConvOperator
    symbols: np.ndarray
    half: bool = False

    def input_hat(self, x: np.ndarray) -> np.ndarray:
        """``(groups, F, cols)``: a flat input vector in the frequency domain."""
        g = self.op.geometry
        transform = _plain_hat if self.op.transposed else _polyphase_hat
        return _grouped(transform(x.reshape(self.op.input_shape), g, self.half), g.groups)

    def output_hat(self, y: np.ndarray) -> np.ndarray:
        """``(groups, F, rows)``: a flat output vector in the frequency domain."""
        g = self.op.geometry
        transform = _polyphase_hat if self.op.transposed else _plain_hat
        return _grouped(transform(y.reshape(self.op.output_shape), g, self.half), g.groups)

    def input_from_hat(self, x_hat: np.ndarray, complex_: bool) -> np.ndarray:
        """The flat input vector of ``(groups, F, cols)`` (real unless ``complex_``)."""
        g = self.op.geometry
        inverse = _plain_unhat if self.op.transposed else _polyphase_unhat
        x = inverse(_ungrouped(x_hat), g, self.op.input_shape, self.half)
        return (x if complex_ else x.real).reshape(-1)


def frequency_form(op: ConvOperator, *, max_bytes=None, half: bool = False) -> FrequencyForm:
    """The layer's :class:`FrequencyForm` (its symbols' bytes checked against the budget);
    ``half`` for a real layer applied to real vectors only."""
    g = op.geometry
    weight = np.asarray(op.weight)
    if op.transposed:  # T = conj(A)^H: per frequency the conjugate transpose
        adjoint = frequency_matrices(g, np.conj(weight), max_bytes=max_bytes, half=half)
        symbols = np.swapaxes(np.conj(adjoint), -1, -2)
    else:
        symbols = frequency_matrices(g, weight, max_bytes=max_bytes, half=half)
    return FrequencyForm(op, symbols, half)  # frequency-last in memory, as the solves want


def fourier_solve(
    op: ConvOperator, b: np.ndarray, damp: float, x0: np.ndarray | None, max_bytes=None
) -> np.ndarray:
    """The exact minimiser of :math:`\\|A x - b\\|^2 + d^2 \\|x - x_0\\|^2` (flat vectors).

    With ``damp > 0`` the per-frequency solution operators
    :math:`R(f) = (K^H K + d^2 I)^{-1} K^H` are computed once per (layer, view, damp)
    and kept by the layer (:meth:`~toeplitz_conv.Layer.cached`), so that a later solve
    with the same damp (the proximal steps of an ADMM loop) costs two FFTs and one
    small product per frequency.
    """
    complex_ = np.iscomplexobj(op.weight) or np.iscomplexobj(b) or np.iscomplexobj(x0)
    half = not complex_
    if damp == 0:
        form = frequency_form(op, max_bytes=max_bytes, half=half)
        return form.input_from_hat(minimum_norm_solve(form.symbols, form.output_hat(b)), complex_)
    key = cache_key(op, "tikhonov-fourier", half, float(damp))
    form, solution = op.layer.cached(key, lambda: _solution_operators(op, damp, half, max_bytes))
    x0_hat = None if x0 is None else form.input_hat(x0)
    x_hat = damped_solution(form.symbols, solution, form.output_hat(b), x0_hat)
    return form.input_from_hat(x_hat, complex_)


def _solution_operators(op: ConvOperator, damp: float, half: bool, max_bytes):
    """The form and :math:`R(f)` (:func:`~.algebra.solution_operators`)."""
    form = frequency_form(op, max_bytes=max_bytes, half=half)
    return form, solution_operators(form.symbols, damp, max_bytes=max_bytes)


def normal_inverse(op: ConvOperator, damp: float, *, penalty: float = 0.0, max_bytes=None):
    """The map :math:`v \\mapsto (A^H A + \\rho D^T D + d^2 I)^{-1} v` of a layer
    :func:`fourier_applicable` holds for (:math:`D` the periodic gradient of
    :mod:`.gradient`, :math:`\\rho` the ``penalty``), ``damp > 0`` or ``penalty > 0``
    with the symbols nonsingular: the per-frequency inverses are computed once per
    (view, damp, penalty) and kept by the layer (their bytes checked against the
    budget); a call costs two FFTs (real ones for a real layer on real vectors) and
    small products."""
    real = not np.iscomplexobj(op.weight)

    def inverses(half: bool):
        key = cache_key(op, "normal-inverse", half, float(damp), float(penalty))
        return op.layer.cached(key, lambda: _inverses(op, damp, penalty, half, max_bytes))

    inverses(real)  # built now (and its memory checked), not at the first product

    def apply(v: np.ndarray) -> np.ndarray:
        half = real and not np.iscomplexobj(v)
        form, matrices = inverses(half)
        return form.input_from_hat(matrices.apply(form.input_hat(v)), not half)

    return apply


def _inverses(op: ConvOperator, damp: float, penalty: float, half: bool, max_bytes):
    form = frequency_form(op, max_bytes=max_bytes, half=half)
    symbols = form.symbols
    if penalty > 0:  # [K; sqrt(rho) G]: its Gram is K^H K + rho G^H G
        symbols = np.concatenate([symbols, _gradient_rows(op, penalty, half)], axis=2)
    return form, normal_inverses(symbols, damp, max_bytes=max_bytes)


def _gradient_rows(op: ConvOperator, penalty: float, half: bool) -> np.ndarray:
    """``(groups, F, d * cols, cols)``: :math:`\\sqrt\\rho` times the periodic gradient
    of every channel of a group, in the form's input coordinates (column ``c P + r``)."""
    g = op.geometry
    one = fourier_gradient_symbols(g, op.transposed, half)  # (F, d P, P)
    channels = g.out_per_group if op.transposed else g.in_per_group
    count, rows, phases = one.shape
    axes, eye = rows // phases, np.eye(channels)
    blocks = one.reshape(count, axes, phases, phases)
    stacked = np.einsum("fapq,ij->faipjq", blocks, eye).reshape(
        count, axes * channels * phases, channels * phases
    )
    return np.broadcast_to(math.sqrt(penalty) * stacked, (g.groups, *stacked.shape))


def _spatial_axes(d: int) -> tuple[int, ...]:
    return tuple(range(-d, 0))


def _coarse(g: Geometry) -> tuple[int, ...]:
    return tuple(n // s for n, s in zip(g.input_spatial, g.stride))


def _forward(array: np.ndarray, d: int, half: bool) -> np.ndarray:
    axes = _spatial_axes(d)
    transform = scipy.fft.rfftn if half else scipy.fft.fftn
    return transform(array, axes=axes, workers=fft_workers(array))


def _backward(spectrum: np.ndarray, d: int, coarse, half: bool) -> np.ndarray:
    axes = _spatial_axes(d)
    if half:
        return scipy.fft.irfftn(spectrum, s=coarse, axes=axes, workers=fft_workers(spectrum))
    return scipy.fft.ifftn(spectrum, axes=axes, workers=fft_workers(spectrum))


def _spectrum_shape(coarse, half: bool) -> tuple[int, ...]:
    return (*coarse[:-1], coarse[-1] // 2 + 1) if half else tuple(coarse)


def _plain_hat(y: np.ndarray, g: Geometry, half: bool) -> np.ndarray:
    """``(C, *M)`` to ``(C, 1, F)``: every channel's DFT on the coarse grid."""
    return _forward(y, g.ndim, half).reshape(y.shape[0], 1, -1)


def _plain_unhat(y_hat: np.ndarray, g: Geometry, shape, half: bool) -> np.ndarray:
    coarse = _coarse(g)
    spectrum = y_hat.reshape(shape[0], *_spectrum_shape(coarse, half))
    return _backward(spectrum, g.ndim, coarse, half)


def _polyphase_hat(x: np.ndarray, g: Geometry, half: bool) -> np.ndarray:
    """``(C, *n)`` to ``(C, P, F)``: the DFT of each polyphase component ``x[c, s m + r]``."""
    d, s = g.ndim, g.stride
    coarse = tuple(n // si for n, si in zip(x.shape[1:], s))
    split = x.reshape(x.shape[0], *(v for pair in zip(coarse, s) for v in pair))
    order = (0, *range(2, 2 * d + 1, 2), *range(1, 2 * d, 2))  # c, phases, coarse
    phases = split.transpose(order).reshape(x.shape[0], math.prod(s), *coarse)
    return _forward(phases, d, half).reshape(x.shape[0], math.prod(s), -1)


def _polyphase_unhat(x_hat: np.ndarray, g: Geometry, shape, half: bool) -> np.ndarray:
    d, s = g.ndim, g.stride
    coarse = tuple(n // si for n, si in zip(shape[1:], s))
    spectrum = x_hat.reshape(shape[0], *s, *_spectrum_shape(coarse, half))
    phases = _backward(spectrum, d, coarse, half)
    order = [0]
    for axis in range(d):  # back to (c, m1, r1, m2, r2, ...)
        order += [1 + d + axis, 1 + axis]
    return phases.transpose(order).reshape(shape)


def _grouped(hat: np.ndarray, groups: int) -> np.ndarray:
    """``(C, P, F)`` to ``(groups, F, C / groups * P)``: column ``c * P + r`` as the symbols."""
    channels, phases, frequencies = hat.shape
    per_group = channels // groups
    return hat.reshape(groups, per_group * phases, frequencies).transpose(0, 2, 1)


def _ungrouped(grouped: np.ndarray) -> np.ndarray:
    groups, frequencies, columns = grouped.shape
    return grouped.transpose(0, 2, 1).reshape(-1, frequencies)
