"""A proven norm bracket for layers whose matrix is entrywise nonnegative, at any size.

A layer whose real taps all have one sign (blurs, averaging, any nonnegative kernel,
whatever the padding) has a matrix :math:`A` with :math:`\\pm A \\ge 0` entrywise, so
:math:`M = A^T A \\ge 0` and, by the Collatz-Wielandt formula (Perron-Frobenius), for
every vector :math:`d > 0`

.. math::

    \\sigma_{\\max}(A)^2 = \\rho(M) \\le \\max_i \\frac{(M d)_i}{d_i},

with equality at the Perron vector. The power iteration :math:`d \\leftarrow M d`
from the constant vector stays positive and drives the bound down to
:math:`\\sigma_{\\max}^2`; the Rayleigh quotient of the same :math:`d`
(:func:`~.symbol_bounds.explicit_lower`) is the proven lower end. The products are
direct sums of nonnegative terms, so their rounding is relative: a sum of :math:`L`
products is computed within a factor :math:`1 \\pm \\gamma_L`
(:math:`\\gamma_L = L u / (1 - L u)`), which the upper end is divided by. No matrix
is assembled: two products per step, the memory of a few vectors, at any size (a
3 -> 3 7 x 7 reflect-padded blur of 256 x 256 reaches ``rtol = 1e-3`` in a few
seconds, where the banded factorization needs gigabytes).

For layers with taps of both signs the same quantity bounds :math:`\\| |A| \\|_2`,
an upper bound of :math:`\\|A\\|_2` that can be far from it: :func:`perron_bounds`
takes sign-definite layers only.
"""

from __future__ import annotations

import math

import numpy as np

from ..layers.conv import ConvOperator
from .brackets import NormBounds
from .layer_gram import read_multiplicity
from .symbol import UNIT_ROUNDOFF, gamma
from .symbol_bounds import explicit_lower

__all__ = ["PERRON_STEPS", "perron_applicable", "perron_bounds"]

PERRON_STEPS = 4000  # power steps at most: the bracket returned is proven at any step
SMALLEST_ENTRY = 2.0**-60  # d is kept above this (relative), so no product underflows


def perron_applicable(op: ConvOperator) -> bool:
    """Whether the layer's taps are real and all of one sign (not all zero)."""
    weight = np.asarray(op.weight)
    if np.iscomplexobj(weight) or not np.any(weight):
        return False
    return bool(np.all(weight >= 0) or np.all(weight <= 0))


def perron_bounds(op: ConvOperator, rtol: float, *, steps: int = PERRON_STEPS) -> NormBounds:
    """The proven bracket of the module's text for a sign-definite layer, after at most
    ``steps`` power steps (fewer once its relative width is at most ``rtol``)."""
    weight = np.asarray(op.weight)
    conv = op.T if op.transposed else op  # the conv's rows: the same singular values
    positive = conv if np.all(weight >= 0) else conv.with_weight(-np.conj(np.asarray(conv.weight)))
    slack = _rounding_slack(op)
    d = np.ones(positive.shape[1])
    lower, upper = 0.0, math.inf
    for _ in range(max(1, steps)):
        z = positive.rmatvec(positive.matvec(d))
        ratio = float(np.max(z / d)) * (1 + 2 * UNIT_ROUNDOFF)
        upper = min(upper, math.sqrt(ratio * slack + _underflow(op, d)) * (1 + 2 * UNIT_ROUNDOFF))
        lower = max(lower, explicit_lower(positive, [d]))
        if upper - lower <= rtol * upper:
            break
        top = float(z.max())
        if not (top > 0 and math.isfinite(top)):
            break
        d = np.maximum(z / top, SMALLEST_ENTRY)
    return NormBounds(
        lower, upper, "Collatz-Wielandt bound of a nonnegative layer; lower: its vector"
    )


def _rounding_slack(op: ConvOperator) -> float:
    """:math:`1 / ((1 - \\gamma_L)(1 - \\gamma_{L'}))` for the longest sums of the forward
    and adjoint products (every tap of a group, each read folded at most
    :func:`~.layer_gram.read_multiplicity` times)."""
    g = op.geometry
    folds = math.prod(read_multiplicity(g))
    forward = g.in_per_group * g.taps * folds + 8
    adjoint = g.out_per_group * g.taps * folds + 8
    return 1.0 / ((1 - gamma(forward)) * (1 - gamma(adjoint)))


def _underflow(op: ConvOperator, d: np.ndarray) -> float:
    """A bound of what underflow can take from :math:`(M d)_i / d_i`: every product's
    absolute error is below the smallest subnormal, :math:`d_i \\ge` its floor."""
    g = op.geometry
    terms = (g.in_per_group + g.out_per_group) * g.taps * math.prod(read_multiplicity(g)) + 8
    largest = float(np.max(np.abs(op.weight)))
    return terms * terms * (1.0 + largest) * 2.0**-1074 / float(d.min())
