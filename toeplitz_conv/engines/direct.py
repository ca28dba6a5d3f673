"""The matrix-free engine: pad, im2col by strided views, one GEMM per group.

The layer is :math:`A = C \\circ P`: :math:`P` pads each axis by its boundary
rule (:class:`~toeplitz_conv.engines.padded.Padding`), and :math:`C` is the
"valid" conv,

.. math::

    (C z)_g = W_g \\, \\operatorname{im2col}(z_g), \\qquad
    W_g \\in \\mathbb{C}^{C_\\text{out}/G \\times (C_\\text{in}/G)\\,K},

one GEMM per group: the Kronecker structure :math:`\\sum_t W_t \\otimes S_t`
with the shifts :math:`S_t` applied as strided slices. With stride 1 all taps
are one strided view of the flattened padded input (see
:meth:`DirectEngine.forward`), and the adjoint of :math:`C` is again a valid
conv, with the flipped kernel. Otherwise the adjoint runs backwards: a GEMM
with :math:`W_g^H` and a strided slice-add per tap (col2im). Depthwise
layers (one input and one output channel per group) with stride 1, on
images of ``DEPTHWISE_MIN_COLUMNS`` pixels or more, skip im2col and GEMM:
each tap's window is scaled and accumulated. Last comes
:math:`P^T`, a scatter-add of the pads back onto the samples they were read
from (this is where reflect/replicate/circular fold). Its memory is of the
order of the data: it never builds the matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.geometry import Geometry, conv_geometry
from .padded import Padding, Workspaces

__all__ = ["DirectEngine"]

# im2col works on tiles of whole rows of the first output axis of about TILE_BYTES: with
# few output channels the GEMM is bound by reading its tile, which then stays in cache
TILE_BYTES = 2**20
MIN_TILE_COLUMNS = 2048  # narrower GEMMs lose more than the cache gains
DEPTHWISE_BLOCK_BYTES = 2**19  # accumulator of the depthwise path, per block of channels
DEPTHWISE_MIN_COLUMNS = 2048  # smaller images: the 1 x K GEMMs cost less than per-tap passes
WIDE_GRID_WASTE = 1.5  # most wide-grid columns computed per output kept (see forward)


class DirectEngine:
    """Matrix-free products of one layer (see the module docstring).

    Parameters
    ----------
    geometry : Geometry
    weight : numpy.ndarray
        ``geometry.weight_shape`` (read, never written).
    dtype : numpy.dtype, optional
        The layer's value type (products run in the batch's own type).

    Attributes
    ----------
    path : {"wide", "depthwise", "taps"}
        How :meth:`forward` runs: with stride 1, im2col as one strided view of
        the "wide grid" then GEMM, or for depthwise layers on images of at least
        ``DEPTHWISE_MIN_COLUMNS`` pixels a multiply-add per tap; otherwise an
        im2col window per tap, then GEMM.
    """

    name = "direct"

    def __init__(self, geometry: Geometry, weight: np.ndarray, dtype=None) -> None:
        self.geometry = geometry
        g = geometry
        self._weight = weight.reshape(g.groups, g.out_per_group, g.in_per_group * g.taps)
        self._weight_h = np.conj(np.swapaxes(self._weight, 1, 2))
        self._workspaces = Workspaces()
        self._padding = Padding(g, self._workspaces)
        self._windows = _tap_windows(g)
        self._padded_spatial = self._padding.spatial
        self._adjoint: DirectEngine | None = None
        self._wide_grid = _wide_grid(g, self._padded_spatial)
        self.path = _forward_path(g, self._wide_grid)
        # stride 1 and every output kept (not so for a conv-transpose with
        # output_padding >= stride, whose conv has outputs cut off)
        self._adjoint_is_a_conv = all(
            s == 1 and m + dil * (k - 1) == n_pad
            for s, m, dil, k, n_pad in zip(
                g.stride, g.output_spatial, g.dilation, g.kernel, self._padded_spatial
            )
        )

    # x: (B, C_in, *n) -> (B, C_out, *m)
    def forward(self, x: np.ndarray) -> np.ndarray:
        """:math:`A x` for a batch ``x`` of shape ``(B, C_in, *input_spatial)``.

        With stride 1 the im2col rows of a tap are one contiguous run of the
        flattened padded input (the "wide grid": outputs are computed at every
        padded column and the ones past the output's edge are dropped), so
        im2col is a single strided copy; depthwise layers scale and add those
        runs directly. Other strides copy one window per tap (see :attr:`path`).
        """
        padded = self._padding.pad(x)
        if self._wide_grid is None:
            return self._forward_taps(padded)
        return self._forward_wide(padded)

    def _forward_wide(self, padded: np.ndarray) -> np.ndarray:
        g, wide = self.geometry, self._wide_grid
        batch, dtype = padded.shape[0], padded.dtype
        flat = np.ascontiguousarray(padded).reshape(batch, g.in_channels, -1)
        y = np.empty((batch, g.out_channels, wide.rows * wide.row_length), dtype=dtype)
        if self.path == "depthwise":
            self._wide_depthwise(flat, y)
        else:
            self._wide_gemm(flat, y)
        y = y.reshape(batch, g.out_channels, wide.rows, *self._padded_spatial[1:])
        return y[(slice(None), slice(None), slice(None), *map(slice, g.output_spatial[1:]))]

    def _wide_gemm(self, flat: np.ndarray, y: np.ndarray) -> None:
        """im2col tile by tile, then one GEMM per group into ``y``."""
        g, wide = self.geometry, self._wide_grid
        batch, dtype = flat.shape[0], flat.dtype
        weight = self._weight.astype(dtype, copy=False)
        for start, stop in self._wide_tiles(batch, dtype):
            cols = self._workspaces.get(
                f"wide{stop - start}", (batch, g.in_channels, *g.kernel, stop - start), dtype
            )
            tap_strides = (t * flat.itemsize for t in wide.tap_strides)
            cols[...] = np.ndarray(  # the taps' windows as one strided view
                cols.shape,
                dtype,
                buffer=flat,
                offset=start * flat.itemsize,
                strides=(*flat.strides[:2], *tap_strides, flat.itemsize),
            )
            columns = cols.reshape(batch, g.groups, g.in_per_group * g.taps, -1)
            out = y[..., start:stop].reshape(batch, g.groups, g.out_per_group, -1)
            np.matmul(weight, columns, out=out)

    def _wide_depthwise(self, flat: np.ndarray, y: np.ndarray) -> None:
        """Depthwise (one input and one output channel per group): no im2col, no GEMM.

        A 1 x K GEMM per channel wastes the BLAS; instead each tap's window is
        multiplied by its weight and accumulated, a few channels at a time so
        that the accumulator stays in cache.
        """
        g, wide = self.geometry, self._wide_grid
        batch, dtype = flat.shape[0], flat.dtype
        weight = self._weight.reshape(g.out_channels, g.taps, 1).astype(dtype, copy=False)
        n = wide.columns
        block = max(1, DEPTHWISE_BLOCK_BYTES // (batch * n * flat.itemsize))
        scratch = self._workspaces.get("depthwise", (batch, block, n), dtype)
        for lo in range(0, g.out_channels, block):
            hi = min(lo + block, g.out_channels)
            acc, tmp = y[:, lo:hi, :n], scratch[:, : hi - lo]
            for t, offset in enumerate(wide.tap_offsets):
                window = flat[:, lo:hi, offset : offset + n]
                np.multiply(window, weight[lo:hi, t], out=acc if t == 0 else tmp)
                if t:
                    acc += tmp

    def _wide_tiles(self, batch: int, dtype) -> list[tuple[int, int]]:
        """Column ranges of the wide grid: whole rows of the first axis, cache-sized."""
        wide = self._wide_grid
        return [
            (tile.start * wide.row_length, min(tile.stop * wide.row_length, wide.columns))
            for tile in self.tiles(batch, dtype, wide.row_length)
        ]

    def _forward_taps(self, padded: np.ndarray) -> np.ndarray:
        g = self.geometry
        batch, dtype = padded.shape[0], padded.dtype
        weight = self._weight.astype(dtype, copy=False)
        y = np.empty((batch, g.out_channels, *g.output_spatial), dtype=dtype)
        for tile in self.tiles(batch, dtype):
            cols = self._workspaces.get(
                f"cols{tile.stop - tile.start}",
                (batch, g.in_channels, g.taps, *self._tile_shape(tile)),
                dtype,
            )
            for t, window in enumerate(self._windows):
                cols[:, :, t] = padded[(slice(None), slice(None), *_in_tile(window, tile))]
            # (B, G, Cg*K, pixels) -> one GEMM per group over all samples
            cols = cols.reshape(batch, g.groups, g.in_per_group * g.taps, -1)
            y[:, :, tile] = np.matmul(weight, cols).reshape(
                batch, g.out_channels, *self._tile_shape(tile)
            )
        return y

    # y: (B, C_out, *m) -> (B, C_in, *n)
    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """:math:`A^H y` for a batch ``y`` of shape ``(B, C_out, *output_spatial)``."""
        if self._adjoint_is_a_conv:
            # with stride 1 the valid conv's adjoint is a valid conv (flipped kernel): same
            # fast path as forward, then fold the pads back
            return self._padding.unpad(self._adjoint_engine().forward(y))
        return self._padding.unpad(self._adjoint_strided(y))

    def _adjoint_strided(self, y: np.ndarray) -> np.ndarray:
        """:math:`C^H y` onto the padded input: GEMM with :math:`W_g^H`, then col2im."""
        g = self.geometry
        batch = y.shape[0]
        weight_h = self._weight_h.astype(y.dtype, copy=False)
        padded = self._workspaces.get(
            "padded", (batch, g.in_channels, *self._padded_spatial), y.dtype
        )
        padded.fill(0)
        for tile in self.tiles(batch, y.dtype):
            y_tile = y[:, :, tile].reshape(batch, g.groups, g.out_per_group, -1)
            cols = np.matmul(weight_h, y_tile)
            cols = cols.reshape(batch, g.in_channels, g.taps, *self._tile_shape(tile))
            for t, window in enumerate(self._windows):
                padded[(slice(None), slice(None), *_in_tile(window, tile))] += cols[:, :, t]
        return padded

    def tiles(self, batch: int, dtype, row_length: int | None = None) -> list[slice]:
        """Ranges of the first output axis whose im2col block stays cache-sized.

        ``row_length`` is the number of im2col columns per output row (default:
        the outputs of one row).
        """
        g = self.geometry
        if row_length is None:
            row_length = math.prod(g.output_spatial[1:])
        per_column = batch * g.in_channels * g.taps * np.dtype(dtype).itemsize
        columns = max(TILE_BYTES // per_column, MIN_TILE_COLUMNS)
        m = g.output_spatial[0]
        count = -(-m // max(1, columns // row_length))
        rows = -(-m // count)  # tiles of equal size, none left small
        return [slice(lo, min(lo + rows, m)) for lo in range(0, m, rows)]

    def _tile_shape(self, tile: slice) -> tuple[int, ...]:
        return (tile.stop - tile.start, *self.geometry.output_spatial[1:])

    def _adjoint_engine(self) -> DirectEngine:
        """For stride 1: the valid conv :math:`C^H` as a forward engine (built once).

        :math:`C^H` correlates the output, zero-padded by :math:`\\delta (k - 1)`, with
        the flipped, conjugated kernel whose channel roles are swapped in each group.
        """
        if self._adjoint is None:
            g = self.geometry
            weight = self._weight.reshape(g.groups, g.out_per_group, g.in_per_group, *g.kernel)
            weight = np.conj(np.flip(weight, axis=tuple(range(3, 3 + g.ndim))))
            weight = np.swapaxes(weight, 1, 2).reshape(g.in_channels, g.out_per_group, *g.kernel)
            pads = tuple((dil * (k - 1),) * 2 for dil, k in zip(g.dilation, g.kernel))
            adjoint_geometry = conv_geometry(
                weight.shape, g.output_shape, padding=pads, dilation=g.dilation, groups=g.groups
            )
            self._adjoint = DirectEngine(adjoint_geometry, weight)
        return self._adjoint


@dataclass(frozen=True)
class _WideGrid:
    """Stride-1 outputs indexed by their first padded input sample (flat, C order).

    Output ``(i_1, .., i_d)`` sits at column :math:`\\sum_a i_a s_a` of the wide
    grid, :math:`s_a` the flat strides of the padded input; tap ``t`` reads
    column plus :math:`\\sum_a t_a \\delta_a s_a`.
    """

    rows: int  # outputs along the first axis
    row_length: int  # padded samples per step of the first axis
    columns: int  # wide-grid columns up to and including the last output's
    tap_strides: tuple[int, ...]  # flat input step per kernel index, per axis
    tap_offsets: tuple[int, ...]  # flat input offset of each tap, kernel in C order


def _wide_grid(g: Geometry, padded_spatial: tuple[int, ...]) -> _WideGrid | None:
    """The wide grid of a stride-1 layer, unless it computes too many dropped columns."""
    if any(s != 1 for s in g.stride):
        return None
    flat_strides = [math.prod(padded_spatial[a + 1 :]) for a in range(g.ndim)]
    row_length = flat_strides[0]
    if row_length > WIDE_GRID_WASTE * math.prod(g.output_spatial[1:]):
        return None
    tap_strides = tuple(dil * s for dil, s in zip(g.dilation, flat_strides))
    return _WideGrid(
        rows=g.output_spatial[0],
        row_length=row_length,
        columns=1 + sum((m - 1) * s for m, s in zip(g.output_spatial, flat_strides)),
        tap_strides=tap_strides,
        tap_offsets=tuple(
            sum(t * s for t, s in zip(tap, tap_strides)) for tap in np.ndindex(*g.kernel)
        ),
    )


def _forward_path(g: Geometry, wide: _WideGrid | None) -> str:
    """How the forward runs: ``"taps"`` (an im2col window per tap, then GEMM),
    ``"wide"`` (the wide grid's one strided im2col, then GEMM) or ``"depthwise"``
    (the wide grid, a multiply-add per tap)."""
    if wide is None:
        return "taps"
    depthwise = g.in_per_group == g.out_per_group == 1
    return "depthwise" if depthwise and wide.columns >= DEPTHWISE_MIN_COLUMNS else "wide"


def _in_tile(window: tuple[slice, ...], tile: slice) -> tuple[slice, ...]:
    """A tap's window restricted to the outputs ``tile`` of the first axis."""
    first = window[0]
    start = first.start + tile.start * first.step
    stop = start + (tile.stop - tile.start - 1) * first.step + 1
    return (slice(start, stop, first.step), *window[1:])


def _tap_windows(g: Geometry) -> list[tuple[slice, ...]]:
    """For each tap, the strided slice of the padded input its outputs read."""
    windows = []
    for tap in np.ndindex(*g.kernel):
        windows.append(
            tuple(
                slice(t * dil, t * dil + (m - 1) * s + 1, s)
                for t, dil, m, s in zip(tap, g.dilation, g.output_spatial, g.stride)
            )
        )
    return windows
