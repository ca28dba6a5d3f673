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

import numpy as np

from ..core.geometry import Geometry
from ..core.memory import check_budget
from ..layers.conv import ConvOperator
from ..spectra.spectral import fft_applicable, frequency_matrices

__all__ = ["fourier_applicable", "fourier_solve", "normal_inverse"]


def fourier_applicable(op: ConvOperator) -> bool:
    """Whether the layer is circular with stride dividing the size (its whole matrix: a
    conv-transpose with ``output_padding >= stride`` is a submatrix, not applicable)."""
    g = op.geometry
    whole = not op.transposed or tuple(op.output_shape) == tuple(g.input_shape)
    return fft_applicable(g) and whole


def fourier_solve(
    op: ConvOperator, b: np.ndarray, damp: float, x0: np.ndarray | None, max_bytes=None
) -> np.ndarray:
    """The exact minimiser of :math:`\\|A x - b\\|^2 + d^2 \\|x - x_0\\|^2` (flat vectors)."""
    g = op.geometry
    weight = np.asarray(op.weight)
    if op.transposed:  # T = conj(A)^H: per frequency the conjugate transpose
        symbols = np.conj(frequency_matrices(g, np.conj(weight), max_bytes=max_bytes))
        symbols = np.swapaxes(symbols, -1, -2)
        to_input, from_input = _plain_hat, _plain_unhat
        to_output = _polyphase_hat
    else:
        symbols = frequency_matrices(g, weight, max_bytes=max_bytes)
        to_input, from_input = _polyphase_hat, _polyphase_unhat
        to_output = _plain_hat
    b_hat = _grouped(to_output(b.reshape(op.output_shape), g), g.groups)
    x0_hat = None if x0 is None else _grouped(to_input(x0.reshape(op.input_shape), g), g.groups)
    if damp > 0:
        x_hat = _damped(symbols, b_hat, damp, x0_hat)
    else:
        x_hat = _minimum_norm(symbols, b_hat)
    x = from_input(_ungrouped(x_hat), g, op.input_shape)
    complex_ = np.iscomplexobj(weight) or np.iscomplexobj(b) or np.iscomplexobj(x0)
    return (x if complex_ else x.real).reshape(-1)


def normal_inverse(op: ConvOperator, damp: float, *, max_bytes=None):
    """The map :math:`v \\mapsto (A^H A + d^2 I)^{-1} v` of a layer :func:`fourier_applicable`
    holds for, ``damp > 0``: the per-frequency inverses are computed once, here (their
    bytes checked against the budget), and each call costs two FFTs and small products."""
    g = op.geometry
    weight = np.asarray(op.weight)
    if op.transposed:
        symbols = np.conj(frequency_matrices(g, np.conj(weight), max_bytes=max_bytes))
        symbols = np.swapaxes(symbols, -1, -2)
        to_input, from_input = _plain_hat, _plain_unhat
    else:
        symbols = frequency_matrices(g, weight, max_bytes=max_bytes)
        to_input, from_input = _polyphase_hat, _polyphase_unhat
    cols = symbols.shape[-1]
    check_budget(
        4 * symbols.shape[0] * symbols.shape[1] * cols * cols * 16,
        f"per-frequency inverses of a {op.shape} layer's normal equations",
        max_bytes=max_bytes,
    )
    gram = np.conj(np.swapaxes(symbols, -1, -2)) @ symbols
    gram += damp**2 * np.eye(cols)
    inverses = np.linalg.inv(gram)
    del gram, symbols
    complex_ = np.iscomplexobj(weight)

    def apply(v: np.ndarray) -> np.ndarray:
        v_hat = _grouped(to_input(v.reshape(op.input_shape), g), g.groups)
        x = from_input(_ungrouped((inverses @ v_hat[..., None])[..., 0]), g, op.input_shape)
        return (x if complex_ or np.iscomplexobj(v) else x.real).reshape(-1)

    return apply


def _damped(symbols, b_hat, damp: float, x0_hat):
    rows, cols = symbols.shape[-2:]
    adjoint = np.conj(np.swapaxes(symbols, -1, -2))
    if x0_hat is not None:  # x = x0 + argmin ||W z - (b - W x0)||^2 + d^2 ||z||^2
        b_hat = b_hat - (symbols @ x0_hat[..., None])[..., 0]
    if cols <= rows:
        gram = adjoint @ symbols
        gram += damp**2 * np.eye(cols)
        z = np.linalg.solve(gram, (adjoint @ b_hat[..., None]))[..., 0]
    else:
        gram = symbols @ adjoint
        gram += damp**2 * np.eye(rows)
        z = (adjoint @ np.linalg.solve(gram, b_hat[..., None]))[..., 0]
    return z if x0_hat is None else z + x0_hat


def _minimum_norm(symbols, b_hat):
    u, s, vh = np.linalg.svd(symbols, full_matrices=False)
    cut = max(symbols.shape[-2:]) * np.finfo(np.float64).eps * float(s.max(initial=0.0))
    inverse = np.where(s > cut, 1.0 / np.where(s > cut, s, 1.0), 0.0)
    coefficients = (np.conj(np.swapaxes(u, -1, -2)) @ b_hat[..., None])[..., 0] * inverse
    return (np.conj(np.swapaxes(vh, -1, -2)) @ coefficients[..., None])[..., 0]


def _spatial_axes(d: int) -> tuple[int, ...]:
    return tuple(range(-d, 0))


def _plain_hat(y: np.ndarray, g: Geometry) -> np.ndarray:
    """``(C, *M)`` to ``(C, 1, F)``: every channel's DFT on the coarse grid."""
    d = g.ndim
    return np.fft.fftn(y, axes=_spatial_axes(d)).reshape(y.shape[0], 1, -1)


def _plain_unhat(y_hat: np.ndarray, g: Geometry, shape) -> np.ndarray:
    coarse = tuple(n // s for n, s in zip(g.input_spatial, g.stride))
    spectrum = y_hat.reshape(shape[0], *coarse)
    return np.fft.ifftn(spectrum, axes=_spatial_axes(g.ndim))


def _polyphase_hat(x: np.ndarray, g: Geometry) -> np.ndarray:
    """``(C, *n)`` to ``(C, P, F)``: the DFT of each polyphase component ``x[c, s m + r]``."""
    d, s = g.ndim, g.stride
    coarse = tuple(n // si for n, si in zip(x.shape[1:], s))
    split = x.reshape(x.shape[0], *(v for pair in zip(coarse, s) for v in pair))
    order = (0, *range(2, 2 * d + 1, 2), *range(1, 2 * d, 2))  # c, phases, coarse
    phases = split.transpose(order).reshape(x.shape[0], math.prod(s), *coarse)
    return np.fft.fftn(phases, axes=_spatial_axes(d)).reshape(x.shape[0], math.prod(s), -1)


def _polyphase_unhat(x_hat: np.ndarray, g: Geometry, shape) -> np.ndarray:
    d, s = g.ndim, g.stride
    coarse = tuple(n // si for n, si in zip(shape[1:], s))
    phases = np.fft.ifftn(x_hat.reshape(shape[0], *s, *coarse), axes=_spatial_axes(d))
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
