"""Engines: how a layer computes :math:`A x` and :math:`A^H y`.

An engine is a small class built from ``(geometry, weight, dtype)`` with two
methods on batches, ``forward(x)`` for :math:`A x` on ``(B, C_in, *n)`` and
``adjoint(y)`` for :math:`A^H y` on ``(B, C_out, *m)`` (the :class:`Engine`
protocol). Transposition and conjugation are not an engine's business: the
operator derives :math:`A^T x = \\overline{A^H \\bar x}` from these two, once.

``"sparse"`` (:mod:`~toeplitz_conv.engines.sparse`)
    SpMV with the assembled CSR matrix (built once per layer, memory-guarded).
``"direct"`` (:mod:`~toeplitz_conv.engines.direct`)
    Matrix-free: pad, im2col by strided views, one GEMM per group.
``"numba"`` (:mod:`~toeplitz_conv.engines.compiled`)
    Matrix-free, compiled loops over the taps (no im2col); needs the optional
    numba package (the ``fast`` extra).
``"auto"``
    :func:`resolve_engine`: with numba installed, ``"numba"`` for layers of
    at most ``AUTO_NUMBA_CHANNELS`` (input x output) channels per group
    (depthwise layers, and few channels), where the GEMM has too little to
    reuse. Otherwise ``"sparse"`` while the matrix is small (at most
    ``AUTO_SPARSE_NNZ`` nonzeros, or ``AUTO_SPARSE_NNZ_DEPTHWISE`` for layers
    with one input and one output channel per group; then well under 10 MB),
    where SpMV's lower fixed cost per call wins; ``"direct"`` otherwise, whose
    memory is of the order of the data and which is faster past those sizes,
    by 2x to 40x as layers grow (SpMV reads about 12 bytes per nonzero, the GEMM
    reuses each input many times). The rule depends on the layer and on whether
    numba is installed, never on what was called before
    (``benchmarks/bench_engines.py`` measures it against the fastest engine).

A new engine is one module here with an engine class, and one entry in
``_REGISTRY``.
"""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

from ..errors import ParameterError
from ..geometry import Geometry
from ..jit import numba_import_error, numba_installed

__all__ = [
    "AUTO_NUMBA_CHANNELS",
    "AUTO_SPARSE_NNZ",
    "AUTO_SPARSE_NNZ_DEPTHWISE",
    "ENGINES",
    "Engine",
    "check_engine",
    "installed_engines",
    "make_engine",
    "resolve_engine",
]

# name -> (module, class); modules are imported on first use
_REGISTRY = {
    "sparse": ("toeplitz_conv.engines.sparse", "SparseEngine"),
    "direct": ("toeplitz_conv.engines.direct", "DirectEngine"),
    "numba": ("toeplitz_conv.engines.compiled", "NumbaEngine"),
}
ENGINES = ("auto", *_REGISTRY)
# "auto" uses the matrix up to these sizes (crossovers measured on 2 cores: GEMM layers
# 3e4-1e5 nonzeros, depthwise 3e5 (float32) to 1e6 (float64))
AUTO_SPARSE_NNZ = 2**16
AUTO_SPARSE_NNZ_DEPTHWISE = 2**19
# "auto" runs compiled loops up to this many (input x output) channels per group (the
# sweep of bench_engines.py: 4->4 dense layers are faster compiled, 16->16 by the GEMM)
AUTO_NUMBA_CHANNELS = 16


class Engine(Protocol):
    """What the operators need of an engine."""

    name: str

    def forward(self, x: np.ndarray) -> np.ndarray:
        """:math:`A x` for a batch ``(B, C_in, *input_spatial)``."""

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """:math:`A^H y` for a batch ``(B, C_out, *output_spatial)``."""


def installed_engines() -> tuple[str, ...]:
    """The engines this installation can run (``"numba"`` only when numba imports)."""
    return tuple(name for name in _REGISTRY if name != "numba" or numba_installed())


def check_engine(engine: object) -> str:
    """``engine`` when it names an engine (or ``"auto"``), else a :class:`ParameterError`."""
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ParameterError("engine", f"engine must be one of {ENGINES}; got {engine!r}")
    return engine


def resolve_engine(engine: str, geometry: Geometry) -> str:
    """The engine that ``engine`` stands for on this layer (``"auto"``: the rule above)."""
    if check_engine(engine) != "auto":
        if engine == "numba" and not numba_installed():
            raise ImportError(
                'engine="numba" needs the optional numba package '
                f'(pip install "toeplitz-conv[fast]"): {numba_import_error()}'
            )
        return engine
    channels = geometry.in_per_group * geometry.out_per_group
    if channels <= AUTO_NUMBA_CHANNELS and numba_installed():
        return "numba"
    depthwise = channels == 1
    small = AUTO_SPARSE_NNZ_DEPTHWISE if depthwise else AUTO_SPARSE_NNZ
    return "sparse" if geometry.nnz <= small else "direct"


def make_engine(engine: str, geometry: Geometry, weight: np.ndarray, dtype: np.dtype) -> Engine:
    """A new engine instance (``"auto"`` resolved first); the caller keeps or drops it.

    Parameters
    ----------
    engine : str
        One of :data:`ENGINES`.
    geometry : Geometry
    weight : numpy.ndarray
        ``geometry.weight_shape``, read-only: engines never write it.
    dtype : numpy.dtype
        The layer's value type.
    """
    module, name = _REGISTRY[resolve_engine(engine, geometry)]
    return getattr(importlib.import_module(module), name)(geometry, weight, dtype)
