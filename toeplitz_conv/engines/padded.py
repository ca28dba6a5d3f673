"""What the matrix-free engines share: the padding operator and reusable workspaces.

A layer is :math:`A = C \\circ P`: :math:`P` pads each axis by its boundary
rule (a gather through the padding mode's fold map, see
:mod:`toeplitz_conv.core.padding`), :math:`C` is the "valid" conv. The adjoint
ends with :math:`P^T`, a scatter-add of the pads back onto the samples they
were read from (this is where reflect/replicate/circular fold).
"""

from __future__ import annotations

import threading

import numpy as np

from ..core.geometry import Geometry

__all__ = ["Padding", "Workspaces"]

WORKSPACE_LIMIT = 64 * 2**20  # bytes: larger workspaces are allocated per call


class Workspaces:
    """Per-thread arrays, reused across calls (fresh pages cost more than the work).

    One array is kept per name and thread; arrays over ``WORKSPACE_LIMIT``
    bytes are not kept.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, name: str, shape: tuple[int, ...], dtype, zero: bool = False) -> np.ndarray:
        """The workspace ``name`` of this shape and type (``zero``: zeroed when made)."""
        key = (name, shape, np.dtype(dtype))
        kept = getattr(self._local, "buffers", {})
        cached = kept.get(key)
        if cached is not None:
            return cached
        buffer = (np.zeros if zero else np.empty)(shape, dtype=dtype)
        if buffer.nbytes <= WORKSPACE_LIMIT:
            buffers = {k: v for k, v in kept.items() if k[0] != name}  # one shape per name
            buffers[key] = buffer
            self._local.buffers = buffers
        return buffer


class Padding:
    """The padding operator :math:`P` of one layer and its adjoint :math:`P^T`.

    Parameters
    ----------
    geometry : Geometry
    workspaces : Workspaces
        Where the zero-padded copy of the input is kept between calls.

    Attributes
    ----------
    spatial : tuple of int
        The padded input's spatial shape, :math:`n_a + p_a^- + p_a^+`.
    """

    def __init__(self, geometry: Geometry, workspaces: Workspaces) -> None:
        g = geometry
        self.geometry = g
        self.spatial = tuple(n + pb + pa for n, (pb, pa) in zip(g.input_spatial, g.pads))
        self._interior = tuple(slice(pb, pb + n) for (pb, _), n in zip(g.pads, g.input_spatial))
        self._index = [
            g.mode.fold(np.arange(-pb, n + pa), n) for (pb, pa), n in zip(g.pads, g.input_spatial)
        ]
        self._workspaces = workspaces

    def pad(self, x: np.ndarray) -> np.ndarray:
        """:math:`P x` for a batch ``(B, C_in, *input_spatial)``."""
        g = self.geometry
        if g.mode.drops_reads:
            if not any(p for pair in g.pads for p in pair):
                return x
            # the border of this buffer is written once (zeros) and never again
            padded = self._workspaces.get(
                "zero_padded", (x.shape[0], g.in_channels, *self.spatial), x.dtype, zero=True
            )
            padded[(slice(None), slice(None), *self._interior)] = x
            return padded
        for axis, index in enumerate(self._index):
            x = np.take(x, index, axis=2 + axis)
        return x

    def unpad(self, padded: np.ndarray) -> np.ndarray:
        """:math:`P^T` of a batch on the padded grid (a new array)."""
        g = self.geometry
        if g.mode.drops_reads:
            return padded[(slice(None), slice(None), *self._interior)].copy()
        per_axis = zip(self._index, g.pads, g.input_spatial)
        for axis, (index, (before, _), n) in enumerate(per_axis):
            padded = _scatter_add(padded, index, before, n, 2 + axis)
        return padded


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
