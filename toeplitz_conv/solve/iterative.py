"""Conjugate gradients on the Tikhonov normal equations of any layer.

.. math::

    (A^H A + d^2 I)\\, x = A^H b + d^2 x_0,

solved by :func:`scipy.sparse.linalg.cg` on the operator itself (one forward and one
adjoint product per iteration), started from :math:`x_0`, to a relative residual
``rtol`` of the normal equations.

From :data:`BLAS_ONE_THREAD_SIZE` unknowns on, BLAS runs on one thread meanwhile
(:func:`~toeplitz_conv.core.jit.blas_on_one_thread`), on every conjugate-gradient
path (:mod:`.reflect`'s too): ``cg``'s inner products and norms are BLAS calls,
multithreaded on long vectors, and OpenBLAS's threads keep spinning for a while after
each one, taking the cores from the products and transforms that follow. Below that
size it gains nothing, and building the limit inspects every library loaded once per
process.
"""

from __future__ import annotations

import contextlib

import numpy as np
import scipy.sparse.linalg as spla

from ..core.jit import blas_on_one_thread
from ..core.progress import progress_bar
from ..layers.conv import ConvOperator

__all__ = ["BLAS_ONE_THREAD_SIZE", "conjugate_gradients", "normal_equations_cg", "solution_dtype"]

PROGRESS_DELAY = 2.0  # seconds before a long solve shows its bar (with progress shown)
# unknowns from which CG runs with BLAS on one thread (where it pays: benchmarks/bench_blas.py)
BLAS_ONE_THREAD_SIZE = 1 << 13


def normal_equations_cg(
    op: ConvOperator,
    b: np.ndarray,
    damp: float,
    x0: np.ndarray | None,
    *,
    rtol: float,
    maxiter: int | None,
    preconditioner: spla.LinearOperator | None = None,
) -> tuple[np.ndarray, int, bool]:
    """``(x, iterations, converged)`` for the normal equations above (``damp**2`` finite:
    :func:`~.tikhonov.solve_tikhonov` answers an overflowing one with ``x0``)."""
    n = op.shape[1]
    dtype = solution_dtype(op, b, x0)
    shift = damp * damp

    def normal(v: np.ndarray) -> np.ndarray:
        return op.rmatvec(op.matvec(v)) + shift * v

    gram = spla.LinearOperator((n, n), matvec=normal, dtype=dtype)
    rhs = op.rmatvec(b).astype(dtype, copy=False)
    start = np.zeros(n, dtype=dtype) if x0 is None else x0.astype(dtype)
    if x0 is not None:
        rhs = rhs + shift * start
    return conjugate_gradients(
        gram,
        rhs,
        start,
        rtol=rtol,
        maxiter=maxiter,
        preconditioner=preconditioner,
        one_blas_thread=n >= BLAS_ONE_THREAD_SIZE,
    )


def solution_dtype(op: ConvOperator, b: np.ndarray, x0: np.ndarray | None) -> np.dtype:
    """float64, or complex128 where the layer, the data or the prior is complex: the
    solves run in double precision whatever the layer's own precision (a float32
    layer's weights are exact in float64), and a complex prior keeps its imaginary
    part."""
    given = [op.dtype, b.dtype] + ([] if x0 is None else [x0.dtype])
    return np.result_type(*given, np.float64)


def conjugate_gradients(
    gram: spla.LinearOperator,
    rhs: np.ndarray,
    start: np.ndarray,
    *,
    rtol: float,
    maxiter: int | None,
    preconditioner: spla.LinearOperator | None = None,
    atol: float = 0.0,
    one_blas_thread: bool = False,
) -> tuple[np.ndarray, int, bool]:
    """``(x, iterations, converged)`` of :func:`scipy.sparse.linalg.cg` on ``gram x = rhs``
    from ``start``, stopped at :math:`\\|r\\| \\le \\max(\\text{rtol} \\|\\text{rhs}\\|,
    \\text{atol})`, with a progress bar on long solves (and BLAS on one thread
    meanwhile with ``one_blas_thread``)."""
    n = gram.shape[1]
    count = [0]
    bar = progress_bar(maxiter or 10 * n, "solve_tikhonov (CG)", "it", PROGRESS_DELAY)
    threads = blas_on_one_thread() if one_blas_thread else contextlib.nullcontext()
    with bar, threads:

        def step(_):
            count[0] += 1
            bar.update(1)

        x, info = spla.cg(
            gram,
            rhs,
            x0=start,
            rtol=rtol,
            atol=atol,
            maxiter=maxiter,
            M=preconditioner,
            callback=step,
        )
    return x, count[0], info == 0
