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
    :func:`resolve_engine`, by the layer alone (never by what was called before):

    - with numba installed, ``"numba"`` for layers of at most ``c`` (input x
      output) channels per group on images of at least ``p`` outputs, for a
      tier ``(c, p)`` of ``AUTO_NUMBA_TIERS``: up to 16->16 layers (depthwise
      ones included) at any size, 64->64 ones from 512x512, where im2col's copy
      costs more than the GEMM saves;
    - otherwise ``"sparse"`` while the matrix is small (at most
      ``AUTO_SPARSE_NNZ`` nonzeros, or ``AUTO_SPARSE_NNZ_DEPTHWISE`` for layers
      with one input and one output channel per group; then well under 10
      MB), where SpMV's lower fixed cost per call wins;
    - ``"direct"`` beyond, whose memory is of the order of the data and which
      is faster than SpMV as layers grow (SpMV reads about 12 bytes
      per nonzero, the GEMM reuses each input many times).

    The thresholds come from ``benchmarks/bench_engines.py``, which times every
    engine over a sweep of sizes and prints how close "auto" comes to the best.

A new engine is one module here with an engine class, and one entry in
``_REGISTRY``.
"""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

from ..core.errors import ParameterError
from ..core.geometry import Geometry
from ..core.jit import numba_import_error, numba_installed

__all__ = [
    "AUTO_NUMBA_TIERS",
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
# "auto" uses the matrix up to these sizes (the sweep of bench_engines.py: a 16->16 layer
# on 4x4 pixels, 2e4 nonzeros, is faster by the GEMM; depthwise layers up to 5e5)
AUTO_SPARSE_NNZ = 2**14
AUTO_SPARSE_NNZ_DEPTHWISE = 2**19
# ... and compiled loops for layers of at most c (input x output) channels per group on
# images of at least p outputs, for each (c, p) (the sweep: up to 16->16 layers are as
# fast or faster compiled at every size, within 5 % of SpMV on 1x1 pixels; 64->64 ones
# at 512x512; 32->32 ones, measured apart, are within 15 % of im2col either way)
AUTO_NUMBA_TIERS = ((256, 1), (4096, 512 * 512))


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
    if _compiled_wins(geometry) and numba_installed():
        return "numba"
    depthwise = geometry.in_per_group == geometry.out_per_group == 1
    small = AUTO_SPARSE_NNZ_DEPTHWISE if depthwise else AUTO_SPARSE_NNZ
    return "sparse" if geometry.nnz <= small else "direct"


def _compiled_wins(g: Geometry) -> bool:
    """Whether the compiled loops beat the numpy engines on this layer (the rule above)."""
    channels = g.in_per_group * g.out_per_group
    return any(channels <= c and g.output_pixels >= p for c, p in AUTO_NUMBA_TIERS)


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
