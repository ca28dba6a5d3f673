"""The layer: one owner for a conv layer's state and caches.

A :class:`Layer` holds the validated :class:`~toeplitz_conv.core.geometry.Geometry`,
a private read-only copy of the weight and the value type, and caches the
engines built for it (the sparse engine's assembled matrix among them) and a few
derived values (:meth:`Layer.cached`: the solvers' factorizations). It is
immutable: every operator on it (a :class:`~toeplitz_conv.Conv`, its ``.H``,
its ``.T``, the same layer on another engine) sees the same numbers, whatever
the caller later does to the array it passed in. Engines are built once under
a lock, so concurrent first products build one; pickling keeps the geometry and
the weight and drops the caches, which are rebuilt on need.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..core.block_matrix import assemble_csr
from ..core.geometry import Geometry
from ..core.weights import times_power_of_two
from ..engines import Engine, make_engine, resolve_engine

__all__ = ["Layer"]

CACHED_VALUES = 4  # derived values (a solver's factorizations) a layer keeps at most


class Layer:
    """A conv layer's geometry, weight and engine caches.

    Parameters
    ----------
    geometry : Geometry
        The (forward) conv.
    weight : numpy.ndarray
        ``geometry.weight_shape``, validated; it is copied.
    dtype : numpy.dtype
        Value type of the layer.
    """

    def __init__(self, geometry: Geometry, weight: np.ndarray, dtype: np.dtype) -> None:
        if tuple(weight.shape) != geometry.weight_shape:
            raise ValueError(f"weight shape {weight.shape} is not {geometry.weight_shape}")
        self._geometry = geometry
        self._dtype = np.dtype(dtype)
        self._weight = np.array(weight, dtype=self._dtype, order="C", copy=True)
        self._weight.flags.writeable = False
        self._init_caches()

    def _init_caches(self) -> None:
        self._lock = threading.Lock()
        self._engines: dict[str, Engine] = {}
        self._derived: OrderedDict[Hashable, Any] = OrderedDict()

    def __getstate__(self) -> dict:
        return {"geometry": self._geometry, "weight": self._weight, "dtype": self._dtype}

    def __setstate__(self, state: dict) -> None:
        self._geometry, self._dtype = state["geometry"], state["dtype"]
        self._weight = np.array(state["weight"], dtype=self._dtype, copy=True)
        self._weight.flags.writeable = False
        self._init_caches()

    @property
    def geometry(self) -> Geometry:
        """The forward conv's geometry."""
        return self._geometry

    @property
    def weight(self) -> np.ndarray:
        """The weight, ``geometry.weight_shape``, read-only."""
        return self._weight

    @property
    def dtype(self) -> np.dtype:
        """Value type."""
        return self._dtype

    @property
    def nnz(self) -> int:
        """Structural nonzeros of the matrix (closed form, nothing built)."""
        return self._geometry.nnz

    def engine(self, name: str) -> Engine:
        """The engine ``name`` (``"auto"`` resolved) of this layer, built once and cached."""
        engine = self._engines.get(name)  # a resolved name: no rule to apply
        if engine is None:
            name = resolve_engine(name, self._geometry)
            engine = self._engines.get(name)
        if engine is None:
            with self._lock:
                engine = self._engines.get(name)
                if engine is None:
                    engine = make_engine(name, self._geometry, self._weight, self._dtype)
                    self._engines[name] = engine
        return engine

    def cached(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """A value derived from this layer, built once per ``key`` under the lock and kept
        (the ``CACHED_VALUES`` most recently used; ``build`` checks its own memory).

        The solvers keep their per-frequency factorizations here, one per view and
        damp, so that repeated solves (an ADMM loop) reuse them; the caller never
        writes to what it gets.
        """
        with self._lock:
            if key in self._derived:
                self._derived.move_to_end(key)
                return self._derived[key]
        value = build()  # outside the lock: a long build does not stop the products
        with self._lock:
            self._derived[key] = value
            self._derived.move_to_end(key)
            while len(self._derived) > CACHED_VALUES:
                self._derived.popitem(last=False)
        return value

    def rescaled(self, exponent: int) -> Layer:
        """The layer whose weight is this one's times :math:`2^e` (exact barring
        subnormals), built once per exponent and kept (:meth:`cached`) with its own
        caches: the solvers bring extreme magnitudes into range with it, and a loop of
        solves on such a layer reuses its factorizations."""
        return self.cached(
            ("rescaled", int(exponent)),
            lambda: Layer(self._geometry, times_power_of_two(self._weight, exponent), self._dtype),
        )

    def has_engine(self, name: str) -> bool:
        """Whether the engine ``name`` (``"auto"`` resolved) is built already."""
        return resolve_engine(name, self._geometry) in self._engines

    def assemble(self, *, transposed: bool = False, conjugate: bool = False) -> sp.csr_array:
        """A new CSR matrix of :math:`A` (or :math:`A^T`, conjugated on request).

        Its arrays belong to the caller; nothing is cached. The caller checks the
        memory budget first.
        """
        matrix = assemble_csr(self._geometry, self._weight, self._dtype, transposed=transposed)
        if conjugate and self._dtype.kind == "c":
            np.conj(matrix.data, out=matrix.data)
        return matrix
