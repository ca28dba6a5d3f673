"""The smallest singular value, the condition number, and how many singular values pass a
threshold, all proven.

With :math:`G` the Gram matrix of the smaller side (:math:`A^H A` when
:math:`A` has no more columns than rows, else :math:`A A^H`), whose
eigenvalues are the squares of the :math:`\\min(m, n)` singular values:

- :math:`\\sigma_{\\min} > \\ell` exactly when :math:`G - \\ell^2 I \\succ 0`, proven
  by a verified Cholesky factorization; :math:`\\sigma_{\\min} \\le \\|Av\\|/\\|v\\|`
  for an explicit vector (from inverse iteration);
- the number of singular values above :math:`\\tau` is the number of negative
  pivots of an :math:`LDL^H` factorization of :math:`\\tau^2 I - G` (Sylvester's
  law of inertia), exact for a matrix within the factorization's backward error
  :math:`\\epsilon`; factored at :math:`\\tau^2 \\pm \\delta` with
  :math:`\\delta \\ge \\epsilon`, equal counts prove the count at :math:`\\tau`.

Circular layers with stride dividing the size use the per-frequency matrices
instead (:mod:`toeplitz_conv.spectra.symbol`); other layers the banded Gram matrix of
each group (:mod:`toeplitz_conv.spectra.banded`), which must fit the memory budget.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.linalg
import scipy.sparse.linalg as spla

from ..core.errors import ParameterError
from ..core.memory import check_budget, resolve_budget
from ..layers.conv import ConvOperator
from .banded import (
    band_matvec,
    batched_ldl,
    dense_window,
    is_positive_definite,
    negative_count,
)
from .brackets import (
    NormBounds,
    check_layer,
    periodic_layer,
    scaled_twin,
    warn_if_wider,
)
from .certified import norm_bounds
from .layer_gram import (
    GroupLayer,
    absolute_norm_bound,
    band_cost_of,
    block_gram,
    explicit_ratio_bounds,
    group_layers,
)
from .spectral import fft_covers
from .symbol import UNIT_ROUNDOFF, PeriodicLayer, gamma, periodic_grams, periodic_min_bracket

__all__ = ["condition_number_bounds", "count_singular_values", "min_singular_value_bounds"]

INVERSE_STEPS = 60  # inverse iterations at most, for the smallest singular vector


def min_singular_value_bounds(
    op: ConvOperator, *, rtol: float = 1e-6, max_bytes: int | None = None
) -> NormBounds:
    """A proven bracket of the smallest of a layer's :math:`\\min(m, n)` singular values.

    .. math::

        \\ell \\le \\sigma_{\\min}(A) \\le u, \\qquad
        \\sigma_{\\min}(A)^2 = \\lambda_{\\min}(A^H A) \\ (n \\le m).

    Parameters
    ----------
    op : Conv or ConvTranspose
    rtol : float
        Target relative width of the bracket.
    max_bytes : int, optional
        Memory budget; the banded Gram matrix of a group must fit it
        (:class:`MatrixTooLargeError` otherwise).

    Returns
    -------
    NormBounds
        Its width may exceed ``rtol`` (with a
        :class:`~toeplitz_conv.spectra.brackets.CertifiedWidthWarning`) when
        :math:`\\sigma_{\\min}^2` is near the rounding level of the Gram matrix,
        :math:`\\epsilon\\,\\sigma_{\\max}^2`.
    """
    check_layer(op, rtol)
    if not np.any(op.weight):
        return NormBounds(0.0, 0.0, "zero weight: the zero matrix")
    twin = scaled_twin(op)  # sigma scales with the weight
    budget = resolve_budget(max_bytes)
    bounds = twin.unscaled(_min_bracket(twin.operator, rtol, budget))
    warn_if_wider(bounds, rtol, "min_singular_value_bounds")
    return bounds


def _min_bracket(twin: ConvOperator, rtol: float, budget: int) -> NormBounds:
    if _periodic_whole(twin):
        lower, upper = periodic_min_bracket(_periodic(twin), max_bytes=budget)
        return NormBounds(lower, upper, "per-frequency Cholesky proof (circular, exact)")
    lowers, uppers = [], []
    for block in _smaller_side_groups(twin, budget):
        matrix, gram = block_gram(block, budget)
        _, upper = explicit_ratio_bounds(block, matrix, _smallest_vector(gram))
        step = max(rtol, 8 * UNIT_ROUNDOFF)
        lower = upper * (1 - step / 2)
        for attempt in range(60):
            if lower <= 0 or is_positive_definite(gram, -(lower**2), 1.0):
                break
            lower *= 1 - min(0.5, step * 2**attempt)
        else:
            lower = 0.0
        lowers.append(max(lower, 0.0))
        uppers.append(upper)
    return NormBounds(
        min(lowers), min(uppers), "banded Cholesky proof of A^H A - l^2 I; upper: explicit vector"
    )


def condition_number_bounds(
    op: ConvOperator, *, rtol: float = 1e-6, max_bytes: int | None = None
) -> NormBounds:
    """A proven bracket of :math:`\\kappa(A) = \\sigma_{\\max} / \\sigma_{\\min}` (``inf`` above
    when :math:`\\sigma_{\\min}` may be zero).

    Parameters
    ----------
    op : Conv or ConvTranspose
    rtol : float
    max_bytes : int, optional
    """
    top = norm_bounds(op, rtol=rtol, max_bytes=max_bytes)
    bottom = min_singular_value_bounds(op, rtol=rtol, max_bytes=max_bytes)
    upper = _divided(top.upper, bottom.lower, upward=True)
    lower = _divided(top.lower, bottom.upper, upward=False)
    return NormBounds(lower, upper, f"sigma_max: {top.method}; sigma_min: {bottom.method}")


def _divided(numerator: float, denominator: float, *, upward: bool) -> float:
    """``numerator / denominator`` rounded outwards; a zero denominator gives ``inf``
    (a matrix that may be singular, the zero matrix included), as does an overflow."""
    if denominator == 0:
        return math.inf
    quotient = numerator / denominator
    return math.nextafter(quotient, math.inf if upward else 0.0)


def count_singular_values(
    op: ConvOperator, threshold: float, *, max_bytes: int | None = None
) -> int:
    """How many singular values of a layer are strictly greater than ``threshold``, proven.

    Counts are by inertia (Sylvester's law) of :math:`\\tau^2 I - G`; when
    ``threshold`` lies within rounding of a singular value the count is not
    proven, and a :class:`ParameterError` says so.

    Parameters
    ----------
    op : Conv or ConvTranspose
    threshold : float
        :math:`\\tau \\ge 0`.
    max_bytes : int, optional
        Memory budget of the banded Gram matrices.

    Returns
    -------
    int
    """
    check_layer(op, 1e-6)
    if not (
        isinstance(threshold, numbers.Real)
        and not isinstance(threshold, bool)
        and math.isfinite(threshold)
        and threshold >= 0
    ):
        raise ParameterError(
            "threshold", f"threshold must be a finite number >= 0; got {threshold!r}"
        )
    if not np.any(op.weight):
        return 0
    twin = scaled_twin(op)
    try:
        tau = math.ldexp(float(threshold), -twin.exponent)
    except OverflowError:  # far above every singular value of the scaled layer (below 2^1024)
        return 0
    if tau > absolute_norm_bound(twin.operator) * (1 + 8 * gamma(1)) + twin.error:
        return 0  # above || |A| ||_2 >= sigma_max
    budget = resolve_budget(max_bytes)
    count = _count_above(twin.operator, tau + twin.error, threshold, budget)
    if twin.error and _count_above(twin.operator, tau - twin.error, threshold, budget) != count:
        raise _unproven(threshold, twin.error**2)
    return count


def _count_above(twin: ConvOperator, tau: float, threshold, budget: int) -> int:
    """The proven count of the scaled twin's singular values above ``tau`` (all of them
    when ``tau < 0``)."""
    if tau < 0:
        return min(twin.shape)
    square = tau**2
    if _periodic_whole(twin):
        return _proven_count(_periodic_counter(_periodic(twin), budget), square, threshold)
    total = 0
    for block in _smaller_side_groups(twin, budget):
        _, gram = block_gram(block, budget)
        total += _proven_count(
            lambda x, gram=gram: negative_count(gram, x, -1.0), square, threshold
        )
    return total


def _periodic_whole(op: ConvOperator) -> bool:
    return fft_covers(op)


def _periodic(op: ConvOperator) -> PeriodicLayer:
    return periodic_layer(op, op.geometry.input_spatial)


def _smaller_side_groups(op: ConvOperator, budget: int) -> list[GroupLayer]:
    """Groups on the side of the smaller dimension (whose Gram eigenvalues are the
    :math:`\\sigma^2`), refused up front when the band would not fit."""
    side = "columns" if op.shape[1] <= op.shape[0] else "rows"
    nbytes, _ = band_cost_of(op, side)
    check_budget(op.nbytes + 4 * nbytes, "banded Gram matrix of one group", max_bytes=budget)
    return group_layers(op, side)


def _smallest_vector(gram) -> np.ndarray:
    """Inverse iteration towards the smallest eigenvector of the band (a vector in NCHW
    order of the Gram side), through a Cholesky factorization of G + eps I."""
    band = gram.band.copy()
    scale = float(np.abs(band[0]).max(initial=1.0))
    band[0] += gram.size * 16 * UNIT_ROUNDOFF * scale  # a tiny shift keeps it factorable
    try:
        factor = scipy.linalg.cholesky_banded(band, lower=True, check_finite=False)
    except np.linalg.LinAlgError:  # numerically singular: a larger shift
        band[0] += 1e-8 * scale
        factor = scipy.linalg.cholesky_banded(band, lower=True, check_finite=False)
    n = gram.size
    matrix = spla.LinearOperator(
        (n, n), matvec=lambda v: band_matvec(gram.band, v), dtype=gram.band.dtype
    )
    inverse = spla.LinearOperator(
        (n, n),
        matvec=lambda v: scipy.linalg.cho_solve_banded((factor, True), v, check_finite=False),
        dtype=gram.band.dtype,
    )
    start = np.random.default_rng(0).standard_normal(n).astype(gram.band.dtype)
    if n <= 3:
        dense = dense_window(gram.band, 0, gram.size)
        x = np.linalg.eigh(dense)[1][:, 0]
    else:
        try:  # Lanczos on G^-1 (shift-invert at 0): the smallest eigenvalues converge first
            _, vectors = spla.eigsh(
                matrix, k=1, sigma=0.0, which="LM", OPinv=inverse, v0=start, tol=1e-13
            )
            x = vectors[:, 0]
        except spla.ArpackError:
            x = start
            for _ in range(INVERSE_STEPS):
                x = inverse.matvec(x)
                x /= np.linalg.norm(x)
    return x[gram.permutation]  # back from pixel-major to NCHW order


def _proven_count(count_at, square: float, threshold: float) -> int:
    """The count of eigenvalues above ``square``, proven by two counts at ``square +- delta``
    that agree, each within its own backward error."""
    try:
        _, error = count_at(square)
        delta = 4 * error + 8 * UNIT_ROUNDOFF * square + 1e-300
        below, error_below = count_at(square - delta)
        above, error_above = count_at(square + delta)
    except ValueError:
        below, above, error_below, error_above, delta = 1, 0, 0.0, 0.0, 0.0
    if below != above or max(error_below, error_above) > delta:
        raise _unproven(threshold, delta)
    return above


def _unproven(threshold, delta: float) -> ParameterError:
    return ParameterError(
        "threshold",
        f"threshold {threshold!r} is within rounding of a singular value (sigma^2 within "
        f"{delta:.2e} of threshold^2, in units of the weight's scale): the count is not "
        "proven there; move it slightly",
    )


def _periodic_counter(layer: PeriodicLayer, budget: int):
    """``count_at(x)``: eigenvalues above x of every frequency's Gram matrix, by batched
    LDL^H without pivoting, with the largest backward error bound."""

    def count_at(x: float) -> tuple[int, float]:
        count, error = 0, 0.0
        for grams, multiplicity, gram_error in periodic_grams(layer, max_bytes=budget):
            k = grams.shape[-1]
            shifted = -grams
            shifted[:, np.arange(k), np.arange(k)] += x
            _, pivots, growth = batched_ldl(shifted)
            count += int(((pivots < 0).sum(axis=-1) * multiplicity).sum())
            bound = gamma(k + 4) * float(growth.max()) + gram_error + 4 * UNIT_ROUNDOFF * abs(x)
            error = max(error, bound)
        return count, error

    return count_at
