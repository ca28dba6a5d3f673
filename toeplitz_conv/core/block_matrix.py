"""Block assembly: the ``C_out x C_in`` grid of scalar blocks as one CSR matrix.

With weight :math:`W \\in \\mathbb{R}^{C_\\text{out} \\times C_\\text{in}/G \\times K}`
and the scalar shifts :math:`S_t` of :mod:`toeplitz_conv.core.blocks`, the layer's matrix is

.. math::

    A = \\sum_{t=1}^{K} W_t \\otimes S_t, \\qquad
    (W_t)_{ij} = \\begin{cases} w[i, j - g(i)\\,C_\\text{in}/G, t]
      & \\text{if } j \\text{ is in the group } g(i) \\text{ of } i \\\\
      0 & \\text{otherwise,} \\end{cases}

so block :math:`(i, j)` is the scalar block of kernel :math:`h_{ij}` and the
``groups`` make :math:`W_t` block-diagonal. Rows are ordered ``(c_out, pixel)``
and columns ``(c_in, pixel)`` (NCHW flattening). The assembly builds the
scalar pattern once and broadcasts it over channel pairs; its output is
canonical CSR (sorted, no duplicates), with int32 indices when they fit. The
transpose :math:`A^T = \\sum_t W_t^T \\otimes S_t^T` is assembled the same way
from the transposed scalar pattern, so a conv-transpose's CSR matrix (or a
conv's CSC matrix) costs no conversion. With numba installed, a zero-padded
layer's matrix is written by compiled loops straight from the per-axis index
maps (:mod:`toeplitz_conv.core._assembly_numba`; the same arrays, entry for entry),
at close to the speed of allocating and writing its bytes (``benchmarks/run.py``
measures the ratio).
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .blocks import ScalarPattern, scalar_pattern
from .geometry import Geometry
from .jit import cores, numba_installed, run_jobs
from .progress import progress_bar

__all__ = [
    "SPARSE_FORMATS",
    "assemble_csr",
    "assembly_workspace_nbytes",
    "sparse_nbytes",
]

SPARSE_FORMATS = ("csr", "csc", "coo", "bsr")
INT32_MAX = np.iinfo(np.int32).max
CHUNK_NNZ = 1 << 22  # values gathered per step of the assembly
PROGRESS_NNZ = 10**8  # assemblies larger than this show a progress bar
NONZERO_SECONDS = 5e-9  # the compiled assembly's time per nonzero on one thread, about
THREADED_NNZ = 1 << 21  # assemblies larger than this fill output-channel chunks in threads
# bytes per (output pixel, tap) pair of the scalar pattern's temporaries (index maps,
# masks, sort order and the per-channel layout; ``benchmarks/bench_memory.py`` traces it)
PATTERN_BYTES_PER_READ = 64
TRANSPOSE_BYTES_PER_READ = 40  # the transposed pattern's sort order, rows and incidence
FOLD_CHUNK = 1 << 18  # folded boundaries: entry sums formed per step of the fill


def index_dtype(geometry: Geometry, nnz: int) -> np.dtype:
    """int32 when every index and row pointer fits in it, else int64."""
    fits = max(nnz, *geometry.matrix_shape) <= INT32_MAX
    return np.dtype(np.int32 if fits else np.int64)


def sparse_nbytes(
    geometry: Geometry, dtype: np.dtype, format: str = "csr", *, transposed: bool = False
) -> int:
    """Bytes of the layer's matrix (or its transpose) in a scipy sparse format.

    Closed form from :attr:`Geometry.nnz`: ``csr``/``bsr`` (1x1 blocks) hold
    values, column indices and a row pointer; ``csc`` the same by columns;
    ``coo`` values and two index arrays.
    """
    nnz = geometry.nnz
    index_size = index_dtype(geometry, nnz).itemsize
    rows, cols = geometry.matrix_shape[::-1] if transposed else geometry.matrix_shape
    entries = nnz * (np.dtype(dtype).itemsize + index_size)
    if format in ("csr", "bsr"):
        return entries + (rows + 1) * index_size
    if format == "csc":
        return entries + (cols + 1) * index_size
    if format == "coo":
        return entries + nnz * index_size
    raise ValueError(f"format must be one of {SPARSE_FORMATS}; got {format!r}")


def csr_nbytes(geometry: Geometry, dtype: np.dtype) -> int:
    """Bytes of the layer's CSR matrix (data, indices and row pointer)."""
    return sparse_nbytes(geometry, dtype, "csr")


def assembly_workspace_nbytes(geometry: Geometry, *, transposed: bool = False) -> int:
    """Bytes of the assembly's temporaries beyond the matrix: the scalar pattern's.

    They scale with one block (``M K`` reads), not with the channels: they matter
    for layers with few channels pairs only. Folded boundaries add the entry
    sums of one step per thread (two copies: the product and its transpose).
    """
    per_read = PATTERN_BYTES_PER_READ + (TRANSPOSE_BYTES_PER_READ if transposed else 0)
    pattern = per_read * geometry.output_pixels * geometry.taps
    if geometry.mode.drops_reads:
        return pattern
    return pattern + 2 * cores() * 2 * 16 * min(geometry.nnz, FOLD_CHUNK)


@dataclass(frozen=True)
class _Blocks:
    """The block grid to assemble: ``A`` or ``A^T`` as rows of blocks.

    ``weight`` is ``(block rows, blocks per row, K)``; block row ``r`` belongs to
    group ``r // rows_per_group`` and its blocks start at that group's first
    block column of ``column_pixels`` columns each.
    """

    pattern: ScalarPattern
    weight: np.ndarray
    rows_per_group: int
    column_pixels: int
    shape: tuple[int, int]


def _blocks(geometry: Geometry, weight: np.ndarray, transposed: bool) -> _Blocks:
    g = geometry
    pattern = scalar_pattern(g)
    weight = weight.reshape(g.out_channels, g.in_per_group, g.taps)
    if not transposed:
        return _Blocks(pattern, weight, g.out_per_group, g.input_pixels, g.matrix_shape)
    # block (j, i) of A^T is S_t^T weighted by w[i, j]: channel roles swap within each group
    weight = weight.reshape(g.groups, g.out_per_group, g.in_per_group, g.taps)
    weight = np.swapaxes(weight, 1, 2).reshape(g.in_channels, g.out_per_group, g.taps)
    return _Blocks(
        pattern.transpose(), weight, g.in_per_group, g.output_pixels, g.matrix_shape[::-1]
    )


def assemble_csr(
    geometry: Geometry, weight: np.ndarray, dtype: np.dtype, *, transposed: bool = False
) -> sp.csr_array:
    """Assemble the layer's block matrix (or its transpose) in canonical CSR form.

    The scalar pattern and the CSR layout of one block row are computed once;
    the values and column indices of all block rows are then gathered into
    preallocated arrays, a chunk of block rows at a time (no temporaries of the
    matrix's size; a progress bar above ``PROGRESS_NNZ`` nonzeros). With numba
    installed, a zero-padded conv is written by compiled loops instead. The caller
    checks the memory budget first (:func:`sparse_nbytes`,
    :func:`assembly_workspace_nbytes`).

    Parameters
    ----------
    geometry : Geometry
        The layer.
    weight : numpy.ndarray
        Shape ``geometry.weight_shape``.
    dtype : numpy.dtype
        Value type of the matrix.
    transposed : bool
        Assemble :math:`A^T` (the conv-transpose layer's matrix) instead of :math:`A`.

    Returns
    -------
    scipy.sparse.csr_array
        Shape ``geometry.matrix_shape`` (reversed when ``transposed``); its arrays
        are new and the caller's.
    """
    if not transposed and geometry.mode.drops_reads and numba_installed():
        return _assemble_compiled(geometry, weight, dtype)
    blocks = _blocks(geometry, weight, transposed)
    pattern = blocks.pattern
    n_block_rows, c_group, taps = blocks.weight.shape
    per_row = c_group * pattern.nnz
    nnz = n_block_rows * per_row
    idx_dtype = index_dtype(geometry, nnz)
    layout = _RowLayout(pattern, c_group)
    if pattern.single_tap is not None:  # each entry is one tap: gather from the weight
        source_args = (pattern.single_tap, taps, np.intp)
    else:  # folded boundaries: gather from the per-entry sums of taps
        source_args = (np.arange(pattern.nnz), pattern.nnz, np.intp)
    column_args = (pattern.columns, blocks.column_pixels, idx_dtype)
    workers = cores() if nnz > THREADED_NNZ else 1
    with ThreadPoolExecutor(workers) as pool:
        source, within_group = pool.map(
            lambda args: layout.expand(*args), (source_args, column_args)
        )
    group = np.arange(n_block_rows) // blocks.rows_per_group
    group_start = (group * c_group * blocks.column_pixels).astype(idx_dtype)
    weight = blocks.weight.astype(dtype, copy=False)
    data = np.empty((n_block_rows, per_row), dtype=dtype)
    indices = np.empty((n_block_rows, per_row), dtype=idx_dtype)

    def fill(rows: slice) -> int:
        _fill_values(pattern, weight[rows], source, data[rows])
        np.add(group_start[rows, None], within_group[None, :], out=indices[rows])
        return data[rows].size

    step = max(1, CHUNK_NNZ // max(per_row, 1))
    chunks = [slice(lo, min(lo + step, n_block_rows)) for lo in range(0, n_block_rows, step)]
    with progress_bar(nnz if nnz > PROGRESS_NNZ else 0, "assembling", "nz") as bar:
        # numpy's take and add release the GIL: chunks of block rows fill in parallel
        with ThreadPoolExecutor(workers) as pool:
            for done in pool.map(fill, chunks):
                bar.update(done)
    indptr = _row_pointer(pattern, c_group, n_block_rows, idx_dtype)
    matrix = sp.csr_array((data.reshape(-1), indices.reshape(-1), indptr), shape=blocks.shape)
    matrix.has_canonical_format = True
    return matrix


def _assemble_compiled(geometry: Geometry, weight: np.ndarray, dtype) -> sp.csr_array:
    """Zero padding with numba: one pass of compiled loops over the block rows
    (:func:`toeplitz_conv.core._assembly_numba.fill_zero_padded`), the same matrix."""
    from ._assembly_numba import fill_zero_padded

    g = geometry
    lift = (1,) * (3 - g.ndim)
    maps = [np.zeros((1, 1), dtype=np.int64)] * len(lift)
    maps += [g.axis_index_map(axis) for axis in range(g.ndim)]
    taps = [_valid_taps(m) for m in maps]
    reads = functools.reduce(np.multiply.outer, [t[:, 1] - t[:, 0] for t in taps]).ravel()
    row_start = np.zeros(reads.size + 1, dtype=np.int64)
    np.cumsum(reads * g.in_per_group, out=row_start[1:])
    per_row = int(row_start[-1])
    nnz = g.out_channels * per_row
    idx_dtype = index_dtype(g, nnz)
    # a writable copy: numba compiles one version per argument type, read-only arrays apart
    weight = np.array(weight.reshape(g.out_channels, g.in_per_group, *lift, *g.kernel), dtype)
    data = np.empty(nnz, dtype=dtype)
    indices = np.empty(nnz, dtype=idx_dtype)
    size = np.array(lift + g.input_spatial, dtype=np.int64)
    dilation = np.array(lift + g.dilation, dtype=np.int64)
    tap_steps = dilation * np.array([size[1] * size[2], size[2], 1])
    interior = functools.reduce(
        np.add.outer, [np.arange(k) * s for k, s in zip(weight.shape[2:], tap_steps)]
    )
    interior = np.add.outer(np.arange(g.in_per_group) * g.input_pixels, interior).ravel()
    args = (*taps, dilation, size, weight, interior, g.out_per_group, row_start, data, indices)
    step = max(1, CHUNK_NNZ * 16 // max(per_row, 1))
    with progress_bar(nnz if nnz > PROGRESS_NNZ else 0, "assembling", "nz") as bar:
        for lo in range(0, g.out_channels, step):
            rows = min(step, g.out_channels - lo)
            seconds = rows * per_row * NONZERO_SECONDS
            run_jobs(fill_zero_padded, args, jobs=rows, seconds=seconds, first=lo)
            bar.update(rows * per_row)
    indptr = np.empty(g.out_channels * reads.size + 1, dtype=idx_dtype)
    block_starts = np.arange(g.out_channels, dtype=np.int64)[:, None] * per_row
    indptr[:-1].reshape(g.out_channels, reads.size)[...] = block_starts + row_start[None, :-1]
    indptr[-1] = nnz
    matrix = sp.csr_array((data, indices, indptr), shape=g.matrix_shape)
    matrix.has_canonical_format = True
    return matrix


def _valid_taps(index_map: np.ndarray) -> np.ndarray:
    """Per output of an axis, ``(lo, hi, i)``: the taps ``lo <= t < hi`` read inside the
    input (zero padding: a contiguous range), tap ``lo`` reading input ``i``."""
    valid = index_map >= 0
    lo = np.argmax(valid, axis=1)
    count = valid.sum(axis=1)
    first = np.where(count > 0, index_map[np.arange(len(lo)), lo], 0)
    return np.stack([lo, lo + count, first], axis=1).astype(np.int64)


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
    """Values of some block rows in CSR order, written into ``out``.

    ``weight`` has shape ``(c, blocks per row, K)`` and ``out`` ``(c, blocks per row * nnz)``;
    ``source`` indexes the flattened weight (one tap per entry) or the entry sums,
    which are formed ``FOLD_CHUNK`` values at a time so that they stay small.
    """
    c, c_group, taps = weight.shape
    # the sources are in range by construction: mode="clip" skips numpy's bounds check
    if pattern.single_tap is not None:
        np.take(weight.reshape(c, -1), source, axis=1, out=out, mode="clip")
        return
    step = max(1, FOLD_CHUNK // max(c_group * pattern.nnz, 1))
    for lo in range(0, c, step):
        hi = min(lo + step, c)
        sums = pattern.entry_values(weight[lo:hi].reshape((hi - lo) * c_group, taps))
        np.take(sums.reshape(hi - lo, -1), source, axis=1, out=out[lo:hi], mode="clip")


def _row_pointer(
    pattern: ScalarPattern, c_group: int, n_block_rows: int, idx_dtype: np.dtype
) -> np.ndarray:
    counts = np.tile(c_group * np.diff(pattern.indptr), n_block_rows)
    indptr = np.zeros(counts.size + 1, dtype=idx_dtype)
    np.cumsum(counts, out=indptr[1:])
    return indptr
