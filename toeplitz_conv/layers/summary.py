"""Text inspection of a layer: shapes, sizes, the block pattern and padding rules."""

from __future__ import annotations

import numpy as np

from ..core.geometry import Geometry
from ..core.memory import format_bytes

__all__ = ["block_pattern_text", "summary"]

GRID_LIMIT = 16  # channel grids up to this size are drawn channel by channel


def block_pattern_text(geometry: Geometry, transposed: bool = False) -> str:
    """The ``C_out x C_in`` block pattern as a text grid (``#`` a kernel, ``.`` a zero block).

    Larger grids are drawn group by group, each cell a ``C_out/G x C_in/G`` group.
    """
    out_group = np.arange(geometry.out_channels) // geometry.out_per_group
    in_group = np.arange(geometry.in_channels) // geometry.in_per_group
    unit = "channel"
    if max(geometry.out_channels, geometry.in_channels) > GRID_LIMIT:
        out_group = in_group = np.arange(min(geometry.groups, GRID_LIMIT))
        unit = f"group of {geometry.out_per_group}x{geometry.in_per_group} kernels"
    grid = out_group[:, None] == in_group[None, :]
    if transposed:
        grid = grid.T
    rows = ["".join("#" if cell else "." for cell in row) for row in grid]
    more = (
        f" (first {GRID_LIMIT} groups)"
        if geometry.groups > GRID_LIMIT and unit != "channel"
        else ""
    )
    header = f"block pattern (rows: output, columns: input; one cell per {unit}){more}:"
    return "\n".join([header, *("  " + row for row in rows)])


def padding_rules(geometry: Geometry, transposed: bool = False) -> list[str]:
    """One line per spatial axis: sizes, kernel, stride, dilation, pads and boundary rule."""
    lines = []
    for axis in range(geometry.ndim):
        n, m = geometry.input_spatial[axis], geometry.output_spatial[axis]
        if transposed:
            n, m = m, n
        lines.append(
            f"axis {axis}: {n} -> {m}, kernel {geometry.kernel[axis]}, stride "
            f"{geometry.stride[axis]}, dilation {geometry.dilation[axis]}, pads "
            f"{geometry.pads[axis]}; {geometry.mode.block}: {geometry.mode.description}"
        )
    return lines


def summary(op) -> str:
    """A readable description of a :class:`~toeplitz_conv.Conv` or ``ConvTranspose``.

    Parameters
    ----------
    op : Conv or ConvTranspose

    Returns
    -------
    str
        Shapes, groups, nonzeros, density, CSR bytes (all without assembling), the
        engine (for ``"auto"``, the one it picks now), the block pattern as a text
        grid, and the padding rule of each axis.
    """
    g, transposed = op.geometry, op.transposed
    rows, cols = op.shape
    nnz = op.nnz
    lines = [
        f"{type(op).__name__}: {op.input_shape} -> {op.output_shape}, {op.dtype}",
        f"  weight {g.weight_shape}"
        + (" (conv-transpose layout: C_in, C_out/groups, *kernel)" if transposed else ""),
        f"  channels {op.input_shape[0]} -> {op.output_shape[0]}, groups {g.groups}, "
        f"bias {'yes' if op.bias is not None else 'no'}",
        f"  matrix {rows} x {cols}, {nnz:,} nonzeros, density {nnz / (rows * cols):.3g}, "
        f"CSR {format_bytes(op.nbytes)}"
        + (" (assembled)" if op.layer.has_engine("sparse") else " (not assembled)"),
        f"  engine {op.engine}" + (f" ({op.engine_in_use})" if op.engine == "auto" else ""),
    ]
    lines += ["  " + line for line in block_pattern_text(g, transposed).splitlines()]
    lines += ["  " + line for line in padding_rules(g, transposed)]
    return "\n".join(lines)
