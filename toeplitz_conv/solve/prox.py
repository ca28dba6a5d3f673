"""The data term of an inverse problem as a proximal operator, for pyproximal's solvers.

.. math::

    f(x) = \\tfrac{\\sigma}{2} \\|A x - b\\|_2^2, \\qquad
    \\mathrm{prox}_{\\tau f}(v) = \\arg\\min_x f(x) + \\tfrac{1}{2\\tau} \\|x - v\\|_2^2
    = (A^H A + d^2 I)^{-1} (A^H b + d^2 v), \\quad d^2 = \\frac{1}{\\sigma \\tau},

the Tikhonov step of :mod:`.penalized`: exact where the layer's diagonal form is, by
warm-started preconditioned conjugate gradients otherwise. Where pyproximal is
installed :class:`LeastSquaresProx` is a :class:`pyproximal.ProxOperator`, so that
``ADMM``, ``LinearizedADMM``, ``PrimalDual``, ``ProximalGradient`` take it as they
take ``pyproximal.L2``; without it the class works alone.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from ..core.errors import ParameterError
from ..layers.conv import ConvOperator
from .checks import checked_operator, real_number, tolerance, vector
from .penalized import NormalSolver

__all__ = ["LeastSquaresProx"]

try:  # pyproximal's base where it is installed (the optional extra "prox")
    from pyproximal import ProxOperator as _Base
except ImportError:  # pragma: no cover - exercised in an environment without pyproximal
    _Base = object


class LeastSquaresProx(_Base):
    """:math:`\\tfrac{\\sigma}{2}\\|A x - b\\|_2^2` with its exact or warm-started prox.

    Parameters
    ----------
    op : Conv or ConvTranspose
        The forward model :math:`A` (its bias is not part of it).
    b : array_like
        The data, flat or of the layer's output shape.
    sigma : float
        :math:`\\sigma > 0`.
    rtol : float
        Where the prox is not exact: conjugate gradients stop at this residual of the
        normal equations relative to the one at the warm start, in (0, 1). An outer
        loop may lower or raise :attr:`rtol` between calls.
    atol : float
        Also stop once the residual is below this absolute value (:attr:`atol`, which an
        outer loop may set between calls too); 0 to turn off.
    change_rtol : float
        Also stop once the residual is below ``change_rtol`` times the change of the
        right-hand side since the previous call, :math:`d^2 \\|v_k - v_{k-1}\\|` (the
        outer loop's own step: a tolerance that shrinks as it converges); 0 to turn off.
    maxiter : int, optional
        Conjugate-gradient iterations per prox at most.
    max_bytes : int, optional
        Memory budget of the per-frequency inverses.

    Attributes
    ----------
    iterations : int
        Conjugate-gradient iterations of all prox calls so far (0 for exact ones).
    calls : int
        Prox calls so far.
    exact : bool or None
        Whether the last prox was exact (``None`` before the first).

    Notes
    -----
    The warm start is the previous prox's answer, kept apart from the point ``v``
    (the prior of the step), so that an ADMM loop's next step starts near its answer.
    ``tau`` must be a scalar: per-coordinate steps would break the structure the
    exact step uses, and are refused. The gradient is :math:`\\sigma A^H (A x - b)`,
    Lipschitz with constant :math:`\\sigma \\|A\\|^2`
    (:func:`~toeplitz_conv.norm_bounds` proves an upper bound).
    """

    def __init__(
        self,
        op: ConvOperator,
        b: ArrayLike,
        sigma: float = 1.0,
        *,
        rtol: float = 1e-8,
        atol: float = 0.0,
        change_rtol: float = 0.0,
        maxiter: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.op = checked_operator(op)
        self.b = np.array(vector(b, self.op.output_shape, "b"))  # our copy
        self.sigma = real_number(sigma, "sigma")
        if not (self.sigma > 0 and math.isfinite(self.sigma)):
            raise ParameterError("sigma", f"sigma must be a finite number > 0; got {sigma!r}")
        self.rtol = tolerance(rtol)
        self.atol, self.change_rtol = (
            real_number(atol, "atol"),
            real_number(change_rtol, "change_rtol"),
        )
        for name, value in (("atol", self.atol), ("change_rtol", self.change_rtol)):
            if not (value >= 0 and math.isfinite(value)):
                raise ParameterError(name, f"{name} must be a finite number >= 0; got {value!r}")
        self.maxiter, self.max_bytes = maxiter, max_bytes
        self.iterations, self.calls, self.exact = 0, 0, None
        self._atb = self.op.rmatvec(self.b)
        self._warm, self._last_rhs, self._solver = None, None, None
        if _Base is not object:
            super().__init__(None, True)

    def __call__(self, x: ArrayLike) -> float:
        """:math:`\\tfrac{\\sigma}{2}\\|A x - b\\|^2`."""
        misfit = self.op.matvec(np.ravel(x)) - self.b
        return 0.5 * self.sigma * float(np.vdot(misfit, misfit).real)

    def grad(self, x: ArrayLike) -> np.ndarray:
        """:math:`\\sigma A^H (A x - b)`, in ``x``'s layout."""
        x = np.asarray(x)
        return (self.sigma * self.op.rmatvec(self.op.matvec(x.ravel()) - self.b)).reshape(x.shape)

    def prox(self, x: ArrayLike, tau: float) -> np.ndarray:
        """:math:`\\mathrm{prox}_{\\tau f}(x)` (see the module), in ``x``'s layout: flat, the
        layer's input shape, or a batch ``(B, *input_shape)`` (each item its own step)."""
        tau = self._checked_tau(tau)
        v = np.asarray(x)
        if v.ndim == len(self.op.input_shape) + 1 and v.shape[1:] == tuple(self.op.input_shape):
            return np.stack([self.prox(item, tau) for item in v])
        flat = vector(v, self.op.input_shape, "x")
        damp2 = 1.0 / (self.sigma * tau)
        solver = self._solver_for(math.sqrt(damp2))
        rhs = self._atb + damp2 * flat
        atol = self.atol
        if self.change_rtol and self._last_rhs is not None and len(self._last_rhs) == len(rhs):
            atol = max(atol, self.change_rtol * float(np.linalg.norm(rhs - self._last_rhs)))
        start = self._warm if self._warm is not None else np.array(flat)
        out, steps, _ = solver.solve(
            rhs, start=start, rtol=self.rtol, atol=atol, maxiter=self.maxiter
        )
        self._warm, self._last_rhs = out.copy(), rhs  # the caller may write to ``out``
        self.iterations, self.calls, self.exact = (
            self.iterations + steps,
            self.calls + 1,
            solver.exact,
        )
        return out.reshape(v.shape)

    def _checked_tau(self, tau: object) -> float:
        if np.ndim(tau) != 0:
            raise ParameterError(
                "tau",
                f"tau must be a scalar > 0 (the structured step takes one step size); got an "
                f"array of shape {np.shape(tau)}",
            )
        tau = real_number(tau, "tau")
        if not (tau > 0 and math.isfinite(tau)):
            raise ParameterError("tau", f"tau must be a finite number > 0; got {tau!r}")
        return tau

    def _solver_for(self, damp: float) -> NormalSolver:
        """The step's solver at this damp: kept while ``tau`` stays (its factorisation is
        kept by the layer in any case)."""
        if self._solver is None or self._solver.damp != damp:
            self._solver = NormalSolver(self.op, 0.0, damp, max_bytes=self.max_bytes)
        return self._solver
