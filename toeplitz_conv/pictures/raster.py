"""A layer's matrix seen at picture size, straight from its structure.

The matrix of a layer is a ``C_out x C_in`` grid of blocks that all share one
sparsity pattern, the scalar pattern :math:`S` of
:mod:`toeplitz_conv.core.blocks` (or its transpose, for a conv-transpose), with the
zero blocks set by ``groups``. So a spy plot binned to screen pixels needs only
:math:`S` (one entry per output pixel and tap, whatever the channels) and the
grid of groups, never the matrix: its memory follows the picture and the
pattern, :math:`O(\\text{bins} + M K)`. One block zoomed is :math:`S` with one
kernel's taps. The bins are aligned with the blocks (a whole number of bins per
block, or of blocks per bin), so the binning is exact: a bin is marked exactly
when the matrix stores an entry in it.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ..core.blocks import ScalarPattern, scalar_pattern
from ..core.geometry import Geometry
from ..core.memory import check_budget
from ..layers.conv_operator import ConvOperator

__all__ = ["block_matrix_window", "group_grid", "spy_raster"]

PATTERN_BYTES_PER_READ = 64  # index maps, sort and incidence of one (output pixel, tap) pair


def group_grid(op: ConvOperator | Geometry) -> np.ndarray:
    """Group of each (row channel, column channel) block of the matrix, -1 where it is zero
    (a geometry: its conv's matrix)."""
    g = op if isinstance(op, Geometry) else op.geometry
    out_group = np.arange(g.out_channels) // g.out_per_group
    in_group = np.arange(g.in_channels) // g.in_per_group
    grid = np.where(out_group[:, None] == in_group[None, :], out_group[:, None], -1)
    return grid.T if isinstance(op, ConvOperator) and op.transposed else grid


def layer_pattern(op: ConvOperator, *, max_bytes: int | None = None) -> ScalarPattern:
    """The pattern every non-zero block of ``op``'s matrix stores (rows: the operator's
    output pixels), checked against the budget before it is built."""
    g = op.geometry
    reads = g.output_pixels * g.taps
    check_budget(
        PATTERN_BYTES_PER_READ * reads,
        f"pattern of one {g.output_pixels} x {g.input_pixels} block ({reads:,} reads)",
        max_bytes=max_bytes,
    )
    pattern = scalar_pattern(g)
    return pattern.transpose() if op.transposed else pattern


def aligned_bins(target: int, channels: int, pixels: int) -> tuple[int, int]:
    """Bins per block (``k``) and blocks per bin (``g``) along one side, one of them 1, so
    that about ``target`` bins (and never more than the entries) line up with the blocks."""
    if target >= channels:
        return max(1, min(target // channels, pixels)), 1
    return 1, math.ceil(channels / target)


def spy_raster(
    op: ConvOperator, target: tuple[int, int], *, max_bytes: int | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """The group of the stored entries in each bin of the matrix (-1: none stored).

    Parameters
    ----------
    op : Conv or ConvTranspose
    target : (int, int)
        About how many bins a side (the picture's pixels).
    max_bytes : int, optional
        Budget for the pattern and the raster.

    Returns
    -------
    raster : numpy.ndarray
        Bins aligned with the blocks (see :func:`aligned_bins`); a bin holding
        entries of several groups shows the largest group.
    span : (int, int)
        The matrix rows and columns the raster covers: the matrix's own, or more
        when the last bin holds fewer blocks than the others (the rest is empty).
    """
    c_out, c_in = op.output_shape[0], op.input_shape[0]
    out_pixels, in_pixels = op.shape[0] // c_out, op.shape[1] // c_in
    (k_rows, g_rows), (k_cols, g_cols) = (
        aligned_bins(target[0], c_out, out_pixels),
        aligned_bins(target[1], c_in, in_pixels),
    )
    check_budget(
        16 * c_out * k_rows * c_in * k_cols // (g_rows * g_cols) + 8 * c_out * c_in,
        "spy-plot raster",
        max_bytes=max_bytes,
    )
    pattern = layer_pattern(op, max_bytes=max_bytes)
    rows = np.repeat(np.arange(pattern.n_rows, dtype=np.int64), np.diff(pattern.indptr))
    columns = pattern.columns.astype(np.int64)
    block = np.zeros((k_rows, k_cols), dtype=bool)  # the pattern binned within one block
    block[rows * k_rows // out_pixels, columns * k_cols // in_pixels] = True
    grid = _block_max(group_grid(op), g_rows, g_cols)
    raster = np.where(block[None, :, None, :], grid[:, None, :, None], -1)
    span = (grid.shape[0] * g_rows * out_pixels, grid.shape[1] * g_cols * in_pixels)
    return raster.reshape(grid.shape[0] * k_rows, grid.shape[1] * k_cols), span


def _block_max(grid: np.ndarray, g_rows: int, g_cols: int) -> np.ndarray:
    """The largest value of each ``g_rows x g_cols`` tile of ``grid`` (edges padded)."""
    if g_rows == g_cols == 1:
        return grid
    rows, cols = -(-grid.shape[0] // g_rows), -(-grid.shape[1] // g_cols)
    padded = np.full((rows * g_rows, cols * g_cols), -1, dtype=grid.dtype)
    padded[: grid.shape[0], : grid.shape[1]] = grid
    return padded.reshape(rows, g_rows, cols, g_cols).max(axis=(1, 3))


def block_matrix_window(
    op: ConvOperator, i: int, j: int, rows: int, cols: int, *, max_bytes: int | None = None
) -> sp.csr_array:
    """The top-left ``rows x cols`` window of block :math:`(i, j)` of ``op``'s matrix,
    built from the pattern and one kernel (no stored entry where the block is zero)."""
    g = op.geometry
    pattern = layer_pattern(op, max_bytes=max_bytes)
    o, c = (j, i) if op.transposed else (i, j)  # the conv's output and input channel
    shape = (pattern.n_rows, pattern.n_columns)
    if o // g.out_per_group != c // g.in_per_group:
        return sp.csr_array((rows, cols), dtype=op.dtype)
    kernel = np.asarray(op.weight)[o, c % g.in_per_group].reshape(1, -1)
    values = pattern.entry_values(kernel)[0]
    block = sp.csr_array((values, pattern.columns, pattern.indptr), shape=shape)
    return block[:rows, :cols]
