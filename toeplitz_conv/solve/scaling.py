"""Powers of two that bring a problem's magnitudes into range before it is solved.

The normal equations square the layer's magnitude: with weights near :math:`10^{160}`
:math:`A^H A` overflows, near :math:`10^{-160}` it is subnormal, and ``damp**2`` with
it. A Tikhonov problem scales exactly: with :math:`A' = 2^p A`, :math:`b' = 2^q b`,
:math:`d' = 2^p d` and :math:`x_0' = 2^{q-p} x_0`,

.. math::

    \\|A' x' - b'\\|^2 + d'^2 \\|x' - x_0'\\|^2 = 4^q \\bigl(\\|A x - b\\|^2
    + d^2 \\|x - x_0\\|^2\\bigr), \\qquad x' = 2^{q-p} x,

and multiplying by a power of two rounds nothing (barring subnormals). Magnitudes
within :math:`2^{\\pm 64}` are solved as given (the layer keeps its caches).
"""

from __future__ import annotations

import math

import numpy as np

from .checks import real_parts

__all__ = ["IN_RANGE", "exponent_into_range", "layer_in_range"]

IN_RANGE = 64  # largest magnitudes within 2^-64 .. 2^64 are left as they are


def exponent_into_range(values: np.ndarray) -> int:
    """:math:`e` with :math:`2^e m` in :math:`[1/2, 1)` for the largest magnitude
    :math:`m` of a real or imaginary part, or 0 if :math:`m` is already within
    :math:`2^{\\pm 64}` (or 0, or not finite). Two passes without a temporary."""
    parts = real_parts(values)
    if parts.size == 0:
        return 0
    largest = max(float(np.max(parts)), -float(np.min(parts)))
    if largest == 0.0 or not math.isfinite(largest):
        return 0
    if 2.0**-IN_RANGE <= largest <= 2.0**IN_RANGE:
        return 0
    return -math.frexp(largest)[1]


def layer_in_range(op):
    """``(op', p)``: the operator with its weight times :math:`2^p` in range
    (:meth:`~toeplitz_conv.layers.conv.ConvOperator.rescaled`: kept by the layer, so
    repeated solves reuse its factorizations), or ``op`` itself and 0."""
    p = exponent_into_range(np.asarray(op.weight))
    return (op.rescaled(p) if p else op), p
