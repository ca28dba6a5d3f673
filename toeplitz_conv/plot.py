"""Pictures of a conv layer's matrix (matplotlib, the ``plot`` extra).

Every function draws on ``ax`` when given (else on a new figure) and returns the
figure. The pictures follow the seed's figures: the ``C_out x C_in`` grid of
kernels with the ``groups`` pattern, the whole matrix coloured by block, one
block zoomed to show its Toeplitz, circulant or boundary-folded structure, and
the singular-value spectrum.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .geometry import Geometry
from .memory import check_budget
from .operators import ConvOperator

__all__ = ["plot_block", "plot_block_pattern", "plot_matrix", "plot_singular_values"]

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

RASTER_LIMIT = 2048  # a spy plot bins the matrix into at most this many pixels a side
RASTER_CHUNK = 1 << 20  # stored entries binned per step


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def _block_colors(n: int):
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


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
    grid = _group_grid(geometry)
    if transposed:
        grid = grid.T
    rows, cols = grid.shape
    fig, ax = _axes(ax, (0.6 * cols + 1.5, 0.6 * rows + 1.2))
    colors = _block_colors(geometry.groups)
    image = np.ones((rows, cols, 4))
    for g in range(geometry.groups):
        image[grid == g] = colors[g]
    ax.imshow(image, interpolation="nearest")
    ax.set_xticks(np.arange(cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="0.3", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    ax.set_xticks(range(cols), [str(j + 1) for j in range(cols)])
    ax.set_yticks(range(rows), [str(i + 1) for i in range(rows)])
    ax.set_xlabel("input channel $j$")
    ax.set_ylabel("output channel $i$")
    if annotate and rows * cols <= 144:
        for i, j in zip(*np.nonzero(grid >= 0)):
            a, b = (j, i) if transposed else (i, j)
            name = f"$h_{{{a + 1}{b + 1}}}^T$" if transposed else f"$h_{{{a + 1}{b + 1}}}$"
            ax.text(j, i, name, ha="center", va="center", fontsize=9)
    ax.set_title(f"groups = {geometry.groups}")
    return fig


def _group_grid(geometry: Geometry) -> np.ndarray:
    """Group index of each (output, input) channel block, -1 where the block is zero."""
    out_group = np.arange(geometry.out_channels) // geometry.out_per_group
    in_group = np.arange(geometry.in_channels) // geometry.in_per_group
    return np.where(out_group[:, None] == in_group[None, :], out_group[:, None], -1)


def plot_matrix(
    op: ConvOperator, ax: Axes | None = None, *, max_bytes: int | None = None
) -> Figure:
    """Spy plot of the whole matrix, each non-zero coloured by its channel block.

    Large matrices are binned into at most ``RASTER_LIMIT`` pixels a side; a
    pixel shows a colour when any entry of its bin is stored.

    Parameters
    ----------
    op : Conv or ConvTranspose
    ax : matplotlib.axes.Axes, optional
    max_bytes : int, optional
        Memory budget for assembling the matrix.
    """
    matrix = op.tosparse("coo", max_bytes=max_bytes)
    rows, cols = op.shape
    out_pixels, in_pixels = rows // op.output_shape[0], cols // op.input_shape[0]
    bins = (min(rows, RASTER_LIMIT), min(cols, RASTER_LIMIT))
    check_budget(bins[0] * bins[1] * 8, "spy-plot raster", max_bytes=max_bytes)
    raster = np.full(bins, -1, dtype=np.int64)
    for lo in range(0, matrix.nnz, RASTER_CHUNK):  # bounded temporaries: a chunk at a time
        row = matrix.row[lo : lo + RASTER_CHUNK].astype(np.int64)
        col = matrix.col[lo : lo + RASTER_CHUNK].astype(np.int64)
        block = (row // out_pixels) * op.input_shape[0] + col // in_pixels
        raster[row * bins[0] // rows, col * bins[1] // cols] = block
    n_blocks = op.output_shape[0] * op.input_shape[0]
    colors = np.array(_block_colors(n_blocks))
    image = np.ones((*bins, 4))
    image[raster >= 0] = colors[raster[raster >= 0]]
    fig, ax = _axes(ax, (6, 6 * rows / max(cols, 1) + 0.5))
    ax.imshow(image, interpolation="nearest", extent=(0, cols, rows, 0), aspect="auto")
    for c in range(1, op.output_shape[0]):
        ax.axhline(c * out_pixels, color="0.5", linewidth=0.4)
    for c in range(1, op.input_shape[0]):
        ax.axvline(c * in_pixels, color="0.5", linewidth=0.4)
    ax.set_xlabel("column (input channel, pixel)")
    ax.set_ylabel("row (output channel, pixel)")
    ax.set_title(f"{type(op).__name__} matrix {rows} x {cols}, {matrix.nnz:,} non-zeros")
    return fig


def plot_block(
    op: ConvOperator,
    i: int = 0,
    j: int = 0,
    ax: Axes | None = None,
    *,
    max_size: int = 400,
    max_bytes: int | None = None,
) -> Figure:
    """One scalar block :math:`H_{ij}` zoomed: its Toeplitz/circulant/folded values.

    Parameters
    ----------
    op : Conv or ConvTranspose
    i, j : int
        Output and input channel of the block.
    ax : matplotlib.axes.Axes, optional
    max_size : int
        Show at most the top-left ``max_size x max_size`` corner.
    max_bytes : int, optional
        Memory budget for assembling the matrix.
    """
    c_out, c_in = op.output_shape[0], op.input_shape[0]
    if not (0 <= i < c_out and 0 <= j < c_in):
        raise ValueError(
            f"block (i, j) must have 0 <= i < {c_out} and 0 <= j < {c_in}; got ({i}, {j})"
        )
    out_pixels, in_pixels = op.shape[0] // c_out, op.shape[1] // c_in
    matrix = op.tosparse(max_bytes=max_bytes)
    rows = min(out_pixels, max_size)
    cols = min(in_pixels, max_size)
    block = matrix[i * out_pixels : i * out_pixels + rows, j * in_pixels : j * in_pixels + cols]
    values = np.real(block.toarray())
    stored = block.toarray() != 0
    fig, ax = _axes(ax, (5.5, 5.5 * rows / max(cols, 1) + 0.5))
    limit = float(np.abs(values).max(initial=0.0)) or 1.0
    shown = np.where(stored, values, np.nan)
    image = ax.imshow(shown, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8)
    g = op.geometry
    kind = g.mode.block if g.mode.name in ("zeros", "circular") else (
        f"{g.mode.block} ({g.padding_mode})"
    )
    levels = f"{g.ndim}-level " if g.ndim > 1 else ""
    part = "" if (rows, cols) == (out_pixels, in_pixels) else f", top-left {rows} x {cols}"
    ax.set_title(
        f"block $H_{{{i + 1}{j + 1}}}$ ({out_pixels} x {in_pixels}{part})\n{levels}{kind}",
        fontsize=10,
    )
    ax.set_xlabel("input pixel")
    ax.set_ylabel("output pixel")
    return fig


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
