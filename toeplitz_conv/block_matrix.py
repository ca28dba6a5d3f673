"""Block assembly: the ``C_out x C_in`` grid of scalar blocks as one CSR matrix.

With weight :math:`W \\in \\mathbb{R}^{C_\\text{out} \\times C_\\text{in}/G \\times K}`
and the scalar shifts :math:`S_t` of :mod:`toeplitz_conv.blocks`, the layer's matrix is

.. math::

    A = \\sum_{t=1}^{K} W_t \\otimes S_t, \\qquad
    (W_t)_{ij} = \\begin{cases} w[i, j - g(i)\\,C_\\text{in}/G, t]
      & \\text{if } j \\text{ is in the group } g(i) \\text{ of } i \\\\
      0 & \\text{otherwise,} \\end{cases}

so block :math:`(i, j)` is the scalar block of kernel :math:`h_{ij}` and the
``groups`` make :math:`W_t` block-diagonal. Rows are ordered ``(c_out, pixel)``
and columns ``(c_in, pixel)`` (NCHW flattening). The assembly builds the
scalar pattern once and broadcasts it over channel pairs; its output is
canonical CSR (sorted, no duplicates), with int32 indices when they fit.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .blocks import ScalarPattern, scalar_pattern
from .geometry import Geometry
from .memory import check_budget

INT32_MAX = np.iinfo(np.int32).max


def index_dtype(geometry: Geometry, nnz: int) -> np.dtype:
    """int32 when every index and row pointer fits in it, else int64."""
    fits = max(nnz, *geometry.matrix_shape) <= INT32_MAX
    return np.dtype(np.int32 if fits else np.int64)


def csr_nbytes(geometry: Geometry, dtype: np.dtype, nnz: int | None = None) -> int:
    """Bytes of the layer's CSR matrix (data, indices and row pointer)."""
    nnz = geometry.nnz() if nnz is None else nnz
    index_size = index_dtype(geometry, nnz).itemsize
    rows = geometry.matrix_shape[0]
    return nnz * (np.dtype(dtype).itemsize + index_size) + (rows + 1) * index_size


def assemble_csr(geometry: Geometry, weight: np.ndarray, dtype: np.dtype) -> sp.csr_array:
    """Assemble the layer's block matrix in canonical CSR form.

    Parameters
    ----------
    geometry : Geometry
        The layer.
    weight : numpy.ndarray
        Shape ``geometry.weight_shape``.
    dtype : numpy.dtype
        Value type of the matrix.

    Returns
    -------
    scipy.sparse.csr_array
        Shape ``geometry.matrix_shape``.
    """
    pattern = scalar_pattern(geometry)
    nnz = geometry.out_channels * geometry.in_per_group * pattern.nnz
    idx_dtype = index_dtype(geometry, nnz)
    channel, entry = _row_layout(pattern, geometry.in_per_group)
    data = _block_values(geometry, pattern, weight.astype(dtype, copy=False), channel, entry)
    indices = _block_columns(geometry, pattern, channel, entry, idx_dtype)
    indptr = _row_pointer(geometry, pattern, idx_dtype)
    matrix = sp.csr_array(
        (data.reshape(-1), indices.reshape(-1), indptr), shape=geometry.matrix_shape
    )
    matrix.has_canonical_format = True
    return matrix


def _row_layout(pattern: ScalarPattern, in_per_group: int) -> tuple[np.ndarray, np.ndarray]:
    """Order of entries within the rows of one output channel.

    A row (output pixel) holds, for each input channel of the group in turn,
    the scalar pattern's entries of that pixel. Returns, in CSR order, the
    input channel (within the group) and the scalar-pattern entry of each
    stored value; both have length ``in_per_group * pattern.nnz``.
    """
    starts = pattern.indptr[:-1]
    lengths = np.diff(pattern.indptr)
    repeats = in_per_group * lengths
    row = np.repeat(np.arange(lengths.size), repeats)
    offset = np.arange(int(repeats.sum())) - np.repeat(in_per_group * starts, repeats)
    row_length = lengths[row]
    channel = offset // row_length
    entry = starts[row] + offset - channel * row_length
    return channel, entry


def _block_values(
    geometry: Geometry,
    pattern: ScalarPattern,
    weight: np.ndarray,
    channel: np.ndarray,
    entry: np.ndarray,
) -> np.ndarray:
    """Values, shape ``(C_out, in_per_group * pattern.nnz)``, in CSR order."""
    c_out, c_group, taps = geometry.out_channels, geometry.in_per_group, geometry.taps
    if pattern.single_tap is not None:
        source = channel * taps + pattern.single_tap[entry]
        return np.take(weight.reshape(c_out, c_group * taps), source, axis=1)
    values = pattern.entry_values(weight.reshape(c_out * c_group, taps))
    source = channel * pattern.nnz + entry
    return np.take(values.reshape(c_out, c_group * pattern.nnz), source, axis=1)


def _block_columns(
    geometry: Geometry,
    pattern: ScalarPattern,
    channel: np.ndarray,
    entry: np.ndarray,
    idx_dtype: np.dtype,
) -> np.ndarray:
    """Column indices, shape ``(C_out, in_per_group * pattern.nnz)``, in CSR order."""
    pixels = geometry.input_pixels
    within_group = (channel * pixels + pattern.columns[entry]).astype(idx_dtype)
    group = np.arange(geometry.out_channels) // geometry.out_per_group
    group_start = (group * geometry.in_per_group * pixels).astype(idx_dtype)
    return np.add(group_start[:, None], within_group[None, :], dtype=idx_dtype)


def _row_pointer(geometry: Geometry, pattern: ScalarPattern, idx_dtype: np.dtype) -> np.ndarray:
    row_nnz = geometry.in_per_group * np.diff(pattern.indptr)
    counts = np.tile(row_nnz, geometry.out_channels)
    indptr = np.zeros(counts.size + 1, dtype=idx_dtype)
    np.cumsum(counts, out=indptr[1:])
    return indptr


class LayerMatrix:
    """A layer's weight and geometry, with its CSR matrix built on first need.

    Parameters
    ----------
    geometry : Geometry
        The (forward) conv layer.
    weight : numpy.ndarray
        Shape ``geometry.weight_shape`` and type ``dtype``.
    dtype : numpy.dtype
        Value type.
    """

    def __init__(self, geometry: Geometry, weight: np.ndarray, dtype: np.dtype) -> None:
        self.geometry = geometry
        self.weight = weight
        self.dtype = np.dtype(dtype)
        self._csr: sp.csr_array | None = None
        self._nnz: int | None = None

    @property
    def nnz(self) -> int:
        """Structural nonzeros, known without assembling."""
        if self._nnz is None:
            self._nnz = self.geometry.nnz()
        return self._nnz

    @property
    def nbytes(self) -> int:
        """Bytes of the CSR matrix, known without assembling."""
        return csr_nbytes(self.geometry, self.dtype, self.nnz)

    @property
    def is_assembled(self) -> bool:
        """Whether the CSR matrix is already built."""
        return self._csr is not None

    def csr(self, *, max_bytes: int | None = None) -> sp.csr_array:
        """The CSR matrix, assembled once (after a memory-budget check) and cached."""
        if self._csr is None:
            check_budget(
                self.nbytes,
                f"CSR matrix of shape {self.geometry.matrix_shape} with {self.nnz} nonzeros",
                max_bytes=max_bytes,
            )
            csr = assemble_csr(self.geometry, self.weight, self.dtype)
            # shared with every operator on this layer and returned by tosparse():
            # read-only so that nobody can change the operator through it
            for array in (csr.data, csr.indices, csr.indptr):
                array.flags.writeable = False
            self._csr = csr
        return self._csr

    def conj(self) -> LayerMatrix:
        """The same layer with conjugated weights (itself when real)."""
        if self.dtype.kind != "c":
            return self
        other = LayerMatrix(self.geometry, self.weight.conj(), self.dtype)
        if self._csr is not None:
            other._csr = self._csr.conj()
        return other
