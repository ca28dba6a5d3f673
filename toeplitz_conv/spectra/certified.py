"""Certified norms: proven brackets for the singular values of conv layers.

For a layer with matrix :math:`A`, :func:`norm_bounds` returns
:math:`\\ell \\le \\sigma_{\\max}(A) = \\|A\\|_2 \\le u` with both ends proven in
floating point:

- **lower**: :math:`\\|A v\\| / \\|v\\|` for an explicit vector :math:`v` (a Lanczos
  Ritz vector, or a windowed plane wave at the symbol's peak), minus a bound on
  the rounding of the product;
- **upper**, by one of
  - the *per-frequency proof* (circular padding with stride dividing the
    size): :math:`\\|\\hat W(f)\\| < u` for every frequency, each by a verified
    Cholesky factorization (:mod:`toeplitz_conv.spectra.symbol`);
  - the *Collatz-Wielandt bound* (:mod:`toeplitz_conv.spectra.perron`) for layers
    whose taps are real and of one sign (blurs): matrix-free, as narrow as ``rtol``
    at any size;
  - the *factorization proof*: a verified banded Cholesky factorization of
    :math:`u^2 I - A^H A` (:mod:`toeplitz_conv.spectra.banded`), used when the band
    fits the memory budget; the bracket is then as narrow as ``rtol``;
  - a *symbol bound* when it does not: zero padding makes :math:`A` a
    submatrix of a circular layer on a period :math:`N \\ge` the reach of the
    windows, whose norm the per-frequency proof bounds; reflect and replicate
    padding multiply that by the norm of the padding operator,
    :math:`\\prod_a \\sqrt{m_a}` with :math:`m_a` the most reads one sample
    receives along axis :math:`a`; a strided circular layer whose stride does
    not divide the size is a selection of rows of the stride-1 layer, each
    taken at most :math:`m` times, so its norm is at most :math:`\\sqrt{m}`
    times that layer's.

The singular values of a conv-transpose are those of its conv (of a
submatrix, when ``output_padding >= stride``); a grouped layer is block
diagonal and is bracketed group by group.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.errors import ParameterError
from ..core.memory import MatrixTooLargeError, resolve_budget
from ..layers.conv import ConvOperator
from .banded import is_positive_definite, proof_floor
from .brackets import (
    NormBounds,
    check_layer,
    periodic_layer,
    scaled_twin,
    warn_if_wider,
)
from .layer_gram import (
    absolute_norm_bound,
    band_cost_of,
    block_gram,
    explicit_ratio_bounds,
    factorization_fits,
    group_layers,
    top_vector,
)
from .perron import perron_applicable, perron_bounds
from .spectral import fft_covers
from .symbol import UNIT_ROUNDOFF, gamma, periodic_norm_bracket
from .symbol_bounds import symbol_bounds

__all__ = ["norm_bounds"]

METHODS = ("auto", "exact", "perron", "factorization", "symbol")
PROOF_ATTEMPTS = 80  # raises of the factorization proof's bound before the |A| bound is used


def norm_bounds(
    op: ConvOperator, *, rtol: float = 1e-6, max_bytes: int | None = None, method: str = "auto"
) -> NormBounds:
    """A proven bracket of a layer's spectral norm (its Lipschitz constant).

    .. math::

        \\ell \\le \\|A\\|_2 = \\sigma_{\\max}(A) \\le u, \\qquad
        \\frac{u - \\ell}{u} \\le \\text{rtol} \\text{ when the proof fits the budget.}

    :math:`A` is the exact matrix of the layer's weight (as stored, in its own
    precision): entries that sum folded taps, and weights scaled by a power of
    two, have their rounding charged to the bracket.

    Parameters
    ----------
    op : Conv or ConvTranspose
        Any dimension, padding mode, stride, dilation, groups; real or complex.
    rtol : float
        Target relative width of the bracket, in ``[1e-15, 1)``. The per-frequency
        and the factorization proofs meet it down to their rounding floor (about
        1e-13 for small layers, wider for large ones and for norms near the
        rounding level of the entries). Every bracket wider than ``rtol`` that
        ``"auto"`` returns, the symbol bound it falls back to when the factorization
        does not fit the budget included, comes with a
        :class:`~toeplitz_conv.spectra.brackets.CertifiedWidthWarning` saying why;
        ``method="symbol"`` asks for that wider bound and does not warn.
    max_bytes : int, optional
        Memory budget (default :func:`toeplitz_conv.memory_budget`); the
        factorization is used only when its band fits.
    method : {"auto", "exact", "perron", "factorization", "symbol"}
        ``"auto"`` takes the per-frequency proof when it applies, else the
        Collatz-Wielandt bound for taps of one sign (when it reaches ``rtol``), else
        the factorization when it fits the budget, else the symbol bound.
        ``"factorization"`` asked for a layer whose band does not fit the budget is
        refused (:class:`~toeplitz_conv.MatrixTooLargeError`), never run past it.

    Returns
    -------
    NormBounds
        Finite ends for every finite weight whose norm is a finite double.

    Raises
    ------
    ParameterError
        For an ``rtol`` outside ``[1e-15, 1)``, an unknown ``method``, ``"exact"`` or
        ``"perron"`` for a layer they do not apply to, or a norm above the largest
        double (``weight``).
    MatrixTooLargeError
        For ``method="factorization"`` beyond the memory budget or its work limit.
    """
    op = _checked(op, rtol, method)
    if not np.any(op.weight):
        return NormBounds(0.0, 0.0, "zero weight: the zero matrix")
    twin = scaled_twin(op)  # sigma(A) = 2^e sigma(A / 2^e), exactly
    bounds, promised = _bracket(twin.operator, rtol, max_bytes, method)
    bounds = twin.unscaled(bounds)
    if promised:
        warn_if_wider(bounds, rtol, "norm_bounds")
    elif method == "auto":  # method="symbol" asked for the wider bound itself
        warn_if_wider(bounds, rtol, "norm_bounds", FELL_BACK)
    return bounds


FELL_BACK = (
    "the factorization proof, which would reach rtol, does not fit the memory budget, so "
    "the symbol bound (wider by design) was taken; raise max_bytes (or "
    "toeplitz_conv.set_memory_budget) to let it run"
)


def _bracket(
    twin: ConvOperator, rtol: float, max_bytes: int | None, method: str
) -> tuple[NormBounds, bool]:
    """The bracket of the scaled twin, and whether its method promises ``rtol``."""
    budget = resolve_budget(max_bytes)
    g = twin.geometry
    if method in ("auto", "exact") and fft_covers(twin):
        lower, upper, _ = periodic_norm_bracket(
            periodic_layer(twin, g.input_spatial), max_bytes=budget, rtol=rtol
        )
        return NormBounds(lower, upper, "per-frequency Cholesky proof (circular, exact)"), True
    if method == "exact":
        raise ParameterError(
            "method", "method='exact' needs circular padding with stride dividing the size"
        )
    if method in ("auto", "perron") and perron_applicable(twin):
        bounds = perron_bounds(twin, rtol)
        if method == "perron" or bounds.upper - bounds.lower <= rtol * bounds.upper:
            return bounds, True
    elif method == "perron":
        raise ParameterError("method", "method='perron' needs real taps all of one sign")
    if method == "factorization":
        _check_factorization_fits(twin, budget)
        return _factorization_bounds(twin, rtol, budget), True
    if method == "auto" and factorization_fits(twin, budget):
        return _factorization_bounds(twin, rtol, budget), True
    return symbol_bounds(twin, budget), False


def _check_factorization_fits(op: ConvOperator, budget: int) -> None:
    """Refuse the factorization proof beyond the budget (or its work limit), before any
    of it is built."""
    if factorization_fits(op, budget):
        return
    nbytes = min(band_cost_of(op, side)[0] for side in ("columns", "rows"))
    raise MatrixTooLargeError(
        "banded Gram matrix of the factorization proof (or its factorization's work)",
        op.nbytes + 4 * nbytes,
        budget,
        "use method='auto' (the Collatz-Wielandt bound for taps of one sign, else the "
        "symbol bound), or raise max_bytes",
    )


def _checked(op: object, rtol: float, method: str) -> ConvOperator:
    check_layer(op, rtol)
    if method not in METHODS:
        raise ParameterError("method", f"method must be one of {METHODS}; got {method!r}")
    return op


def _factorization_bounds(op: ConvOperator, rtol: float, budget: int) -> NormBounds:
    lowers, uppers = [], []
    for block in group_layers(op):
        matrix, gram = block_gram(block, budget)
        lower, _ = explicit_ratio_bounds(block, matrix, top_vector(block, rtol))
        del matrix
        lowers.append(lower)
        uppers.append(_proven_upper(gram, lower, rtol, absolute_norm_bound(block.operator)))
    return NormBounds(
        max(lowers), max(uppers), "banded Cholesky proof of u^2 I - A^H A; lower: Lanczos vector"
    )


def _proven_upper(gram, start: float, rtol: float, absolute: float) -> float:
    """The smallest :math:`u` proven here with :math:`u^2 I - G \\succ 0`, from just above
    ``start``: raised by steps that double, and never below the proof's own floor (a norm
    at the rounding level of the Gram matrix is bounded by that level, in a few steps).
    ``absolute`` (:math:`\\| |A| \\|_2` from the taps) is the bound if no proof succeeds."""
    step = max(rtol, 8 * UNIT_ROUNDOFF)
    floor = math.sqrt(2 * proof_floor(gram))
    upper = max(start * (1 + step / 2), floor)
    for attempt in range(PROOF_ATTEMPTS):
        if is_positive_definite(gram, upper**2, -1.0):
            return upper
        upper = upper * (1 + step * 2**attempt)
        if upper >= absolute:
            break
    return absolute * (1 + 8 * gamma(1))
