"""The cosine transforms of the cosine forms (:mod:`.cosine`), channels first.

- The orthonormal DCT-II :math:`Q` of every spatial axis (half-sample symmetric
  boundary), its frequencies kept in the reversed order of the axes so that each pass
  writes contiguous lines.
- The DCT-I basis :math:`V` (whole-sample symmetric boundary), orthogonal in the
  weighted inner product :math:`W = \\mathrm{diag}(\\tfrac12, 1, \\dots, 1, \\tfrac12)`
  per axis: :math:`V^T W V = D` (:func:`dct1_norms`, :func:`dct1_weights`).

A vector in a transform's frequencies is ``(groups, F, C / groups)``, a view of
``(groups, C / groups, F)`` memory (:func:`to_frequencies`).
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft

from ..core.jit import fft_workers

__all__ = [
    "dct1_norms",
    "dct1_weights",
    "from_frequencies",
    "reversed_order",
    "to_frequencies",
]


DENSE_DCT1 = 256  # axes up to this long: the DCT-I by a matrix product (faster than pocketfft's)


def reversed_order(kind: str) -> bool:
    """Whether ``kind``'s frequencies are kept in the reversed order of the axes
    (:func:`to_frequencies`)."""
    return kind == "dct2"


def _transform(x: np.ndarray, kind: str, inverse: bool) -> np.ndarray:
    """``x`` ``(C, *spatial)`` to ``(C, *frequency grid)`` or back, per ``kind``."""
    if kind == "dct2":
        return _dct2_by_last_axes(x, inverse)
    return _dct1_basis(x, tuple(range(1, x.ndim)))


def _dct2_by_last_axes(x: np.ndarray, inverse: bool) -> np.ndarray:
    """The orthonormal DCT-II over the axes after the first, the frequencies in reversed
    axis order: ``(C, n_1, ..., n_d)`` to ``(C, f_d, ..., f_1)`` (``inverse``: back).

    Each pass transforms the last axis of a view, moving the axis just transformed to
    the front, so that every output is written as contiguous lines: pocketfft's pass
    along a middle axis is slower."""
    transform = scipy.fft.idct if inverse else scipy.fft.dct
    d = x.ndim - 1
    y = x
    for done in range(d):
        if done:  # forward: f_d .. in front; inverse: the next frequency to the end
            y = np.moveaxis(y, d - done, -1) if inverse else np.moveaxis(y, -1, done)
        # contiguous already for real input; scipy lays complex output out as its input
        y = np.ascontiguousarray(
            transform(y, type=2, axis=-1, norm="ortho", workers=fft_workers(y))
        )
    return y


def _dct1_basis(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """:math:`V^T x` (:math:`= V x`, :math:`V` symmetric) over the axes of size >= 2: one
    DCT-I of :math:`x / (2W)` (scipy's DCT-I weights the ends by 1 and the rest by 2).
    Axes up to :data:`DENSE_DCT1` long are transformed by a product with the DCT-I
    matrix: pocketfft's DCT-I of length :math:`n` is an FFT of length :math:`2(n - 1)`,
    slow where :math:`n - 1` has a large prime factor (149 for 150 rows)."""
    long = tuple(a for a in axes if x.shape[a] >= 2)
    if not long:
        return x
    y = x / (dct1_weights(x.shape[1:]) * 2 ** len(long))
    fast = tuple(a for a in long if x.shape[a] > DENSE_DCT1)
    if fast:
        y = scipy.fft.dctn(y, type=1, axes=fast, workers=fft_workers(y))
    for axis in long:
        if x.shape[axis] <= DENSE_DCT1:
            y = _dense_dct1(y, axis % y.ndim)
    return y


def _dense_dct1(y: np.ndarray, axis: int) -> np.ndarray:
    """The DCT-I along ``axis`` by a matrix product, laid out for matmul without copies
    along the last two axes."""
    matrix = _dct1_matrix(y.shape[axis])
    if axis == y.ndim - 1:
        return y @ matrix.T
    return np.moveaxis(matrix @ np.moveaxis(y, axis, -2), -2, axis)


@functools.lru_cache(maxsize=8)
def _dct1_matrix(n: int) -> np.ndarray:
    """scipy's unnormalised DCT-I on ``n`` points as a matrix (read-only)."""
    matrix = scipy.fft.dct(np.eye(n), type=1, axis=0)
    matrix.flags.writeable = False
    return matrix


def dct1_norms(spatial: tuple[int, ...]) -> np.ndarray:
    """:math:`D = V^T W V` per frequency, flat (product over the axes)."""
    norms = np.ones(1)
    for n in spatial:
        if n < 2:
            axis_norms = np.ones(1)
        else:
            axis_norms = np.full(n, (n - 1) / 2)
            axis_norms[[0, -1]] = n - 1
        norms = np.multiply.outer(norms, axis_norms).ravel()
    return norms


def frequency_grid(shape, kind: str) -> tuple[int, ...]:
    """The shape ``(C, *spatial)`` of a vector in ``kind``'s frequencies: the DCT-II's in
    the reversed order of the axes, ``(C, f_d, ..., f_1)`` (each of its passes then
    writes contiguous lines), the DCT-I's in their order."""
    shape = tuple(shape)
    return (shape[0], *shape[:0:-1]) if reversed_order(kind) else shape


def to_frequencies(x: np.ndarray, shape, groups: int, kind: str) -> np.ndarray:
    """A flat vector of ``shape`` to ``(groups, F, C / groups)`` (a view of ``(groups,
    C / groups, F)`` memory): the orthonormal DCT-II :math:`Q x`, or :math:`V x` for the
    DCT-I, over the spatial axes; ``F`` flattens :func:`frequency_grid`."""
    hat = _transform(x.reshape(shape), kind, inverse=False)
    return hat.reshape(groups, shape[0] // groups, -1).transpose(0, 2, 1)


def from_frequencies(hat: np.ndarray, shape, kind: str) -> np.ndarray:
    """``(groups, F, C / groups)`` to a flat vector of ``shape``: :math:`Q^T \\hat x`, or
    :math:`V \\hat x` for the DCT-I (not its inverse)."""
    x = hat.transpose(0, 2, 1).reshape(frequency_grid(shape, kind))
    return _transform(x, kind, inverse=True).reshape(-1)


def dct1_weights(spatial: tuple[int, ...]) -> np.ndarray:
    """:math:`W` on the grid: 1/2 at both ends of every axis of size >= 2 (products at
    edges and corners)."""
    weights = np.ones(())
    for n in spatial:
        axis = np.ones(n)
        if n >= 2:
            axis[[0, -1]] = 0.5
        weights = np.multiply.outer(weights, axis)
    return weights
