"""Preconditioners of a layer's Tikhonov normal equations.

``"circulant"`` is T. Chan's optimal block circulant :math:`C` of the layer
(:func:`circulant_counterpart`: the circular layer nearest to :math:`A` in the
Frobenius norm, for each pair of channels, with the groups block-diagonal and
strides by polyphase). Its normal equations are inverted exactly, frequency by
frequency (:func:`~.fourier.normal_inverse`), so that

.. math::

    M = (C^H C + d^2 I)^{-1} \\approx (A^H A + d^2 I)^{-1},

symmetric positive definite for every ``damp > 0``; for a circular layer
:math:`C = A` and :math:`M` is the exact inverse.

``"cosine"`` is the cosine form of :mod:`~.cosine`: the exact inverse for
replicate padding of at most 1 with symmetric kernels, the DCT-I bracket for
reflect padding with symmetric kernels (condition number at most :math:`2^a`),
and otherwise (zero or wider replicate pads, kernels that are not symmetric; stride
1 and centred pads) Ng, Chan and Tang's: the matrix of the kernels' symmetric
parts with the half-sample symmetric (Neumann) boundary, which the DCT-II
diagonalises.

Outside their exact cases, :math:`A - C` is confined to the rows that read the
pads, but the mismatch is magnified by :math:`1 / d^2` on the frequencies where
the symbol is small: either preconditioner can then be slower than none (a known
limit of circulant and cosine preconditioners for Toeplitz problems), which is
why :func:`~.tikhonov.solve_tikhonov` does not apply them on its own.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse.linalg as spla

from ..core.errors import ParameterError, ParameterTypeError
from ..core.memory import MatrixTooLargeError, checked_max_bytes
from ..core.weights import times_power_of_two
from ..layers.conv import ConvOperator
from .algebra import cache_key
from .checks import checked_operator, real_number
from .cosine import cosine_preconditioner, preconditioner_transform
from .forms import diagonal_form
from .fourier import fourier_applicable
from .scaling import layer_in_range

__all__ = [
    "checked_choice",
    "chosen_preconditioner",
    "circulant_counterpart",
    "preconditioner",
    "preconditioner_used",
    "runs_in_dct1_coordinates",
]

KINDS = ("auto", "form", "circulant", "cosine")


def circulant_counterpart(op: ConvOperator) -> ConvOperator | None:
    """T. Chan's optimal block circulant of the layer: the circular layer :math:`C`
    nearest to :math:`A` in the Frobenius norm, when the layer's output is
    ``n / stride`` with the stride dividing ``n`` (else ``None``).

    Per axis, the matrix entries of tap :math:`t` are projected onto the offset
    classes :math:`o = (j - s i) \\bmod n` of a circular strided layer,

    .. math::

        c_o = \\frac{1}{m} \\sum_{i=0}^{m-1} A_{i,\\,(s i + o) \\bmod n},

    so that a tap reaching past the boundary of a zero-padded layer is weighted by
    the fraction :math:`(n - |o|) / n` of rows where it reads the input (stride 1),
    folded reads of reflect and replicate padding move to the class they land in, and
    a circular layer is its own counterpart. The projection is separable, so a
    :math:`d`-axis tap's weight is the product of its axes' (T. Chan and Olkin's
    multilevel optimal circulant, taken block by block: each pair of channels, the
    groups block-diagonal, strides by polyphase).

    The counterpart is built once per view and kept by the layer, so that its own
    factorizations (:func:`~.fourier.normal_inverse`) serve every later call.
    """
    key = cache_key(op, "circulant-counterpart")
    return op.layer.cached(key, lambda: _counterpart(op))


def _counterpart(op: ConvOperator) -> ConvOperator | None:
    g = op.geometry
    if g.output_spatial != tuple(n // s for n, s in zip(g.input_spatial, g.stride)) or any(
        n % s for n, s in zip(g.input_spatial, g.stride)
    ):
        return None
    weight = np.asarray(op.weight)
    reaches = []
    for axis in range(g.ndim):
        projection, reach = _axis_projection(g, axis)
        weight = np.moveaxis(np.tensordot(weight, projection, axes=([2 + axis], [0])), -1, 2 + axis)
        reaches.append(reach)
    twin = op.with_weight(weight, padding=tuple(reaches), dilation=1, padding_mode="circular")
    return twin if twin.shape == op.shape and fourier_applicable(twin) else None


def _axis_projection(g, axis: int) -> tuple[np.ndarray, int]:
    """``(k, 2 r + 1)``: the share of the ``m`` rows in which tap ``t`` reads offset class
    ``o - r`` (classes in ``[-n/2, n/2)``), and the reach ``r`` of the classes read."""
    n, s = g.input_spatial[axis], g.stride[axis]
    index = g.axis_index_map(axis)
    m, k = index.shape
    read = index >= 0
    offsets = np.mod(index - s * np.arange(m)[:, None] + n // 2, n) - n // 2
    reach = int(np.abs(offsets[read]).max(initial=0))
    taps = np.broadcast_to(np.arange(k), index.shape)
    counts = np.zeros((k, 2 * reach + 1))
    np.add.at(counts, (taps[read], offsets[read] + reach), 1.0)
    return counts / m, reach


def preconditioner(
    op: ConvOperator, damp: float, *, kind: str = "auto", max_bytes: int | None = None
) -> spla.LinearOperator:
    """An SPD approximation of :math:`(A^H A + \\text{damp}^2 I)^{-1}`, for
    :func:`scipy.sparse.linalg.cg`'s ``M`` on the normal equations.

    Parameters
    ----------
    op : Conv or ConvTranspose
    damp : float
        :math:`> 0`.
    kind : {"auto", "form", "circulant", "cosine"}
        ``"form"``: the layer's own diagonal form (:func:`~.forms.diagonal_form`: the
        exact inverse for circular layers and the DCT-II class, the DCT-I bound for
        reflect padding with symmetric kernels); ``"circulant"``: T. Chan's optimal block
        circulant (see the module);
        ``"cosine"``: the cosine form (the exact inverse for replicate padding <= 1
        with symmetric kernels; within a factor :math:`2^a`, :math:`a` the axes,
        for reflect padding with symmetric kernels; Ng, Chan and Tang's Neumann
        form of the kernels' symmetric parts for other convs with stride 1 and
        centred pads); ``"auto"``: ``"form"`` where the layer has one, else
        ``"circulant"`` (the word means the same in
        :func:`~.tikhonov.solve_tikhonov`, whose fallback is no preconditioner).
    max_bytes : int, optional
        Memory budget of the per-frequency inverses.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator
        ``n x n`` with ``n = op.shape[1]``; the exact inverse for a circular layer.

    Raises
    ------
    ParameterError
        For ``damp <= 0``, an unknown ``kind``, a layer without a circulant
        counterpart of its shape (a stride that does not divide the size, or an
        output that is not ``n / stride``), or ``kind="cosine"`` for a layer
        without a cosine form or ``kind="form"`` for one without a diagonal form (the
        message says why).
    """
    op = checked_operator(op)
    if kind not in KINDS:
        raise ParameterError("kind", f"kind must be one of {KINDS}; got {kind!r}")
    max_bytes = None if max_bytes is None else checked_max_bytes(max_bytes)
    if not real_number(damp, "damp") > 0 or not math.isfinite(damp):
        raise ParameterError("damp", f"damp must be a finite number > 0; got {damp!r}")
    # weights of extreme magnitude in range (.scaling): A' = 2^p A, M = 4^p M'
    scaled, p = layer_in_range(op)
    damp = times_power_of_two(float(damp), p)
    choice = diagonal_form(scaled) if kind in ("auto", "form") else None
    form = None if choice is None else choice.form
    if kind == "form" and form is None:
        raise ParameterError(
            "kind", f"kind='form': this layer has no diagonal form ({choice.reason})"
        )
    if form is not None:  # the layer's own diagonal form: exact, or a proven bound
        inverse = form.normal_inverse(damp, max_bytes=max_bytes)
    elif kind == "cosine":
        transform, why = preconditioner_transform(op)
        if transform is None:
            raise ParameterError("kind", f"kind='cosine' does not apply to this layer: {why}")
        inverse = cosine_preconditioner(scaled, damp, max_bytes=max_bytes)
    else:
        twin = circulant_counterpart(scaled)
        if twin is None:
            raise ParameterError(
                "op",
                "this layer has no circulant counterpart of its shape (its stride must divide "
                "the size, with output size n / stride)",
            )
        inverse = diagonal_form(twin).form.normal_inverse(damp, max_bytes=max_bytes)

    def apply(v: np.ndarray) -> np.ndarray:
        return times_power_of_two(inverse(v), 2 * p)

    n = op.shape[1]
    dtype = np.result_type(op.dtype, np.float64)
    return spla.LinearOperator((n, n), matvec=apply, rmatvec=apply, dtype=dtype)


# --- solve_tikhonov's ``preconditioner`` argument: checked, built, and named ---


def preconditioner_used(form, damp: float, method: str, choice: object):
    """:attr:`~.tikhonov.SolveResult.preconditioner` for the checked ``preconditioner``:
    the name of what ran."""
    if method != "pcg" or choice is None:
        return None
    if not isinstance(choice, str):
        return "given"
    if choice in ("auto", "form"):
        return form.basis if damp > 0 and form is not None else None
    return choice


def runs_in_dct1_coordinates(form, damp: float, choice: object) -> bool:
    """Whether PCG with the DCT-I preconditioner runs in its coordinates
    (:mod:`~toeplitz_conv.solve.reflect`: the same iterates, no transform per
    iteration): the layer's ``form`` is the DCT-I's (reflect padding with symmetric
    kernels and stride 1), ``damp > 0`` and the preconditioner ``"auto"``, ``"form"`` or
    ``"cosine"``."""
    if not (damp > 0 and isinstance(choice, str) and choice in ("auto", "form", "cosine")):
        return False
    return form is not None and form.basis == "dct1"


def checked_choice(choice: object, n: int) -> object:
    """``preconditioner`` checked: a kind, ``None``, or a linear operator of shape (n, n)."""
    if choice is None or (isinstance(choice, str) and choice in KINDS):
        return choice
    allowed = f"preconditioner must be one of {KINDS}, None or a linear operator"
    if isinstance(choice, str):
        raise ParameterError("preconditioner", f"{allowed}; got {choice!r}")
    try:
        given = spla.aslinearoperator(choice)
    except TypeError as error:
        raise ParameterTypeError(
            "preconditioner", f"{allowed}; got {type(choice).__name__}"
        ) from error
    if given.shape != (n, n):
        raise ParameterError(
            "preconditioner", f"preconditioner must be {n} x {n}; got shape {given.shape}"
        )
    return given


def chosen_preconditioner(op: ConvOperator, damp: float, form, choice: object, max_bytes):
    """The checked ``preconditioner`` as a linear operator for conjugate gradients (or
    ``None``); ``form`` is the layer's diagonal form (or ``None``)."""
    if not isinstance(choice, str):
        return choice
    if choice == "form" and form is None:
        raise ParameterError(
            "preconditioner",
            "preconditioner='form': this layer has no diagonal form (circular padding, "
            "or mirrored padding with symmetric kernels and stride 1); use 'circulant', "
            "'cosine' or None",
        )
    if choice in ("auto", "form") and (form is None or damp == 0):
        return None  # "auto": the layer's own form where it has one, else none
    if damp == 0:
        raise ParameterError(
            "preconditioner",
            f"preconditioner={choice!r} needs damp > 0 (it inverts A^H A + damp^2 I); "
            "with damp=0 use preconditioner=None or 'auto'",
        )
    if choice in ("auto", "form"):
        try:
            return form_inverse(form, damp, op, max_bytes)
        except MatrixTooLargeError:
            if choice == "form":
                raise
            return None  # "auto" falls back to none rather than fail on the budget
    return preconditioner(op, damp, kind=choice, max_bytes=max_bytes)


def form_inverse(form, damp: float, op: ConvOperator, max_bytes) -> spla.LinearOperator:
    """The form's inverse of the (bounded) normal equations as an SPD linear operator."""
    inverse, n = form.normal_inverse(damp, max_bytes=max_bytes), op.shape[1]
    dtype = np.result_type(op.dtype, np.float64)
    return spla.LinearOperator((n, n), matvec=inverse, rmatvec=inverse, dtype=dtype)
