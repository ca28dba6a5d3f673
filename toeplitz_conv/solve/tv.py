"""Total-variation deblurring with a conv layer as the forward model, by ADMM.

.. math::

    \\min_x \\tfrac12 \\|A x - b\\|_2^2 + \\lambda\\, \\mathrm{TV}(x)
    \\;[+\\, \\iota_{x \\ge 0}(x)],

split as :math:`z = D x` (and :math:`w = x` for nonnegativity), :math:`D` the
forward-difference gradient with the layer's boundary (:mod:`.gradient`). The scaled
ADMM iteration (Boyd et al., 2011, section 3.1.1) is

.. math::

    x &\\leftarrow (A^H A + \\rho D^T D + \\rho_w I)^{-1}
        \\left(A^H b + \\rho D^T (z - u) + \\rho_w (w - v)\\right), \\\\
    z &\\leftarrow \\mathrm{prox}_{(\\lambda / \\rho) \\mathrm{TV}}(D x + u), \\quad
    w \\leftarrow \\max(x + v, 0), \\\\
    u &\\leftarrow u + D x - z, \\quad v \\leftarrow v + x - w,

(:math:`\\rho_w = \\rho` with ``nonneg``, else 0). The x-step is the structured solve
of :mod:`.penalized` (exact for circular layers and the DCT-II class: FTVd's step);
the z- and w-steps are pyproximal's :class:`~pyproximal.L21` (isotropic),
:class:`~pyproximal.L1` (anisotropic) and :class:`~pyproximal.Box`. :math:`\\rho` is
balanced against the residuals (Boyd et al., 3.4.1), each change one new
factorisation, at most :data:`RHO_CHANGES`; between changes the splits and duals take
Nesterov's momentum, restarted whenever their combined residual stops falling
(Goldstein, O'Donoghue, Setzer and Baraniuk's fast ADMM, 2014).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ..core.errors import ParameterError, ParameterTypeError
from ..layers.conv import ConvOperator
from .checks import (
    checked_operator,
    iterations_limit,
    nonnegative,
    real_number,
    tolerance,
    vector,
)
from .penalized import NormalSolver

__all__ = ["TVResult", "solve_tv", "total_variation"]

RHO_CHANGES = 12  # residual balancing refactorises at most this often
BALANCE = 10.0  # rho changes when one residual exceeds the other this many times
RESTART = 0.999  # fast ADMM keeps its momentum while the combined residual falls this much


@dataclass(frozen=True)
class TVResult:
    """The result of :func:`solve_tv`.

    Attributes
    ----------
    x : numpy.ndarray
        The solution, in the layout ``b`` came in (nonnegative exactly with ``nonneg``).
    iterations : int
        ADMM iterations.
    converged : bool
        Whether both residuals met the stopping rule within ``maxiter``.
    objective : numpy.ndarray
        :math:`\\tfrac12 \\|A x_k - b\\|^2 + \\lambda \\mathrm{TV}(x_k)` per iteration.
    primal_residuals, dual_residuals : numpy.ndarray
        :math:`\\|(D x_k - z_k, x_k - w_k)\\|` and :math:`\\rho_k \\|D^T (z_k - z_{k-1}) +
        (w_k - w_{k-1})\\|` per iteration.
    inner_iterations : int
        Conjugate-gradient iterations of the x-steps in all (0 for exact steps).
    method : str
        The x-step: ``"fourier"``, ``"cosine"`` (exact) or ``"pcg"``.
    rho : float
        The final :math:`\\rho`.
    seconds : float
        Wall time.
    """

    x: np.ndarray
    iterations: int
    converged: bool
    objective: np.ndarray
    primal_residuals: np.ndarray
    dual_residuals: np.ndarray
    inner_iterations: int
    method: str
    rho: float
    seconds: float


def total_variation(
    x: ArrayLike, boundary: str = "neumann", *, isotropic: bool = True, vectorial: bool = False
) -> float:
    """:math:`\\mathrm{TV}(x)` of an image ``(C, *spatial)``: the sum over channels and
    pixels of the Euclidean norm of the forward differences (``isotropic``; with
    ``vectorial`` the norm runs over the channels too, the colour TV), else the sum of
    their absolute values."""
    from .gradient import Gradient  # noqa: PLC0415 (one import path for the operator)

    x = np.asarray(x, dtype=float)
    grad = Gradient(x.shape, boundary).matvec(x.ravel()).reshape(x.ndim - 1, *x.shape)
    if not isotropic:
        return float(np.abs(grad).sum())
    axes = (0, 1) if vectorial else (0,)
    return float(np.sqrt((grad**2).sum(axis=axes)).sum())


def solve_tv(
    op: ConvOperator,
    b: ArrayLike,
    lam: float,
    *,
    isotropic: bool = True,
    vectorial: bool = False,
    nonneg: bool = False,
    x0: ArrayLike | None = None,
    rho: float | None = None,
    rtol: float = 1e-3,
    maxiter: int = 1000,
    callback=None,
    max_bytes: int | None = None,
) -> TVResult:
    """Minimise :math:`\\tfrac12 \\|A x - b\\|^2 + \\lambda \\mathrm{TV}(x)` by ADMM with the
    layer's structured step (see the module).

    .. math::

        \\mathrm{TV}(x) = \\sum_c \\sum_p \\big\\|\\big((D_1 x_c)_p, \\dots,
        (D_d x_c)_p\\big)\\big\\|_2

    (isotropic; the anisotropic TV sums :math:`|(D_a x_c)_p|`; the vectorial one takes
    the norm over the channels too), :math:`D` periodic for circular layers and Neumann
    (no difference across the edge) otherwise.

    Parameters
    ----------
    op : Conv or ConvTranspose
        A real layer; its bias is not part of :math:`A` (pass ``b - bias``).
    b : array_like
        Flat, of the layer's output shape ``(C_out, *spatial)``, or a batch
        ``(B, C_out, *spatial)`` (each item solved with the same factorisation).
    lam : float
        :math:`\\lambda \\ge 0`.
    isotropic, vectorial : bool
        The TV's norm (see above).
    nonneg : bool
        Add the constraint :math:`x \\ge 0` (met exactly by the returned ``x``).
    x0 : array_like, optional
        The starting point (default: zero).
    rho : float, optional
        ADMM's :math:`\\rho > 0` to start with (default :math:`10 \\lambda`, or 1 for
        :math:`\\lambda = 0`); balanced against the residuals as it runs.
    rtol : float
        Stop when the primal and dual residuals are below ``rtol`` times their scales
        (Boyd et al., 3.3.1), in (0, 1); the solution is then about ``rtol`` from the
        minimiser, relatively (a photograph's PSNR settles long before: 1e-2 serves
        images).
    maxiter : int
        ADMM iterations at most.
    callback : callable, optional
        Called as ``callback(x)`` with each iterate (flat; a copy), as pyproximal's
        solvers call theirs.
    max_bytes : int, optional
        Memory budget of the per-frequency inverses.

    Returns
    -------
    TVResult
        For a batch, ``x`` is the batch in ``b``'s layout, ``iterations`` the most of
        any item, ``converged`` whether all did, ``inner_iterations`` and ``seconds``
        the sums, and the histories and ``rho`` the last item's.

    Raises
    ------
    ImportError
        Without pyproximal (``pip install "toeplitz-conv[prox]"``).
    ParameterError, ParameterTypeError
        For ``lam < 0``, a ``rho``, ``rtol`` or ``maxiter`` out of range, a complex layer
        or data, ``b`` of a size that is not the layer's, or values that are not finite.
    """
    proximal = _pyproximal()
    op = checked_operator(op)
    if np.iscomplexobj(op.weight) or np.iscomplexobj(b):
        raise ParameterTypeError("b", "solve_tv takes a real layer and real data")
    lam = nonnegative(lam, "lam")
    rtol, maxiter = tolerance(rtol), iterations_limit(maxiter) or 1000
    given = rho
    rho = (10 * lam or 1.0) if rho is None else real_number(rho, "rho")
    if not math.isfinite(rho) or rho <= 0:
        raise ParameterError("rho", f"rho must be a finite number > 0; got {given!r}")
    data = _batch(b, op)
    start = None if x0 is None else vector(x0, op.input_shape, "x0")
    regulariser = _regulariser(proximal, op, lam, isotropic, vectorial)
    problem = _Problem(op, lam, regulariser, proximal.Box(lower=0.0) if nonneg else None)
    if callback is not None and not callable(callback):
        raise ParameterTypeError("callback", "callback must be callable or None")
    settings = dict(rho=rho, rtol=rtol, maxiter=maxiter, callback=callback, max_bytes=max_bytes)
    results = [problem.run(item, start, **settings) for item in data]
    x = np.stack([r.x for r in results])
    layout = np.shape(b)
    if len(layout) == 1:
        x = x.reshape(-1)
    elif layout == tuple(op.output_shape):
        x = x.reshape(op.input_shape)
    elif len(layout) > 2 or layout[1:] == tuple(op.output_shape):
        x = x.reshape(len(x), *op.input_shape)
    last = results[-1]
    return dataclasses.replace(
        last,
        x=x,
        iterations=max(r.iterations for r in results),
        converged=all(r.converged for r in results),
        inner_iterations=sum(r.inner_iterations for r in results),
        seconds=sum(r.seconds for r in results),
    )


def _pyproximal():
    try:
        import pyproximal  # noqa: PLC0415 (an optional extra)
    except ImportError as error:
        raise ImportError('solve_tv needs pyproximal: pip install "toeplitz-conv[prox]"') from error
    return pyproximal


def _batch(b: ArrayLike, op: ConvOperator) -> np.ndarray:
    """``b`` as ``(B, m)``: flat, the output shape, or a batch of it."""
    b = np.asarray(b, dtype=float)
    m = op.shape[0]
    if not np.isfinite(b).all():
        raise ParameterError("b", "b must be finite (no NaN or inf)")
    if b.ndim == 1 and b.size == m:
        return b[None]
    if b.shape == tuple(op.output_shape):
        return b.reshape(1, m)
    if b.ndim == len(op.output_shape) + 1 and b.shape[1:] == tuple(op.output_shape) and len(b):
        return b.reshape(len(b), m)
    if b.ndim == 2 and b.shape[1] == m and len(b):
        return b
    raise ParameterError(
        "b",
        f"b must be flat of length {m}, of shape {tuple(op.output_shape)} or a batch "
        f"(B, {m}) or (B, {', '.join(map(str, op.output_shape))}); got shape {b.shape}",
    )


def _regulariser(proximal, op, lam: float, isotropic: bool, vectorial: bool):
    """pyproximal's TV norm on the gradient's layout ``(d, C, *spatial)``."""
    axes = len(op.input_shape) - 1
    if not isotropic:
        return proximal.L1(sigma=lam)
    return proximal.L21(ndim=axes * op.input_shape[0] if vectorial else axes, sigma=lam)


@dataclass
class _Problem:
    """One TV problem's fixed parts; :meth:`run` solves it for one data vector."""

    op: ConvOperator
    lam: float
    regulariser: object
    box: object | None

    def solver(self, rho: float, max_bytes) -> NormalSolver:
        """The x-step's solver at this ``rho`` (the layer keeps its factorisation)."""
        return NormalSolver(self.op, rho, math.sqrt(rho) if self.box else 0.0, max_bytes=max_bytes)

    def _prox(self, point: np.ndarray, rho: float, m: int) -> np.ndarray:
        """The z-step (and w-step) at ``point``: the TV norm's prox and the projection."""
        z = self.regulariser.prox(point[:m], 1.0 / rho)
        if not self.box:
            return z
        return np.concatenate([z, self.box.prox(point[m:], 1.0 / rho)])

    @staticmethod
    def _adjoint(grad, vector: np.ndarray, m: int) -> np.ndarray:
        """:math:`[D; I]^T` of a split-shaped vector (:math:`D^T` without the w split)."""
        out = grad.rmatvec(vector[:m])
        return out + vector[m:] if len(vector) > m else out

    def objective(self, x: np.ndarray, b: np.ndarray, gradient) -> float:
        misfit = self.op.matvec(x) - b
        return 0.5 * float(misfit @ misfit) + float(self.regulariser(gradient.matvec(x)))

    def run(self, b, start, *, rho, rtol, maxiter, callback, max_bytes) -> TVResult:
        clock = time.perf_counter()
        solver = self.solver(rho, max_bytes)
        grad, n = solver.gradient, self.op.shape[1]
        x = np.zeros(n) if start is None else start.copy()
        # the splits (z = D x, w = x) and their scaled duals, stacked as one vector each
        split = np.concatenate([grad.matvec(x), np.maximum(x, 0.0) if self.box else []])
        dual = np.zeros_like(split)
        ahead, dual_ahead = split.copy(), dual.copy()  # the accelerated points (hats)
        momentum, combined = 1.0, math.inf
        atb = self.op.rmatvec(b)
        history, primal, duals = [], [], []
        inner, changes, converged, inner_rtol = 0, 0, False, 0.1
        iteration, m = 0, grad.shape[0]
        tiny = 1e-14 * math.sqrt(n) * max(1.0, float(np.linalg.norm(b)))
        for iteration in range(1, maxiter + 1):  # noqa: B007 (the count is returned)
            rhs = atb + rho * self._adjoint(grad, ahead - dual_ahead, m)
            x, steps, _ = solver.solve(rhs, start=x, rtol=inner_rtol)
            inner += steps
            image = np.concatenate([grad.matvec(x), x if self.box else []])
            previous, previous_dual = split, dual
            split = self._prox(image + dual_ahead, rho, m)
            dual = dual_ahead + image - split
            r = float(np.linalg.norm(image - split))
            s = rho * float(np.linalg.norm(self._adjoint(grad, split - ahead, m)))
            primal.append(r)
            duals.append(s)
            estimate = split[m:] if self.box else x
            history.append(self.objective(estimate, b, grad))
            if callback is not None:
                callback(estimate.copy())
            scale_primal = max(float(np.linalg.norm(image)), float(np.linalg.norm(split)))
            scale_dual = rho * float(np.linalg.norm(self._adjoint(grad, dual, m)))
            if r <= rtol * scale_primal + tiny and s <= rtol * scale_dual + tiny:
                converged = True
                break
            # the inner tolerance follows the outer residuals down (warm-started PCG)
            relative = max(r / max(scale_primal, tiny), s / max(scale_dual, tiny))
            inner_rtol = min(0.1, max(0.01 * rtol, 0.1 * relative))
            if changes < RHO_CHANGES and (r > BALANCE * s or s > BALANCE * r):
                factor = 2.0 if r > s else 0.5
                rho, dual = rho * factor, dual / factor
                solver, changes = self.solver(rho, max_bytes), changes + 1
                momentum, combined = 1.0, math.inf  # a new rho restarts the momentum
                ahead, dual_ahead = split.copy(), dual.copy()
                continue
            # Goldstein et al.'s fast ADMM with restart: momentum while the combined
            # residual falls, else back to the plain step from the previous point
            now = float(np.sum((dual - dual_ahead) ** 2) + np.sum((split - ahead) ** 2))
            if now < RESTART * combined:
                following = (1 + math.sqrt(1 + 4 * momentum**2)) / 2
                weight = (momentum - 1) / following
                ahead = split + weight * (split - previous)
                dual_ahead = dual + weight * (dual - previous_dual)
                momentum, combined = following, now
            else:
                momentum, combined = 1.0, combined / RESTART
                ahead, dual_ahead = previous.copy(), previous_dual.copy()
                split, dual = previous, previous_dual
        result = split[m:] if self.box else x
        return TVResult(
            result,
            iteration,
            converged,
            np.array(history),
            np.array(primal),
            np.array(duals),
            inner,
            solver.method,
            rho,
            time.perf_counter() - clock,
        )
