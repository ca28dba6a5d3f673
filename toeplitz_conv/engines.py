"""Engines: how an operator computes ``A x`` and ``A^H y``.

``"sparse"``
    SpMV with the assembled CSR matrix (built once, cached, memory-guarded).
``"direct"``
    Matrix-free, from the same index maps. The layer is
    :math:`A = C \\circ P`: :math:`P` pads each axis by its boundary rule (a
    gather through the map :math:`q \\mapsto` input index of
    :mod:`toeplitz_conv.geometry`), and :math:`C` is the "valid" conv,

    .. math::

        (C z)_g = W_g \\, \\operatorname{im2col}(z_g), \\qquad
        W_g \\in \\mathbb{C}^{C_\\text{out}/G \\times (C_\\text{in}/G)\\,K},

    one GEMM per group: the Kronecker structure :math:`\\sum_t W_t \\otimes S_t`
    with the shifts :math:`S_t` applied as strided slices. The adjoint runs
    backwards: a GEMM with :math:`W_g^H`, a strided slice-add per tap
    (col2im), and :math:`P^T`, a scatter-add of the pads back onto the samples
    they were read from (this is where reflect/replicate/circular fold).
``"auto"``
    ``"sparse"`` when the matrix is already assembled, otherwise ``"direct"``:
    no assembly time, memory of the order of the data, and on these layers
    matrix-free products are no slower than SpMV (see ``benchmarks/``).
"""

from __future__ import annotations

import threading

import numpy as np

from .block_matrix import LayerMatrix
from .geometry import Geometry, _fold_boundary, conv_geometry

ENGINES = ("auto", "sparse", "direct")
WORKSPACE_LIMIT = 64 * 2**20  # bytes: larger workspaces are allocated per call
TILE_BYTES = 4 * 2**20  # im2col works on tiles of the first output axis of about this size


def check_engine(engine: str) -> str:
    """Validate an ``engine`` argument."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}; got {engine!r}")
    return engine


def resolve_engine(engine: str, layer: LayerMatrix) -> str:
    """The engine that ``"auto"`` stands for now (the rule in the module docstring)."""
    if engine != "auto":
        return engine
    return "sparse" if layer.is_assembled else "direct"


class DirectEngine:
    """Matrix-free products of one layer (see the module docstring).

    Parameters
    ----------
    geometry : Geometry
    weight : numpy.ndarray
        ``geometry.weight_shape``.
    """

    def __init__(self, geometry: Geometry, weight: np.ndarray) -> None:
        self.geometry = geometry
        g = geometry
        self._weight = weight.reshape(g.groups, g.out_per_group, g.in_per_group * g.taps)
        self._weight_h = np.conj(np.swapaxes(self._weight, 1, 2))
        self._pad_index = [
            _fold_boundary(np.arange(-pb, n + pa), n, g.padding_mode)
            for (pb, pa), n in zip(g.pads, g.input_spatial)
        ]
        self._windows = _tap_windows(g)
        self._padded_spatial = tuple(n + pb + pa for n, (pb, pa) in zip(g.input_spatial, g.pads))
        self._interior = tuple(slice(pb, pb + n) for (pb, _), n in zip(g.pads, g.input_spatial))
        self._workspace = threading.local()
        self._adjoint: DirectEngine | None = None
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
        """:math:`A x` for a batch ``x`` of shape ``(B, C_in, *input_spatial)``."""
        g = self.geometry
        batch = x.shape[0]
        padded = self._pad(x)
        weight = self._weight.astype(x.dtype, copy=False)
        y = np.empty((batch, g.out_channels, *g.output_spatial), dtype=x.dtype)
        for tile in self._tiles(batch, x.dtype):
            cols = self._buffer(
                f"cols{tile.stop - tile.start}",
                (batch, g.in_channels, g.taps, *self._tile_shape(tile)),
                x.dtype,
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
        g = self.geometry
        if self._adjoint_is_a_conv:
            # with stride 1 the valid conv's adjoint is a valid conv (flipped kernel): same
            # fast path as forward, then fold the pads back
            return self._unpad(self._adjoint_engine().forward(y))
        batch = y.shape[0]
        weight_h = self._weight_h.astype(y.dtype, copy=False)
        padded = self._buffer("padded", (batch, g.in_channels, *self._padded_spatial), y.dtype)
        padded.fill(0)
        for tile in self._tiles(batch, y.dtype):
            y_tile = y[:, :, tile].reshape(batch, g.groups, g.out_per_group, -1)
            cols = np.matmul(weight_h, y_tile)
            cols = cols.reshape(batch, g.in_channels, g.taps, *self._tile_shape(tile))
            for t, window in enumerate(self._windows):
                padded[(slice(None), slice(None), *_in_tile(window, tile))] += cols[:, :, t]
        return self._unpad(padded)

    def _tiles(self, batch: int, dtype) -> list[slice]:
        """Ranges of the first output axis whose im2col block stays cache-sized."""
        g = self.geometry
        per_row = batch * g.in_channels * g.taps * int(np.prod(g.output_spatial[1:]))
        rows = max(1, TILE_BYTES // (per_row * np.dtype(dtype).itemsize))
        m = g.output_spatial[0]
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

    def _pad(self, x: np.ndarray) -> np.ndarray:
        g = self.geometry
        if g.padding_mode == "zeros":
            if not any(p for pair in g.pads for p in pair):
                return x
            # the border of this buffer is written once (zeros) and never again
            padded = self._buffer(
                "zero_padded",
                (x.shape[0], g.in_channels, *self._padded_spatial),
                x.dtype,
                zero=True,
            )
            padded[(slice(None), slice(None), *self._interior)] = x
            return padded
        for axis, index in enumerate(self._pad_index):
            x = np.take(x, index, axis=2 + axis)
        return x

    def _unpad(self, padded: np.ndarray) -> np.ndarray:
        g = self.geometry
        if g.padding_mode == "zeros":
            return padded[(slice(None), slice(None), *self._interior)].copy()
        per_axis = zip(self._pad_index, g.pads, g.input_spatial)
        for axis, (index, (before, _), n) in enumerate(per_axis):
            padded = _scatter_add(padded, index, before, n, 2 + axis)
        return padded

    def _buffer(self, name: str, shape: tuple[int, ...], dtype, zero: bool = False) -> np.ndarray:
        """A per-thread workspace, reused across calls (fresh pages cost more than the work).

        Workspaces over ``WORKSPACE_LIMIT`` bytes are not kept.
        """
        key = (name, shape, np.dtype(dtype))
        cached = getattr(self._workspace, "buffers", {}).get(key)
        if cached is not None:
            return cached
        buffer = (np.zeros if zero else np.empty)(shape, dtype=dtype)
        if buffer.nbytes <= WORKSPACE_LIMIT:
            buffers = {
                k: v for k, v in getattr(self._workspace, "buffers", {}).items() if k[0] != name
            }  # one shape per workspace name
            buffers[key] = buffer
            self._workspace.buffers = buffers
        return buffer


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


def _scatter_add(
    array: np.ndarray, index: np.ndarray, before: int, size: int, axis: int
) -> np.ndarray:
    """The adjoint of ``np.take(x, index, axis)`` for a padding map ``index``.

    ``index`` is the identity on the interior ``[before, before + size)``; the
    pad slices outside it are added onto the samples they were read from.
    """
    moved = np.moveaxis(array, axis, 0)
    out = moved[before : before + size].copy()
    pads = np.r_[0:before, before + size : index.size]
    np.add.at(out, index[pads], moved[pads])
    return np.moveaxis(out, 0, axis)
