"""Compile the ``"numba"`` engine's loops ahead of time (``toeplitz-conv compile``).

numba compiles a loop the first time it runs on a value type, a few seconds
each, and caches it on disk. :func:`precompile` runs every compiled loop once
per value type on a tiny layer, so that the compiling happens when the user
chooses (after installing, in a container's build step) and no product of a
later session, in any process, waits for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..core.errors import ParameterError
from ..core.jit import numba_can_cache, numba_import_error, numba_installed
from ..layers.conv import Conv

__all__ = ["CompiledLoops", "precompile"]

PRECOMPILE_DTYPES = ("float32", "float64", "complex64", "complex128")


@dataclass(frozen=True)
class CompiledLoops:
    """One family of loops made ready for one value type.

    Attributes
    ----------
    loops : str
        Which loops (and the layers that run them).
    dtype : str
        The value type.
    seconds : float
        Time taken: compiling, or loading from numba's cache.
    """

    loops: str
    dtype: str
    seconds: float


def _stride_one_single(dtype: np.dtype) -> None:
    _product(Conv(np.ones((2, 1, 3, 3), dtype), (2, 8, 8), padding=1, groups=2, engine="numba"))


def _stride_one_four(dtype: np.dtype) -> None:
    _product(Conv(np.ones((4, 4, 3, 3), dtype), (4, 8, 8), padding=1, engine="numba"))


def _strided(dtype: np.dtype) -> None:
    _product(Conv(np.ones((2, 1, 3, 3), dtype), (2, 8, 8), stride=2, groups=2, engine="numba"))


def _assembly(dtype: np.dtype) -> None:
    Conv(np.ones((2, 2, 3, 3), dtype), (2, 8, 8), padding=1, engine="sparse").tosparse()


def _solves(dtype: np.dtype) -> None:
    """The per-frequency loops of ``solve_tikhonov`` and ``preconditioner`` (float64 for
    real layers' cosine symbols, complex128 for Fourier ones and complex layers), called
    directly: a layer this small is solved by numpy, below the loops' threshold."""
    from ..solve._frequency_numba import damped_residuals, damped_solves  # precompile checked numba

    for value_type in {np.result_type(dtype, np.float64), np.dtype(np.complex128)}:
        symbols = np.ones((1, 2, 2, 4), value_type)
        out = np.empty_like(symbols)
        damped_solves(symbols, 0.1, False, False, out, np.zeros(1, np.int64), 0, 1)
        vectors = np.ones((1, 2, 4), value_type)
        x = np.empty_like(vectors)
        damped_residuals(symbols, symbols, vectors, vectors, True, x, np.zeros(1), 0, 1)


LOOPS: tuple[tuple[str, Callable[[np.dtype], None]], ...] = (
    ("stride 1, one output at a time (depthwise, few channels)", _stride_one_single),
    ("stride 1, four outputs at a time", _stride_one_four),
    ("strided, forward and adjoint", _strided),
    ("matrix assembly (zero padding)", _assembly),
    ("per-frequency solves (solve_tikhonov, preconditioner)", _solves),
)


def precompile(
    dtypes: Iterable[str] = ("float32", "float64"),
    report: Callable[[CompiledLoops], None] | None = None,
) -> list[CompiledLoops]:
    """Compile (or load from numba's cache) every loop of the ``"numba"`` engine.

    Parameters
    ----------
    dtypes : iterable of str
        Value types, each one of ``PRECOMPILE_DTYPES``.
    report : callable, optional
        Called with each :class:`CompiledLoops` as soon as it is ready.

    Returns
    -------
    list of CompiledLoops
        One per (loops, value type), in order.

    Raises
    ------
    ValueError
        An unknown value type (before anything is compiled).
    ImportError
        When numba is not installed or does not import.
    OSError
        When numba has nowhere to write its cache (see
        :func:`toeplitz_conv.core.jit.numba_can_cache`).
    """
    chosen = [str(d) for d in dtypes]
    unknown = [d for d in chosen if d not in PRECOMPILE_DTYPES]
    if unknown or not chosen:
        raise ParameterError(
            "dtypes", f"expected some of {', '.join(PRECOMPILE_DTYPES)}, got {chosen}"
        )
    if not numba_installed():
        raise ImportError(
            'the compiled engine needs numba: pip install "toeplitz-conv[fast]" '
            f"({numba_import_error()})",
            name="numba",
        )
    if not numba_can_cache():
        raise OSError(
            "numba has no writable place for its cache, so compiled loops last only as "
            "long as their process: set NUMBA_CACHE_DIR to a writable folder"
        )
    results = []
    for dtype in chosen:
        for loops, run in LOOPS:
            start = time.perf_counter()
            run(np.dtype(dtype))
            results.append(CompiledLoops(loops, dtype, time.perf_counter() - start))
            if report is not None:
                report(results[-1])
    return results


def _product(op: Conv) -> None:
    op.rmatvec(op.matvec(np.ones(op.shape[1], dtype=op.dtype)))
