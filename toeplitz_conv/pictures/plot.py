"""Pictures of a conv layer's matrix (matplotlib, the ``plot`` extra).

Every function draws one panel on ``ax`` when given (else on a new figure) and
returns the figure. One colour meaning holds across the panels: **colour =
group**. The ``C_out x C_in`` grid of kernels colours each non-zero block by
its group; the whole matrix colours each stored entry by the group of its
block, with the block borders drawn and the axes ticked at the channel
boundaries (:math:`x_j` for input channels, :math:`y_i` for output channels);
one block zoomed shows its values (a sequential scale when they have one sign,
a diverging one centred on zero otherwise) framed in its group's colour, over
a window a whole number of image rows tall, so that every band of the kernel
and the folded boundary entries are in view. Matrices are drawn with equal
aspect.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..core.geometry import Geometry
from ..layers.conv import ConvOperator
from .raster import block_matrix_window, group_grid, spy_raster

__all__ = [
    "block_window",
    "plot_block",
    "plot_block_pattern",
    "plot_matrix",
    "plot_singular_values",
]

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

RASTER_LIMIT = 1024  # a matrix is binned into at most this many pixels a side
RASTER_SHARE = 0.8  # bins per screen pixel: fewer than one, so none is dropped on screen
WHOLE_BLOCK = 256  # blocks up to this many rows and columns are shown whole
MAX_CHANNEL_LABELS = 12  # more channels than this: label every k-th
UNSTORED = "white"  # the colour of entries the sparse matrix does not store
BORDER = "0.35"  # the colour of block borders


def group_colors(groups: int) -> list[tuple[float, float, float, float]]:
    """One strong colour per group (matplotlib's ``tab10``, repeating after ten)."""
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    return [cmap(g % cmap.N) for g in range(groups)]


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=figsize, layout="constrained")


def _channel_ticks(ax: Axes, which: str, channels: int, pixels: int, symbol: str) -> None:
    """Ticks at the channel boundaries; each channel labelled at its middle."""
    from matplotlib.ticker import FixedLocator, NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    step = max(1, math.ceil(channels / MAX_CHANNEL_LABELS))
    shown = range(0, channels, step)
    axis.set_major_locator(FixedLocator([(c + 0.5) * pixels - 0.5 for c in shown]))
    axis.set_ticklabels([f"${symbol}_{{{c + 1}}}$" for c in shown])
    axis.set_minor_locator(FixedLocator(np.arange(channels + 1) * pixels - 0.5))
    axis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis=which, which="major", length=0)
    ax.tick_params(axis=which, which="minor", length=4)


def _border_style(channels: int) -> tuple[str, float]:
    """Block borders: dark for a few channels, faint when many would hide the entries."""
    return (BORDER, 0.7) if channels <= MAX_CHANNEL_LABELS else ("0.82", 0.3)


def plot_block_pattern(
    layer: ConvOperator | Geometry, ax: Axes | None = None, *, annotate: bool = True
) -> Figure:
    """The ``C_out x C_in`` grid of scalar kernels; non-zero blocks coloured by group.

    Block :math:`(i, j)` holds kernel :math:`h_{ij}` when input channel :math:`j`
    is in the group of output channel :math:`i`, and is zero otherwise: with
    ``groups = G`` the grid is block-diagonal with :math:`G` blocks of
    :math:`C_\\text{out}/G \\times C_\\text{in}/G` kernels.

    Parameters
    ----------
    layer : Conv, ConvTranspose or Geometry
        For a conv-transpose, the grid of its matrix (the conv's, transposed).
    ax : matplotlib.axes.Axes, optional
    annotate : bool
        Write :math:`h_{ij}` in the non-zero blocks (small grids only).
    """
    geometry = layer if isinstance(layer, Geometry) else layer.geometry
    transposed = isinstance(layer, ConvOperator) and layer.transposed
    grid = group_grid(layer)
    rows, cols = grid.shape
    fig, ax = _axes(ax, (0.5 * cols + 1.6, 0.5 * rows + 1.2))
    colors = np.array(group_colors(geometry.groups))
    image = np.ones((rows, cols, 4))
    image[grid >= 0] = colors[grid[grid >= 0]]
    ax.imshow(image, interpolation="nearest")
    _channel_ticks(ax, "x", cols, 1, "x")
    _channel_ticks(ax, "y", rows, 1, "y")
    color, width = _border_style(max(rows, cols))
    ax.grid(which="minor", color=color, linewidth=width)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("input channel $x_j$")
    ax.set_ylabel("output channel $y_i$")
    if annotate and rows * cols <= 144:
        for i, j in zip(*np.nonzero(grid >= 0)):
            a, b = (j, i) if transposed else (i, j)
            name = f"$h_{{{a + 1}{b + 1}}}^T$" if transposed else f"$h_{{{a + 1}{b + 1}}}$"
            ax.text(j, i, name, ha="center", va="center", fontsize=9, color="white")
    ax.set_title(f"kernels, groups = {geometry.groups}")
    return fig


def _raster_size(ax: Axes, rows: int, cols: int) -> tuple[int, int]:
    """Bins per side: a little under one per screen pixel of the axes (so that no bin is
    dropped when the image is drawn), never more than the entries."""
    fig = ax.figure
    box = ax.get_position()
    width, height = box.width * fig.get_figwidth(), box.height * fig.get_figheight()
    pixels_per_entry = RASTER_SHARE * fig.dpi * min(width / cols, height / rows)
    scale = min(pixels_per_entry, RASTER_LIMIT / max(rows, cols))
    return min(rows, max(1, math.floor(rows * scale))), min(cols, max(1, math.floor(cols * scale)))


def plot_matrix(
    op: ConvOperator, ax: Axes | None = None, *, max_bytes: int | None = None
) -> Figure:
    """Spy plot of the whole matrix, each stored entry coloured by the group of its block.

    The matrix is binned into about one bin per screen pixel (at most
    ``RASTER_LIMIT`` a side), aligned with the blocks; a bin is coloured when any
    entry in it is stored. The bins come from the layer's structure
    (:func:`toeplitz_conv.pictures.raster.spy_raster`), not from the assembled matrix, so a
    layer of billions of entries is drawn in the memory of its picture. Lines
    mark the block borders, one block per (output, input) channel pair.

    Parameters
    ----------
    op : Conv or ConvTranspose
    ax : matplotlib.axes.Axes, optional
    max_bytes : int, optional
        Memory budget for the layer's pattern and the raster.
    """
    rows, cols = op.shape
    c_out, c_in = op.output_shape[0], op.input_shape[0]
    out_pixels, in_pixels = rows // c_out, cols // c_in
    fig, ax = _axes(ax, (6.2, min(9.0, max(2.5, 6.2 * rows / max(cols, 1))) + 0.6))
    raster, (span_rows, span_cols) = spy_raster(
        op, _raster_size(ax, rows, cols), max_bytes=max_bytes
    )
    colors = np.array(group_colors(op.geometry.groups))
    image = np.ones((*raster.shape, 4))
    image[raster >= 0] = colors[raster[raster >= 0]]
    ax.imshow(image, interpolation="nearest", extent=(-0.5, span_cols - 0.5, span_rows - 0.5, -0.5))
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    color, width = _border_style(max(c_out, c_in))
    for c in range(1, c_out):
        ax.axhline(c * out_pixels - 0.5, color=color, linewidth=width)
    for c in range(1, c_in):
        ax.axvline(c * in_pixels - 0.5, color=color, linewidth=width)
    _channel_ticks(ax, "x", c_in, in_pixels, "x")
    _channel_ticks(ax, "y", c_out, out_pixels, "y")
    ax.set_xlabel(f"columns: input channels, {in_pixels:,} pixels each")
    ax.set_ylabel(f"rows: output channels, {out_pixels:,} pixels each")
    ax.set_title(f"{type(op).__name__} matrix, {rows:,} x {cols:,}, {op.nnz:,} non-zeros")
    return fig


def block_window(op: ConvOperator) -> tuple[int, int]:
    """Rows and columns of the top-left window of a block that shows its whole structure.

    The window is a whole number of output image rows (the leading spatial
    axis): the kernel's extent along that axis plus two, so that every band of
    a multilevel Toeplitz block and the folds at the first image rows are in
    view; the columns are the input rows those outputs read. A 1-D block shows
    at least 24 rows; a block of at most ``WHOLE_BLOCK`` rows and columns is
    shown whole. With circular padding the wrap-around of the leading axis sits
    in the block's far corner, outside a window of a large block; the wraps of
    the other axes are inside it.

    Parameters
    ----------
    op : Conv or ConvTranspose

    Returns
    -------
    rows, cols : int
    """
    g = op.geometry
    out_spatial, in_spatial = op.output_shape[1:], op.input_shape[1:]
    if math.prod(out_spatial) <= WHOLE_BLOCK and math.prod(in_spatial) <= WHOLE_BLOCK:
        return math.prod(out_spatial), math.prod(in_spatial)
    extent = g.dilation[0] * (g.kernel[0] - 1) + 1
    stride = g.stride[0]
    out_lines = min(out_spatial[0], extent + 2 if len(out_spatial) > 1 else max(extent + 2, 24))
    if op.transposed:  # output rows a read input rows near a / s
        in_lines = math.ceil((out_lines + extent) / stride) + 1
    else:
        in_lines = (out_lines - 1) * stride + extent
    in_lines = min(in_spatial[0], in_lines)
    out_row = math.prod(out_spatial[1:])
    in_row = math.prod(in_spatial[1:])
    return out_lines * out_row, in_lines * in_row


def _binned_values(block, bins: tuple[int, int]) -> np.ndarray:
    """The value of largest magnitude in each bin of a sparse block (NaN where none is stored)."""
    block = block.tocoo()
    rows, cols = block.shape
    keys = (
        block.row.astype(np.int64) * bins[0] // rows,
        block.col.astype(np.int64) * bins[1] // cols,
    )
    values = np.real(block.data).astype(np.float64)
    high = np.full(bins, -np.inf)
    low = np.full(bins, np.inf)
    np.maximum.at(high, keys, values)
    np.minimum.at(low, keys, values)
    stored = np.isfinite(high)
    chosen = np.where(np.abs(low) > np.abs(high), low, high)
    return np.where(stored, chosen, np.nan)


def plot_block(
    op: ConvOperator,
    i: int = 0,
    j: int = 0,
    ax: Axes | None = None,
    *,
    window: tuple[int, int] | None = None,
    max_bytes: int | None = None,
) -> Figure:
    """One scalar block :math:`H_{ij}` zoomed: its Toeplitz, circulant or folded values.

    Shows the top-left window of the block (see :func:`block_window`), binned
    to screen pixels when it is large (each bin shows its value of largest
    magnitude). Values are on a sequential scale when they have one sign and
    on a diverging one centred on zero otherwise; entries the matrix does not
    store are white; the frame has the colour of the block's group, and faint
    lines mark the image rows.

    Parameters
    ----------
    op : Conv or ConvTranspose
    i, j : int
        Output and input channel of the block (from 0).
    ax : matplotlib.axes.Axes, optional
    window : (int, int), optional
        Rows and columns of the top-left window; default :func:`block_window`.
    max_bytes : int, optional
        Memory budget for the block's pattern (the matrix is never assembled).
    """
    import matplotlib.pyplot as plt

    c_out, c_in = op.output_shape[0], op.input_shape[0]
    if not (0 <= i < c_out and 0 <= j < c_in):
        raise ValueError(
            f"block (i, j) must have 0 <= i < {c_out} and 0 <= j < {c_in}; got ({i}, {j})"
        )
    out_pixels, in_pixels = op.shape[0] // c_out, op.shape[1] // c_in
    rows, cols = block_window(op) if window is None else window
    rows, cols = min(rows, out_pixels), min(cols, in_pixels)
    block = block_matrix_window(op, i, j, rows, cols, max_bytes=max_bytes)
    fig, ax = _axes(ax, (6.0, min(8.0, max(2.5, 5.2 * rows / max(cols, 1))) + 0.9))
    shown = _binned_values(block, _raster_size(ax, rows, cols))
    finite = shown[np.isfinite(shown)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if low >= 0 or high <= 0:  # one sign: a sequential scale from zero, darker = larger
        cmap = _sequential(reverse=high <= 0)
        limits = (0.0, high) if low >= 0 else (low, 0.0)
    else:
        limit = max(-low, high)
        cmap, limits = plt.get_cmap("RdBu_r"), (-limit, limit)
    if limits[0] == limits[1]:  # every stored entry is zero
        limits = (0.0, 1.0)
    cmap = cmap.with_extremes(bad=UNSTORED)
    image = ax.imshow(
        shown,
        cmap=cmap,
        vmin=limits[0],
        vmax=limits[1],
        interpolation="nearest",
        extent=(-0.5, cols - 0.5, rows - 0.5, -0.5),
    )
    fig.colorbar(image, ax=ax, shrink=0.8, label="entry value")
    _mark_image_rows(ax, op, rows, cols)
    group = group_grid(op)[i, j]
    frame = group_colors(op.geometry.groups)[group] if group >= 0 else BORDER
    for spine in ax.spines.values():
        spine.set_edgecolor(frame)
        spine.set_linewidth(2.5)
    ax.set_title(_block_title(op, i, j, rows, cols, out_pixels, in_pixels, group), fontsize=10)
    ax.set_xlabel("input pixel (row-major)")
    ax.set_ylabel("output pixel (row-major)")
    return fig


def _sequential(reverse: bool):
    """``magma_r`` without its near-white end, which would vanish on the white background."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    colors = plt.get_cmap("magma_r")(np.linspace(0.15, 1.0, 256))
    return ListedColormap(colors[::-1] if reverse else colors)


def _mark_image_rows(ax: Axes, op: ConvOperator, rows: int, cols: int) -> None:
    """Faint lines where a new image row (leading spatial axis) starts."""
    out_row = math.prod(op.output_shape[2:])
    in_row = math.prod(op.input_shape[2:])
    if len(op.input_shape) < 3:
        return
    for r in range(out_row, rows, out_row):
        ax.axhline(r - 0.5, color="0.8", linewidth=0.5, zorder=0.5)
    for c in range(in_row, cols, in_row):
        ax.axvline(c - 0.5, color="0.8", linewidth=0.5, zorder=0.5)


def _block_title(op, i, j, rows, cols, out_pixels, in_pixels, group) -> str:
    g = op.geometry
    kind = (
        g.mode.block
        if g.mode.name in ("zeros", "circular")
        else (f"{g.mode.block} ({g.padding_mode})")
    )
    levels = f"{g.ndim}-level " if g.ndim > 1 else ""
    part = "" if (rows, cols) == (out_pixels, in_pixels) else f"; top-left {rows:,} x {cols:,}"
    where = "zero block" if group < 0 else f"group {group + 1}"
    name = f"H_{{{j + 1}{i + 1}}}^T" if op.transposed else f"H_{{{i + 1}{j + 1}}}"
    return f"block ${name}$ ({out_pixels:,} x {in_pixels:,}{part}), {where}\n{levels}{kind}"


def plot_singular_values(
    values: np.ndarray,
    ax: Axes | None = None,
    *,
    label: str | None = None,
    log: bool = True,
) -> Figure:
    """The singular-value spectrum :math:`\\sigma_1 \\ge \\sigma_2 \\ge \\dots`.

    Parameters
    ----------
    values : array_like
        Singular values (sorted here in descending order).
    ax : matplotlib.axes.Axes, optional
    label : str, optional
        Legend entry.
    log : bool
        Logarithmic value axis.
    """
    values = np.sort(np.asarray(values, dtype=float))[::-1]
    fig, ax = _axes(ax, (6, 4))
    ax.plot(np.arange(1, values.size + 1), values, label=label, linewidth=1.2)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("index $k$")
    ax.set_ylabel(r"singular value $\sigma_k$")
    ax.grid(True, which="both", alpha=0.3)
    if label is not None:
        ax.legend()
    return fig
