"""Conjugate gradients on the Tikhonov normal equations of any layer.

.. math::

    (A^H A + d^2 I)\\, x = A^H b + d^2 x_0,

solved by :func:`scipy.sparse.linalg.cg` on the operator itself (one forward and one
adjoint product per iteration), started from :math:`x_0`, to a relative residual
``rtol`` of the normal equations.

The caller runs it with BLAS on one thread
(:func:`~toeplitz_conv.core.jit.blas_on_one_thread`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla

from ..core.progress import progress_bar
from ..layers.conv import ConvOperator

__all__ = ["normal_equations_cg"]

PROGRESS_DELAY = 2.0  # seconds before a long solve shows its bar (with progress shown)


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
    """``(x, iterations, converged)`` for the normal equations above."""
    n = op.shape[1]
    dtype = np.result_type(op.dtype, b.dtype, np.float64)
    shift = damp * damp  # inf, not OverflowError, for an absurd damp

    def normal(v: np.ndarray) -> np.ndarray:
        return op.rmatvec(op.matvec(v)) + shift * v

    gram = spla.LinearOperator((n, n), matvec=normal, dtype=dtype)
    rhs = op.rmatvec(b).astype(dtype, copy=False)
    start = np.zeros(n, dtype=dtype) if x0 is None else x0.astype(dtype)
    if not np.isfinite(shift):  # damp^2 overflows: x0 is the minimiser to rounding
        return start, 0, True
    if x0 is not None:
        rhs = rhs + shift * start
    count = [0]
    bar = progress_bar(maxiter or 10 * n, "solve_tikhonov (CG)", "it", PROGRESS_DELAY)
    with bar:

        def step(_):
            count[0] += 1
            bar.update(1)

        x, info = spla.cg(
            gram,
            rhs,
            x0=start,
            rtol=rtol,
            atol=0.0,
            maxiter=maxiter,
            M=preconditioner,
            callback=step,
        )
    return x, count[0], info == 0
