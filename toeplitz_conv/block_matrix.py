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

import os
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from .blocks import ScalarPattern, scalar_pattern
from .geometry import Geometry
from .memory import check_budget
from .progress import progress_bar

INT32_MAX = np.iinfo(np.int32).max
CHUNK_NNZ = 1 << 22  # values gathered per step of the assembly
PROGRESS_NNZ = 10**8  # assemblies larger than this show a progress bar
THREADED_NNZ = 1 << 21  # assemblies larger than this fill output-channel chunks in threads


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

    The scalar pattern and the CSR layout of one output channel's rows are
    computed once; the values and column indices of all output channels are
    then gathered into preallocated arrays, a chunk of output channels at a
    time (no temporaries of the matrix's size; a progress bar above
    ``PROGRESS_NNZ`` nonzeros).

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
    c_out, c_group = geometry.out_channels, geometry.in_per_group
    per_channel = c_group * pattern.nnz
    nnz = c_out * per_channel
    idx_dtype = index_dtype(geometry, nnz)
    layout = _RowLayout(pattern, c_group)
    if pattern.single_tap is not None:  # each entry is one tap: gather from the weight
        source_args = (pattern.single_tap, geometry.taps, np.intp)
    else:  # folded boundaries: gather from the per-entry sums of taps
        source_args = (np.arange(pattern.nnz), pattern.nnz, np.intp)
    column_args = (pattern.columns, geometry.input_pixels, idx_dtype)
    workers = _cores() if nnz > THREADED_NNZ else 1
    with ThreadPoolExecutor(workers) as pool:
        source, within_group = pool.map(
            lambda args: layout.expand(*args), (source_args, column_args)
        )
    group = np.arange(c_out) // geometry.out_per_group
    group_start = (group * c_group * geometry.input_pixels).astype(idx_dtype)
    weight = weight.astype(dtype, copy=False).reshape(c_out, c_group, -1)
    data = np.empty((c_out, per_channel), dtype=dtype)
    indices = np.empty((c_out, per_channel), dtype=idx_dtype)

    def fill(rows: slice) -> int:
        _fill_values(pattern, weight[rows], source, data[rows])
        np.add(group_start[rows, None], within_group[None, :], out=indices[rows])
        return data[rows].size

    step = max(1, CHUNK_NNZ // max(per_channel, 1))
    chunks = [slice(lo, min(lo + step, c_out)) for lo in range(0, c_out, step)]
    with progress_bar(nnz if nnz > PROGRESS_NNZ else 0, "assembling", "nz") as bar:
        # numpy's take and add release the GIL: chunks of output channels fill in parallel
        with ThreadPoolExecutor(workers) as pool:
            for done in pool.map(fill, chunks):
                bar.update(done)
    matrix = sp.csr_array(
        (data.reshape(-1), indices.reshape(-1), _row_pointer(geometry, pattern, idx_dtype)),
        shape=geometry.matrix_shape,
    )
    matrix.has_canonical_format = True
    return matrix


def _cores() -> int:
    """Threads for the assembly: the usable cores, or ``OMP_NUM_THREADS`` when set lower
    (as under MPI, one thread per rank)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    requested = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores or 1, int(requested))) if requested.isdigit() else cores or 1


class _RowLayout:
    """Order of stored entries within the rows of one output channel.

    A row (output pixel) holds, for each input channel of the group in turn,
    the scalar pattern's entries of that pixel: in CSR order the stored values
    are indexed by (pixel, channel, entry of the pixel's row). Rows have at most
    ``L`` entries, so the order is a masked ``(M, C_in/G, L)`` grid.
    """

    def __init__(self, pattern: ScalarPattern, in_per_group: int) -> None:
        lengths = np.diff(pattern.indptr)
        longest = np.arange(int(lengths.max(initial=0)))
        self._entry = np.minimum(pattern.indptr[:-1, None] + longest, max(pattern.nnz - 1, 0))
        valid = longest[None, :] < lengths[:, None]
        self._mask = np.broadcast_to(valid[:, None, :], (lengths.size, in_per_group, longest.size))
        self._channels = np.arange(in_per_group)[None, :, None]

    def expand(self, per_entry: np.ndarray, channel_stride: int, dtype) -> np.ndarray:
        """``channel * channel_stride + per_entry[entry]`` in CSR order, for one output channel."""
        grid = per_entry.astype(dtype)[self._entry][:, None, :]
        return (grid + (self._channels * channel_stride).astype(dtype))[self._mask]


def _fill_values(
    pattern: ScalarPattern, weight: np.ndarray, source: np.ndarray, out: np.ndarray
) -> None:
    """Values of some output channels' rows in CSR order, written into ``out``.

    ``weight`` has shape ``(c, in_per_group, K)`` and ``out`` ``(c, in_per_group * nnz)``;
    ``source`` indexes the flattened weight (one tap per entry) or the entry sums.
    """
    c, c_group, taps = weight.shape
    if pattern.single_tap is None:
        weight = pattern.entry_values(weight.reshape(c * c_group, taps))
    # the sources are in range by construction: mode="clip" skips numpy's bounds check (4x faster)
    np.take(weight.reshape(c, -1), source, axis=1, out=out, mode="clip")


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
        self._direct = None
        self._conjugate: weakref.ref[LayerMatrix] | None = None

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

    def direct(self):
        """The matrix-free :class:`~toeplitz_conv.engines.DirectEngine` of this layer (cached)."""
        if self._direct is None:
            from .engines import DirectEngine

            self._direct = DirectEngine(self.geometry, self.weight)
        return self._direct

    def conj(self) -> LayerMatrix:
        """The same layer with conjugated weights (itself when real).

        Repeated calls return the same object while it is in use (``op.H`` in a
        loop does not copy an assembled matrix each time), and its ``conj()`` is
        this layer again.
        """
        if self.dtype.kind != "c":
            return self
        other = self._conjugate() if self._conjugate is not None else None
        if other is None:
            other = LayerMatrix(self.geometry, self.weight.conj(), self.dtype)
            if self._csr is not None:  # the (read-only) index arrays are shared
                csr = self._csr
                other._csr = sp.csr_array((np.conj(csr.data), csr.indices, csr.indptr), csr.shape)
                other._csr.has_canonical_format = True
                other._csr.data.flags.writeable = False
            # weak both ways: an unused conjugate (maybe a matrix copy) is freed
            self._conjugate, other._conjugate = weakref.ref(other), weakref.ref(self)
        return other
