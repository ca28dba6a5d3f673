"""Scalar-kernel blocks: the sparse matrix of one kernel on one channel.

A scalar kernel :math:`h` with taps :math:`t` acts on one channel as

.. math::

    H = \\sum_{t} h[t]\\, S_t, \\qquad
    S_t = S^{(1)}_{t_1} \\otimes \\cdots \\otimes S^{(d)}_{t_d},

where :math:`S^{(i)}_{t_i}` is the (strided, dilated) shift along axis
:math:`i` with that axis's boundary rule: rows are dropped at zero pads
(Toeplitz), wrapped (circulant), or folded back onto the edge (reflect,
replicate; duplicates summed). :class:`ScalarPattern` holds the union of the
supports of all :math:`S_t` with, for each stored entry, which taps land on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, DTypeLike

from .errors import ParameterError
from .geometry import Geometry, PaddingLike, conv_geometry
from .weights import as_weight

__all__ = ["ScalarPattern", "kernel_block", "scalar_pattern"]


@dataclass(frozen=True)
class ScalarPattern:
    """Sparsity pattern of one scalar block and the taps behind each entry.

    Attributes
    ----------
    indptr : numpy.ndarray
        CSR row pointer, shape ``(M + 1,)``.
    columns : numpy.ndarray
        Sorted, unique column (input pixel) of each entry within its row.
    tap_incidence : scipy.sparse.csr_array
        ``(nnz, K)`` 0/1 matrix: entry ``e`` receives ``sum_t T[e, t] h[t]``.
    single_tap : numpy.ndarray or None
        When every entry receives exactly one tap (always for zero padding),
        that tap's flat index per entry; values are then a plain gather.
    """

    indptr: np.ndarray
    columns: np.ndarray
    tap_incidence: sp.csr_array
    single_tap: np.ndarray | None
    n_columns: int

    @property
    def nnz(self) -> int:
        """Stored entries of one scalar block."""
        return int(self.columns.size)

    @property
    def n_rows(self) -> int:
        """Rows of the block."""
        return int(self.indptr.size - 1)

    def transpose(self) -> ScalarPattern:
        """The pattern of the transposed block (rows become columns), in CSR order."""
        rows = np.repeat(np.arange(self.n_rows), np.diff(self.indptr))
        order = np.argsort(self.columns, kind="stable")  # by column, then row
        indptr = np.zeros(self.n_columns + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.columns, minlength=self.n_columns), out=indptr[1:])
        single = None if self.single_tap is None else self.single_tap[order]
        return ScalarPattern(indptr, rows[order], self.tap_incidence[order], single, self.n_rows)

    def entry_values(self, kernels: np.ndarray) -> np.ndarray:
        """Entry values of many kernels at once.

        Parameters
        ----------
        kernels : numpy.ndarray
            Shape ``(P, K)``: ``P`` flattened scalar kernels.

        Returns
        -------
        numpy.ndarray
            Shape ``(P, nnz)``: the values of each kernel's block in pattern order.
        """
        if self.single_tap is not None:
            return np.take(kernels, self.single_tap, axis=1)
        incidence = self.tap_incidence.astype(kernels.dtype)
        return np.ascontiguousarray((incidence @ kernels.T).T)


def scalar_pattern(geometry: Geometry) -> ScalarPattern:
    """Build the sparsity pattern of the geometry's scalar blocks.

    Vectorized over all (output pixel, tap) pairs from the per-axis index maps;
    its size is :math:`M K`, independent of the channel counts.
    """
    columns, valid = _pixel_tap_columns(geometry)
    n_rows, n_taps = columns.shape
    n_columns = geometry.input_pixels
    if geometry.mode.drops_reads:
        rows, taps = np.nonzero(valid)  # row-major: sorted by column within a row
        cols = columns[rows, taps]
        incidence = sp.csr_array(
            (np.ones(rows.size), taps, np.arange(rows.size + 1)), shape=(rows.size, n_taps)
        )
        return ScalarPattern(_row_pointer(rows, n_rows), cols, incidence, taps, n_columns)
    order = np.argsort(columns, axis=1, kind="stable")
    sorted_cols = np.take_along_axis(columns, order, axis=1)
    starts = np.ones(sorted_cols.shape, dtype=bool)
    starts[:, 1:] = np.diff(sorted_cols, axis=1) != 0
    entry = np.cumsum(starts.ravel()) - 1
    n_entries = int(entry[-1]) + 1
    incidence = sp.csr_array(
        (np.ones(entry.size), (entry, order.ravel())), shape=(n_entries, n_taps)
    )
    single = order.ravel() if n_entries == entry.size else None
    indptr = np.concatenate(([0], np.cumsum(starts.sum(axis=1))))
    return ScalarPattern(indptr, sorted_cols[starts], incidence, single, n_columns)


def _pixel_tap_columns(geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Input pixel read by each (output pixel, tap), shape ``(M, K)``, and validity."""
    d = geometry.ndim
    pixel_strides = np.cumprod((1, *geometry.input_spatial[::-1]))[:-1][::-1]
    full = (*geometry.output_spatial, *geometry.kernel)
    columns = np.zeros(full, dtype=np.int64)
    valid = np.ones(full, dtype=bool)
    for axis in range(d):
        index = geometry.axis_index_map(axis)
        shape = [1] * (2 * d)
        shape[axis], shape[d + axis] = index.shape
        index = index.reshape(shape)
        columns = columns + index * int(pixel_strides[axis])
        valid = valid & (index >= 0)
    return (
        columns.reshape(geometry.output_pixels, geometry.taps),
        valid.reshape(geometry.output_pixels, geometry.taps),
    )


def _row_pointer(rows: np.ndarray, n_rows: int) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=n_rows))))


def kernel_block(
    kernel: ArrayLike,
    input_size: int | Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: PaddingLike = 0,
    dilation: int | Sequence[int] = 1,
    padding_mode: str = "zeros",
    convention: Literal["correlate", "convolve"] = "correlate",
    dtype: DTypeLike | None = None,
) -> sp.csr_array:
    """Sparse matrix of one scalar kernel acting on one channel.

    Zero padding gives a multi-level Toeplitz matrix, circular padding a
    multi-level circulant one, reflect/replicate a Toeplitz matrix with the
    pad rows folded back onto the edge columns (duplicates summed).

    .. math::

        (H x)[o] = \\sum_{t} h[t]\\, x_{\\text{pad}}[o\\,s + t\\,\\delta - p_b]
        \\quad\\text{("correlate")}, \\qquad
        h \\to h[k - 1 - t] \\quad\\text{("convolve")}.

    Parameters
    ----------
    kernel : array_like
        Scalar kernel with 1, 2 or 3 axes.
    input_size : int or sequence of int
        Spatial size of the channel.
    stride, padding, dilation, padding_mode
        As for :class:`toeplitz_conv.Conv`.
    convention : {"correlate", "convolve"}
        ``"correlate"`` (deep learning, default) or ``"convolve"`` (signal
        processing: the kernel is flipped, and ``padding="same"`` keeps
        ``(k - 1) // 2`` before the centre, as :func:`scipy.signal.convolve`),
        so that in 1-D with padding ``k - 1``, ``"same"`` and ``"valid"`` this
        equals :func:`scipy.linalg.convolution_matrix` for ``full``, ``same``,
        ``valid``.
    dtype : data-type, optional
        Default: the kernel's floating type.

    Returns
    -------
    scipy.sparse.csr_array
        Shape ``(prod(output_size), prod(input_size))``.
    """
    if convention not in ("correlate", "convolve"):
        raise ParameterError(
            "convention", f"convention must be 'correlate' or 'convolve'; got {convention!r}"
        )
    h, dtype = as_weight(kernel, dtype, name="kernel")
    if h.ndim not in (1, 2, 3):
        raise ParameterError("kernel", f"kernel must have 1, 2 or 3 axes; got shape {h.shape}")
    size = (input_size,) if np.isscalar(input_size) else tuple(input_size)
    if convention == "convolve":
        h = np.flip(h)
    geometry = conv_geometry(
        (1, 1, *h.shape),
        (1, *size),
        stride=stride,
        padding=padding,
        dilation=dilation,
        padding_mode=padding_mode,
    )
    if convention == "convolve" and isinstance(padding, str) and padding == "same":
        # scipy centres "same" on the full convolution: the larger half goes before
        geometry = replace(geometry, pads=tuple((after, before) for before, after in geometry.pads))
    pattern = scalar_pattern(geometry)
    values = pattern.entry_values(h.reshape(1, -1))[0].astype(dtype, copy=False)
    return sp.csr_array(
        (values, pattern.columns, pattern.indptr),
        shape=(geometry.output_pixels, geometry.input_pixels),
    )
