"""Threads, and the optional numba: whether it works, and how compiled loops are run.

Compiled loops (the ``"numba"`` engine's, :mod:`toeplitz_conv.engines._conv_numba`,
and the assembly's, :mod:`toeplitz_conv.core._assembly_numba`) take a range of jobs
``first <= job < last`` whose outputs never overlap; :func:`run_jobs` splits a
product's jobs over a pool of threads (the loops release the GIL). The pool is
this module's own, so the loops are safe to call from any number of user
threads, and a forked child starts a pool of its own.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import math
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .progress import progress_enabled

__all__ = [
    "FFT_THREADED_SIZE",
    "blas_on_one_thread",
    "fft_workers",
    "compiled_threads",
    "cores",
    "numba_can_cache",
    "numba_import_error",
    "numba_installed",
    "run_jobs",
]

# work estimated to take less than this on one thread runs on the caller's thread alone:
# a second thread costs more than it saves (waking one takes tens of microseconds)
SERIAL_SECONDS = 1e-4
CHUNK_SECONDS = 5e-5  # jobs are handed out in chunks of about this much work (at least
# two chunks per thread): small enough to even out the threads' ends, large enough that a
# chunk's call costs little beside it
COMPILE_NOTICE_SECONDS = 1.0  # a first call slower than this says that numba compiles


def cores() -> int:
    """Threads for parallel work: the cores this process may use, or ``OMP_NUM_THREADS``
    when set lower (as under MPI, one thread per rank)."""
    usable = _usable_cores()
    requested = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(usable or 1, int(requested))) if requested.isdigit() else usable or 1


@functools.cache
def _usable_cores() -> int:
    """The cores this process may use (read once per process: a system call)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def compiled_threads() -> int:
    """Threads a compiled loop uses: :func:`cores`, at most
    ``numba.config.NUMBA_NUM_THREADS`` (the ``NUMBA_NUM_THREADS`` variable)."""
    import numba

    return max(1, min(numba.config.NUMBA_NUM_THREADS, cores()))


def blas_on_one_thread():
    """A context in which BLAS runs on one thread (threadpoolctl; the whole process).

    The solvers' own BLAS work is vector operations and small matrices. OpenBLAS's
    idle threads keep spinning for a while after each multithreaded call and take
    the cores from the products and FFTs that follow, whose threads are their own.
    Every conjugate-gradient path of :func:`~toeplitz_conv.solve_tikhonov` on large
    layers runs in it (:mod:`~toeplitz_conv.solve.iterative`); wrap your own solver
    loops around a layer's products in it the same way::

        with tc.blas_on_one_thread():
            x = scipy.sparse.linalg.lsqr(op, b, damp=0.02, iter_lim=60)[0]

    What it buys on your machine: ``benchmarks/bench_blas.py``.
    """
    return _blas_controller().limit(limits=1, user_api="blas")


@functools.cache
def _blas_controller():
    """The process's thread pools, inspected once (BLAS is loaded with numpy)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def numba_installed() -> bool:
    """Whether numba imports (installed, and working with this numpy: numba refuses a
    numpy newer than it supports)."""
    return numba_import_error() is None


@functools.cache
def numba_can_cache() -> bool:
    """Whether numba has a place to cache compiled loops on disk: beside the package,
    or in the user's cache directory (``NUMBA_CACHE_DIR``). Where it has none (a
    read-only installation with no writable home, as in a locked-down container)
    numba refuses ``cache=True`` as soon as a loop is defined; the loops are then
    defined uncached and compile once per process."""
    import numba

    try:
        numba.njit(cache=True)(_cache_probe)
    except RuntimeError:
        return False
    return True


def _cache_probe() -> None:  # pragma: no cover
    """The loop :func:`numba_can_cache` defines (and never compiles)."""


@functools.cache
def numba_import_error() -> str | None:
    """Why the compiled loops do not import (``None`` when they do)."""
    try:
        importlib.import_module("numba")
    except ImportError as error:
        return str(error)
    return None


_pool: tuple[int, ThreadPoolExecutor] | None = None  # (workers, pool)
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != workers:
            _pool = (workers, ThreadPoolExecutor(workers, thread_name_prefix="toeplitz_conv"))
        return _pool[1]


def _forget_pool_after_fork() -> None:
    """A forked child has none of the parent's threads: it starts a pool of its own."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()
    _usable_cores.cache_clear()  # a child may be placed on other cores


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def run_jobs(kernel: Callable, args: tuple, jobs: int, seconds: float, first: int = 0) -> None:
    """``kernel(*args, lo, hi)`` over the jobs ``first .. first + jobs - 1``, shared by
    :func:`compiled_threads` threads, or by the caller's alone when ``seconds``, the
    caller's estimate of the time on one thread, is under ``SERIAL_SECONDS``.

    The first call of a kernel on new value types in a process may compile it
    (seconds, once per installation: numba caches it on disk); when it takes over
    ``COMPILE_NOTICE_SECONDS`` and progress is shown (:mod:`toeplitz_conv.core.progress`),
    a line on stderr says so.
    """
    key = (kernel, *[a.dtype for a in args if type(a) is np.ndarray])
    if key in _seen:  # the common case: no timer (a thread would cost more than small work)
        _run_jobs(kernel, args, jobs, seconds, first)
        return
    timer = threading.Timer(COMPILE_NOTICE_SECONDS, _notice, (kernel.__name__,))
    timer.daemon = True
    if progress_enabled():
        timer.start()
    try:
        _run_jobs(kernel, args, jobs, seconds, first)
    finally:
        timer.cancel()
        _seen.add(key)


_seen: set[tuple] = set()  # (kernel, array value types) already run in this process


def _notice(name: str) -> None:
    print(
        f"toeplitz_conv: numba is compiling its {name} loops for these value types "
        "(once: it caches them on disk; `toeplitz-conv compile` compiles them all ahead)",
        file=sys.stderr,
        flush=True,
    )


def _run_jobs(kernel: Callable, args: tuple, jobs: int, seconds: float, first: int) -> None:
    """The jobs in chunks of about ``CHUNK_SECONDS`` (at least two per thread), handed
    out in turn: each thread, the caller's first, takes the next chunk until none is
    left.

    A pool thread may start late (waking a sleeping core takes tens of
    microseconds on a virtual machine); the caller's thread meanwhile takes its
    chunks, and a pool task that has not started when the work is done is
    cancelled, not waited for: split in fixed halves, a late thread made two
    threads slower than one on short products.
    """
    threads = max(1, min(compiled_threads(), jobs)) if seconds >= SERIAL_SECONDS else 1
    if threads == 1:
        kernel(*args, first, first + jobs)
        return
    count = min(jobs, max(2 * threads, math.ceil(seconds / CHUNK_SECONDS)))
    bounds = [first + jobs * k // count for k in range(count + 1)]
    taken = itertools.count()  # next() on it is atomic under the GIL

    def take_chunks() -> None:
        while (chunk := next(taken)) < count:
            kernel(*args, bounds[chunk], bounds[chunk + 1])

    pool = _executor(threads - 1)
    others = [pool.submit(take_chunks) for _ in range(threads - 1)]
    try:
        take_chunks()
    finally:  # the other threads write into args: never return while one is running
        for future in others:
            if not future.cancel():
                future.result()


# entries from which scipy.fft's transforms run on every core (benchmarks/bench_blas.py's
# FFT table): below, starting the threads costs more than the transform
FFT_THREADED_SIZE = 1 << 17


def fft_workers(array: np.ndarray) -> int:
    """scipy.fft's ``workers`` for a transform of ``array``: all cores (-1) from
    :data:`FFT_THREADED_SIZE` entries, else one."""
    return -1 if array.size >= FFT_THREADED_SIZE else 1
