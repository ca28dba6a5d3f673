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

import numpy as np

from ..core.weights import largest_exponent, times_power_of_two

__all__ = [
    "data_exponent",
    "exponent_into_range",
    "layer_in_range",
    "magnitudes",
    "prior_beyond_data",
    "shifted_data",
]

IN_RANGE = 64  # largest magnitudes within 2^-64 .. 2^64 are left as they are
CEILING = 256  # b' and x0' within 2^-256 .. 2^256: their squares summed stay in range


def exponent_into_range(values: np.ndarray) -> int:
    """:math:`e` with :math:`2^e m` in :math:`[1/2, 1)` for the largest magnitude
    :math:`m` of a real or imaginary part, or 0 if :math:`m` is already within
    :math:`2^{\\pm 64}` (or 0, or not finite)."""
    exponent = largest_exponent(values)
    if exponent is None or -IN_RANGE < exponent <= IN_RANGE:
        return 0
    return -exponent


def magnitudes(b: np.ndarray, x0: np.ndarray | None, p: int) -> tuple[int | None, int | None]:
    """The exponents :math:`e` (:math:`2^{-e} m` in :math:`[1/2, 1)`) of the largest
    magnitudes :math:`m` of :math:`b` and of :math:`2^{-p} x_0`, ``None`` for zero or no
    prior: each array read once for the functions below."""
    prior = None if x0 is None else largest_exponent(x0)
    return largest_exponent(b), None if prior is None else prior - p


def data_exponent(sizes: tuple[int | None, int | None]) -> int:
    """:math:`q` that brings both :math:`b' = 2^q b` and :math:`x_0' = 2^{q-p} x_0` into
    range, from their :func:`magnitudes`: 0 if both are within :math:`2^{\\pm 64}`, else
    the exponent that centres their largest magnitudes on 1, lowered if needed so that
    the larger stays below :math:`2^{256}` (the smaller, then below :math:`2^{-512}`
    times the larger, is below its rounding; a prior that far beyond the data is first
    taken out by :func:`shifted_data`)."""
    exponents = [e for e in sizes if e is not None]
    if not exponents or all(-IN_RANGE < e <= IN_RANGE for e in exponents):
        return 0
    low, high = min(exponents), max(exponents)
    return min(-((low + high) // 2), CEILING - high)


def prior_beyond_data(sizes: tuple[int | None, int | None]) -> bool:
    """Whether :math:`x_0' = 2^{-p} x_0` is more than :math:`2^{512}` times :math:`b`
    (their :func:`magnitudes`): no power of two holds both (the squares of conjugate
    gradients overflow with :math:`x_0'` or underflow with :math:`b'`). A prior of
    weights near :math:`10^{300}` is :math:`2^{-p} \\approx 10^{300}` times its size
    (beside ``b`` of its size, beyond :math:`2^{512}` from weights of about
    :math:`10^{154}` on)."""
    data, prior = sizes
    return data is not None and prior is not None and prior - data > 2 * CEILING


def shifted_data(op, b: np.ndarray, x0: np.ndarray, p: int, sizes) -> tuple[np.ndarray, int]:
    """``(r, s)`` with :math:`r = 2^s (b - A x_0)`, computed from the scaled layer
    :math:`A' = 2^p A` as :math:`2^s b - A' (2^{s-p} x_0)` with the larger term near 1
    (``sizes``: :func:`magnitudes`).

    Then :math:`x = x_0 + 2^{-s} u`, with :math:`u` the solution for the data :math:`r`
    and no prior: :math:`\\|A x - b\\|^2 + d^2 \\|x - x_0\\|^2 = 4^{-s} (\\|A u - r\\|^2 +
    d^2 \\|u\\|^2)`. The same problem, without the prior's magnitude."""
    s = -max(e for e in sizes if e is not None)
    return times_power_of_two(b, s) - op.matvec(times_power_of_two(x0, s - p)), s


def layer_in_range(op):
    """``(op', p)``: the operator with its weight times :math:`2^p` in range
    (:meth:`~toeplitz_conv.layers.conv.ConvOperator.rescaled`: kept by the layer, so
    repeated solves reuse its factorizations), or ``op`` itself and 0."""
    p = exponent_into_range(np.asarray(op.weight))
    return (op.rescaled(p) if p else op), p
