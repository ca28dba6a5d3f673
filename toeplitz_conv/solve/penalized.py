"""Normal equations with a gradient penalty: the structured step of ADMM and the prox.

.. math::

    (A^H A + \\rho D^T D + d^2 I)\\, x = r,

with :math:`D` the finite-difference gradient whose boundary matches the layer's
(:mod:`.gradient`: periodic for circular padding, Neumann otherwise). Where the
layer's diagonal form (:func:`~.forms.diagonal_form`) is exact it diagonalises
:math:`D^T D` too, and the solve is one small inverse per frequency (the DFT of
circular layers, the DCT-II of replicate padding with symmetric kernels: the fast TV
step of Wang, Yang, Yin and Zhang's FTVd and its multichannel form, for any
``C_out x C_in`` kernels, groups and strides the form takes). Elsewhere conjugate
gradients run on the operator itself, preconditioned by the bounding form (the DCT-I
of reflect padding: condition number at most :math:`2^a`) or, when the penalty or
the damp is positive, by the circulant counterpart's exact inverse
(:func:`~.preconditioners.circulant_counterpart`), started warm.

:func:`solve_penalized` is the public minimiser of
:math:`\\|A x - b\\|^2 + \\rho \\|D x\\|^2 + d^2 \\|x - x_0\\|^2`;
:class:`NormalSolver` is the reusable step the proximal solvers call.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike

from ..core.errors import ParameterError
from ..layers.conv import ConvOperator
from .algebra import euclidean_norm
from .checks import checked_operator, iterations_limit, nonnegative, tolerance, vector
from .forms import diagonal_form
from .gradient import Gradient, gradient_boundary
from .iterative import BLAS_ONE_THREAD_SIZE, conjugate_gradients
from .preconditioners import circulant_counterpart
from .tikhonov import METHOD_OF_BASIS, SolveResult

__all__ = ["NormalSolver", "solve_penalized"]


class NormalSolver:
    """Solves :math:`(A^H A + \\rho D^T D + d^2 I) x = r` for many right-hand sides.

    Parameters
    ----------
    op : Conv or ConvTranspose
    penalty : float
        :math:`\\rho \\ge 0`.
    damp : float
        :math:`d \\ge 0`.
    max_bytes : int, optional
        Memory budget of the per-frequency inverses.

    Attributes
    ----------
    method : str
        ``"fourier"`` or ``"cosine"`` (exact), or ``"pcg"``.
    preconditioner : str or None
        What ``"pcg"`` is preconditioned with: ``"dct1"``, ``"circulant"`` or ``None``.
    gradient : Gradient
        :math:`D`, with the layer's boundary.
    """

    def __init__(self, op: ConvOperator, penalty: float, damp: float, *, max_bytes=None):
        self.op, self.penalty, self.damp = op, float(penalty), float(damp)
        self.gradient = Gradient(op.input_shape, gradient_boundary(op), dtype=op.dtype)
        form = diagonal_form(op).form
        singular = self.damp == 0 and self.penalty == 0
        self._inverse, self._preconditioner, self.preconditioner = None, None, None
        if form is not None and form.exact and not singular:
            self.method = METHOD_OF_BASIS[form.basis]
            self._inverse = form.normal_inverse(
                self.damp, penalty=self.penalty, max_bytes=max_bytes
            )
            return
        self.method = "pcg"
        if singular:
            return  # plain conjugate gradients: nothing positive definite to invert
        if form is not None:  # the bounding form (DCT-I)
            self.preconditioner = form.basis
            inverse = form.normal_inverse(self.damp, penalty=self.penalty, max_bytes=max_bytes)
        else:
            twin = circulant_counterpart(op)
            if twin is None:
                return
            self.preconditioner = "circulant"
            twin_form = diagonal_form(twin).form
            inverse = twin_form.normal_inverse(self.damp, penalty=self.penalty, max_bytes=max_bytes)
        n, dtype = op.shape[1], np.result_type(op.dtype, np.float64)
        self._preconditioner = spla.LinearOperator((n, n), matvec=inverse, dtype=dtype)

    @property
    def exact(self) -> bool:
        """Whether a solve is one exact inverse (else conjugate gradients)."""
        return self._inverse is not None

    def normal(self, x: np.ndarray) -> np.ndarray:
        """:math:`(A^H A + \\rho D^T D + d^2 I) x` for a flat ``x``."""
        out = self.op.rmatvec(self.op.matvec(x)) + self.damp**2 * x
        if self.penalty:
            out = out + self.penalty * self.gradient.rmatvec(self.gradient.matvec(x))
        return out

    def solve(
        self,
        rhs: np.ndarray,
        *,
        start: np.ndarray | None = None,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int | None = None,
    ) -> tuple[np.ndarray, int, bool]:
        """``(x, iterations, converged)`` for a flat ``rhs``; conjugate gradients solve
        for the correction to ``start`` (default zero) and stop when its residual is at
        most :math:`\\max(\\text{rtol} \\|r_0\\|, \\text{atol})`, :math:`r_0` the residual
        at ``start`` (so that a warm start, as in an ADMM loop, still gains ``rtol``); an
        exact solve takes no iterations."""
        if self._inverse is not None:
            return self._inverse(rhs), 0, True
        n = self.op.shape[1]
        dtype = np.result_type(self.op.dtype, rhs.dtype, np.float64)
        gram = spla.LinearOperator((n, n), matvec=self.normal, dtype=dtype)
        residual = rhs.astype(dtype, copy=False)
        if start is not None:
            residual = residual - self.normal(start)
        correction, iterations, converged = conjugate_gradients(
            gram,
            residual,
            np.zeros(n, dtype),
            rtol=rtol,
            atol=atol,
            maxiter=maxiter,
            preconditioner=self._preconditioner,
            one_blas_thread=n >= BLAS_ONE_THREAD_SIZE,
        )
        return (correction if start is None else start + correction), iterations, converged


def solve_penalized(
    op: ConvOperator,
    b: ArrayLike,
    penalty: float,
    damp: float = 0.0,
    *,
    x0: ArrayLike | None = None,
    rtol: float = 1e-8,
    maxiter: int | None = None,
    max_bytes: int | None = None,
) -> SolveResult:
    """Minimise a Tikhonov functional with a gradient penalty.

    .. math::

        x^\\star = \\arg\\min_x \\|A x - b\\|_2^2 + \\rho \\|D x\\|_2^2 + d^2 \\|x - x_0\\|_2^2
        = (A^H A + \\rho D^T D + d^2 I)^{-1} (A^H b + d^2 x_0),

    :math:`D` the forward-difference gradient of every channel
    (:class:`~toeplitz_conv.solve.gradient.Gradient`), periodic for circular layers and
    Neumann otherwise: the smoothing (:math:`H^1`) regulariser, and the quadratic step of
    total-variation solvers (:func:`~toeplitz_conv.solve_tv`).

    Parameters
    ----------
    op : Conv or ConvTranspose
    b : array_like
        Flat (length ``op.shape[0]``) or of the layer's output shape.
    penalty : float
        :math:`\\rho \\ge 0`.
    damp : float
        :math:`d \\ge 0`; :math:`\\rho = d = 0` is least squares (use
        :func:`~toeplitz_conv.solve_tikhonov`).
    x0 : array_like, optional
        The prior of the damp term (default zero).
    rtol : float
        Residual of the normal equations, relative to the one at ``x0`` (or zero), at
        which conjugate gradients stop, in (0, 1).
    maxiter : int, optional
        Conjugate-gradient iterations at most.
    max_bytes : int, optional
        Memory budget of the per-frequency inverses.

    Returns
    -------
    SolveResult
        ``method`` is ``"fourier"``/``"cosine"`` for the exact solves, ``"pcg"`` else
        (with its ``preconditioner``).
    """
    start = time.perf_counter()
    op = checked_operator(op)
    penalty, damp, rtol = (
        nonnegative(penalty, "penalty"),
        nonnegative(damp, "damp"),
        tolerance(rtol),
    )
    maxiter = iterations_limit(maxiter)
    shaped = np.ndim(b) > 1
    b = vector(b, op.output_shape, "b")
    x0 = None if x0 is None else vector(x0, op.input_shape, "x0")
    if penalty == 0 and damp == 0:
        raise ParameterError("penalty", "penalty or damp must be > 0 (else use solve_tikhonov)")
    solver = NormalSolver(op, penalty, damp, max_bytes=max_bytes)
    rhs = op.rmatvec(b)
    if x0 is not None:
        rhs = rhs + damp**2 * x0
    x, iterations, converged = solver.solve(rhs, start=x0, rtol=rtol, maxiter=maxiter)
    residual = euclidean_norm(op.matvec(x) - b)
    return SolveResult(
        x.reshape(op.input_shape) if shaped else x,
        solver.method,
        solver.exact,
        converged,
        iterations,
        residual,
        time.perf_counter() - start,
        solver.preconditioner,
    )
