"""Tikhonov-regularised solves with a conv layer as the forward model."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ..core.errors import ParameterError
from ..core.memory import MatrixTooLargeError, checked_max_bytes
from ..core.weights import times_power_of_two
from ..layers.conv import ConvOperator
from .algebra import euclidean_norm
from .checks import batch, checked_operator, iterations_limit, nonnegative, tolerance, vector
from .cosine import cosine_form
from .diagonal import DiagonalForm
from .forms import diagonal_form
from .fourier import fourier_form
from .iterative import normal_equations_cg, solution_dtype
from .preconditioners import (
    checked_choice,
    chosen_preconditioner,
    preconditioner_used,
    runs_in_dct1_coordinates,
)
from .reflect import reflect_cg
from .scaling import (
    data_exponent,
    layer_in_range,
    magnitudes,
    prior_beyond_data,
    shifted_data,
)

__all__ = ["SolveResult", "solve_tikhonov"]

METHODS = ("auto", "fourier", "cosine", "pcg")
PCG_HINT = (
    "pass max_bytes=... (or call toeplitz_conv.set_memory_budget()) to allow it, or solve "
    "matrix-free with method='pcg', which keeps no per-frequency matrices"
)


@dataclass(frozen=True)
class SolveResult:
    """The result of :func:`solve_tikhonov`.

    Attributes
    ----------
    x : numpy.ndarray
        The solution: flat (like :func:`scipy.sparse.linalg.lsqr`'s) for a flat ``b``,
        of the layer's input shape ``(C_in, *spatial)`` for a ``b`` of its output
        shape; float64, or complex128 where the layer, ``b`` or ``x0`` is complex (the
        solve runs in double precision whatever the layer's precision).
    method : str
        ``"fourier"``, ``"cosine"`` or ``"pcg"``.
    exact : bool
        Whether ``x`` is the exact minimiser (to rounding), not an iterate.
    converged : bool
        Whether the iteration reached ``rtol`` (always true for an exact method).
    iterations : int
        Conjugate-gradient iterations (0 for an exact method).
    residual_norm : float
        :math:`\\|A x - b\\|`, the data misfit of ``x``.
    seconds : float
        Wall time of the solve.
    preconditioner : str or None
        What ``"pcg"`` was preconditioned with: ``"dct1"`` (the DCT-I form, in its
        coordinates), ``"circulant"``, ``"cosine"``, ``"given"`` (the caller's
        operator), or ``None`` (plain conjugate gradients, or an exact method).
    """

    x: np.ndarray
    method: str
    exact: bool
    converged: bool
    iterations: int
    residual_norm: float
    seconds: float
    preconditioner: str | None = None


def solve_tikhonov(
    op: ConvOperator,
    b: ArrayLike,
    damp: float,
    *,
    x0: ArrayLike | None = None,
    rtol: float = 1e-8,
    maxiter: int | None = None,
    method: str = "auto",
    preconditioner: object = "auto",
    max_bytes: int | None = None,
) -> SolveResult:
    """Minimise a Tikhonov functional with a conv layer as the forward model.

    .. math::

        x^\\star = \\arg\\min_x \\|A x - b\\|_2^2 + \\text{damp}^2 \\|x - x_0\\|_2^2
        = (A^H A + \\text{damp}^2 I)^{-1} (A^H b + \\text{damp}^2 x_0),

    with :math:`A` the layer's linear part: a bias is not part of it, so pass
    ``b - bias`` (the layer's output minus ``op.apply(0)``) for data made by
    ``op.apply``. ``damp`` is :func:`scipy.sparse.linalg.lsqr`'s; with ``x0`` this is
    the :math:`\\ell_2` proximal step of ADMM and plug-and-play methods.

    Parameters
    ----------
    op : Conv or ConvTranspose
        Any dimension, groups, stride, dilation, padding mode; real or complex.
    b : array_like
        The data: flat, of length ``op.shape[0]``, or of the layer's output shape
        ``(C_out, *spatial)`` (channels first, as ``op.apply`` takes images; an
        image in ``(H, W, C)`` is refused, not read as another layout); or a batch,
        ``(B, op.shape[0])`` or ``(B, C_out, *spatial)``, each item solved alone with
        the one factorisation the layer keeps (``x`` is then the batch in that layout,
        ``iterations`` the most of any item, ``residual_norm`` an array).
    damp : float
        :math:`\\ge 0`. With ``damp = 0`` the exact method gives the minimum-norm
        least-squares solution (singular values below
        :math:`\\max(m, n)\\,\\epsilon\\,\\sigma_{\\max}` counted as zero); conjugate
        gradients from ``x0`` give a least-squares solution.
    x0 : array_like, optional
        The prior, flat or of the layer's input shape (default zero).
    rtol : float
        Relative residual of the normal equations at which conjugate gradients
        stop, in (0, 1).
    maxiter : int, optional
        Conjugate-gradient iterations at most (default scipy's, ``10 n``).
    method : {"auto", "fourier", "cosine", "pcg"}
        ``"fourier"``: exact, for circular padding with a stride dividing the
        size (:mod:`toeplitz_conv.solve.fourier`); ``"cosine"``: exact, for
        replicate padding of at most 1 with symmetric kernels and stride 1
        (:mod:`toeplitz_conv.solve.cosine`); ``"pcg"``: conjugate gradients on the
        normal equations, preconditioned by ``preconditioner``; ``"auto"``: an
        exact method where one applies, else ``"pcg"``.
    preconditioner : {"auto", "form", "circulant", "cosine"}, None or LinearOperator
        What ``"pcg"`` preconditions with. ``"form"``: the layer's own diagonal form
        (:func:`~toeplitz_conv.solve.forms.diagonal_form`: the DCT-I form for reflect
        padding with symmetric kernels and stride 1, condition number at most
        :math:`2^a`, :math:`a` the axes; the exact inverse where the layer has an
        exact form); ``"auto"``: ``"form"`` where the layer has one, else none (as in
        :func:`~toeplitz_conv.preconditioner`, whose fallback is the circulant one): a
        circulant or cosine preconditioner can slow a layer whose boundary it does not
        share (the mismatch is magnified by :math:`1 / \\text{damp}^2`), so none is
        guessed.
        ``"circulant"``, ``"cosine"``: :func:`~toeplitz_conv.preconditioner`'s
        kinds, often several times fewer iterations for smooth blurs with zero
        padding (see the docs' "Solving inverse problems"); ``None``: plain
        conjugate gradients; a linear operator of shape ``(n, n)``: used as
        given (SPD).
    max_bytes : int, optional
        Memory budget of the per-frequency matrices.

    Returns
    -------
    SolveResult
        A conjugate-gradient solve that does not reach ``rtol`` within ``maxiter``
        returns its last iterate with ``converged=False`` and a warning.

    Raises
    ------
    ParameterError, ParameterTypeError
        For a ``damp``, ``rtol``, ``maxiter``, ``method``, ``preconditioner`` or
        ``max_bytes`` out of range, a ``b`` or ``x0`` of the wrong length or not finite,
        or ``"fourier"`` where it does not apply (the message says why).

    Notes
    -----
    A layer or data whose largest magnitude is beyond :math:`2^{\\pm 64}` is solved
    scaled into range by powers of two, which is exact
    (:mod:`~toeplitz_conv.solve.scaling`; the scaled layer, with its factorizations,
    is kept by the layer). A prior more than :math:`2^{512}` times the data once scaled
    (weights beyond about :math:`10^{154}`, ``b`` and ``x0`` of one size) is taken out first:
    :math:`x = x_0 + u`, :math:`u` the solution for the data :math:`b - A x_0` without a
    prior, the same minimiser (conjugate gradients then stop relative to
    :math:`\\|A^H (b - A x_0)\\|`); with ``damp = 0`` such a prior, which is not in the
    objective, is dropped. A ``damp`` whose square overflows gives ``x0``. Conjugate
    gradients on :math:`2^{13}` unknowns or more run with BLAS on one thread
    (:mod:`~toeplitz_conv.solve.iterative`).
    """
    start = time.perf_counter()
    rows = batch(b, checked_operator(op).output_shape, "b")
    if rows is not None:  # one solve per item; the layer keeps the factorisation
        settings = dict(rtol=rtol, maxiter=maxiter, method=method, max_bytes=max_bytes)
        return _batch_result(
            [
                solve_tikhonov(op, row, damp, x0=x0, preconditioner=preconditioner, **settings)
                for row in rows
            ],
            (len(rows), *op.input_shape) if np.ndim(b) > 2 else (len(rows), op.shape[1]),
            start,
        )
    op, damp, rtol = checked_operator(op), nonnegative(damp, "damp"), tolerance(rtol)
    maxiter = iterations_limit(maxiter)
    max_bytes = None if max_bytes is None else checked_max_bytes(max_bytes)
    shaped = np.ndim(b) > 1  # x is returned in the layout b came in
    b = vector(b, op.output_shape, "b")
    x0 = None if x0 is None else vector(x0, op.input_shape, "x0")
    # extreme magnitudes are solved scaled by powers of two (exact: see .scaling)
    scaled, p = layer_in_range(op)
    method, form = _method(scaled, method)  # the form of the layer that is solved
    preconditioner = checked_choice(preconditioner, op.shape[1])
    sizes, settings = magnitudes(b, x0, p), dict(rtol=rtol, maxiter=maxiter, max_bytes=max_bytes)
    if damp == 0 and prior_beyond_data(sizes):
        x0, sizes = None, (sizes[0], None)  # not in the objective; too far for CG to start at
    if prior_beyond_data(sizes):
        data, s = shifted_data(scaled, b, x0, p, sizes)  # x = x0 + 2^-s u
        u, iterations, converged, residual = _solve_in_range(
            op,
            scaled,
            p,
            data,
            damp,
            None,
            magnitudes(data, None, p),
            method,
            form,
            preconditioner,
            **settings,
        )
        x, residual = x0 + times_power_of_two(u, -s), times_power_of_two(residual, -s)
    else:
        x, iterations, converged, residual = _solve_in_range(
            op, scaled, p, b, damp, x0, sizes, method, form, preconditioner, **settings
        )
    if not converged:
        warnings.warn(
            f"solve_tikhonov: conjugate gradients did not reach rtol={rtol:g} in "
            f"{iterations} iterations; the last iterate is returned (converged=False)",
            RuntimeWarning,
            stacklevel=2,
        )
    return SolveResult(
        x.reshape(op.input_shape) if shaped else x,
        method,
        method != "pcg",
        converged,
        iterations,
        residual,
        time.perf_counter() - start,
        preconditioner_used(form, damp, method, preconditioner),
    )


def _batch_result(results: list[SolveResult], shape, start: float) -> SolveResult:
    """One :class:`SolveResult` for a batch: the solutions stacked in ``shape``, the
    most iterations, whether all converged, and each item's residual."""
    first = results[0]
    return SolveResult(
        np.stack([r.x for r in results]).reshape(shape),
        first.method,
        first.exact,
        all(r.converged for r in results),
        max(r.iterations for r in results),
        np.array([r.residual_norm for r in results]),
        time.perf_counter() - start,
        first.preconditioner,
    )


def _solve_in_range(op, scaled, p, b, damp, x0, sizes, method, form, preconditioner, **settings):
    """``(x, iterations, converged, residual)`` of the problem given in ``op``'s units,
    solved with the layer ``scaled`` :math:`= 2^p A` (whose diagonal form is ``form``)
    and the data and prior times :math:`2^q` (:func:`~.scaling.data_exponent` of their
    ``sizes``)."""
    q = data_exponent(sizes)
    x, iterations, converged, residual = _run(
        scaled,
        times_power_of_two(b, q),
        times_power_of_two(damp, p),
        None if x0 is None else times_power_of_two(x0, q - p),
        method,
        form,
        preconditioner,
        **settings,
    )
    x = times_power_of_two(x, p - q)
    if residual is None:
        residual = euclidean_norm(op.matvec(x) - b)
    else:  # the scaled problem's: A' x' - b' = 2^q (A x - b)
        residual = times_power_of_two(residual, -q)
    return x, iterations, converged, residual


def _run(op, b, damp, x0, method, form, preconditioner, *, rtol, maxiter, max_bytes):
    """``(x, iterations, converged, residual)`` by ``method``, magnitudes in range, with
    the residual :math:`\\|A x - b\\|` where the method has it from its spectra, else
    ``None``; ``form`` is the layer's diagonal form (:func:`_method`'s)."""
    if method != "pcg":  # an exact form
        try:
            x, residual = form.solve(b, damp, x0, max_bytes=max_bytes)
        except MatrixTooLargeError as error:  # the matrix-free way out, named
            raise MatrixTooLargeError(error.what, error.nbytes, error.budget, PCG_HINT) from None
        return x, 0, True, residual
    if not np.isfinite(damp * damp):  # overflows: x0 is the minimiser to rounding
        dtype = solution_dtype(op, b, x0)
        start = np.zeros(op.shape[1], dtype) if x0 is None else x0.astype(dtype)
        return start, 0, True, None
    if runs_in_dct1_coordinates(form, damp, preconditioner):
        solved = reflect_cg(op, b, damp, x0, rtol=rtol, maxiter=maxiter, max_bytes=max_bytes)
    else:
        solved = normal_equations_cg(
            op,
            b,
            damp,
            x0,
            rtol=rtol,
            maxiter=maxiter,
            preconditioner=chosen_preconditioner(op, damp, form, preconditioner, max_bytes),
        )
    return *solved, None


# the exact methods a caller may name, each the builder of its form, and their bases
NAMED_FORMS = {"fourier": fourier_form, "cosine": cosine_form}
METHOD_OF_BASIS = {"dft": "fourier", "dct2": "cosine"}
NEEDS = {
    "fourier": "method='fourier' needs a circular layer: {why}",
    "cosine": "method='cosine' is exact for replicate padding <= 1 with symmetric kernels "
    "and stride 1; this layer has {why}",
}


def _method(op: ConvOperator, method: object) -> tuple[str, DiagonalForm | None]:
    """The method that runs (a named exact one where its form is exact for the layer,
    ``"auto"``'s choice: the exact diagonal form, else ``"pcg"``; or ``"pcg"``) and the
    layer's diagonal form it runs with, asked once per solve."""
    if not isinstance(method, str) or method not in METHODS:
        raise ParameterError("method", f"method must be one of {METHODS}; got {method!r}")
    if method in NAMED_FORMS:
        choice = NAMED_FORMS[method](op)
        if choice.form is None or not choice.form.exact:
            raise ParameterError("method", NEEDS[method].format(why=choice.reason))
        return method, choice.form
    form = diagonal_form(op).form
    if method == "pcg" or form is None or not form.exact:
        return "pcg", form
    return METHOD_OF_BASIS.get(form.basis, form.basis), form
