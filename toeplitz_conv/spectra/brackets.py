"""Proven brackets and the scaled double-precision layer every proof works on.

:class:`NormBounds` is a bracket ``lower <= value <= upper``; :func:`scaled_twin` is
the layer in float64 or complex128 with its weight divided by a power of two (exact
unless a tap falls below the normal range, whose move is charged by Weyl's
inequality), so that squares of the norms stay clear of overflow and underflow;
:func:`check_layer` validates the arguments the brackets share.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from ..core.errors import ParameterError, ParameterTypeError
from ..core.weights import largest_exponent, times_power_of_two
from ..layers.conv import ConvOperator
from .layer_gram import absolute_norm_bound
from .symbol import PeriodicLayer

__all__ = [
    "CertifiedWidthWarning",
    "NormBounds",
    "check_layer",
    "periodic_layer",
    "scaled_twin",
    "warn_if_wider",
]

RTOL_FLOOR = 1e-15  # a few units in the last place: no bracket of floats is proven narrower


class CertifiedWidthWarning(RuntimeWarning):
    """A proven bracket is wider than the ``rtol`` asked for: the rounding floor of the proof
    (a singular value at the rounding level of the matrix, or an ``rtol`` near machine
    precision). The bracket is still proven."""


@dataclass(frozen=True)
class NormBounds:
    """A proven bracket ``lower <= value <= upper``.

    Attributes
    ----------
    lower, upper : float
    method : str
        Which proofs gave the two ends.
    """

    lower: float
    upper: float
    method: str

    @property
    def relative_width(self) -> float:
        """:math:`(u - \\ell) / u`: 0 when both ends are equal (0 and 0, or inf and inf),
        1 when the upper end is infinite."""
        if self.upper == self.lower:
            return 0.0
        if math.isinf(self.upper):
            return 1.0
        return (self.upper - self.lower) / self.upper

    def __repr__(self) -> str:
        return (
            f"NormBounds(lower={self.lower!r}, upper={self.upper!r}, "
            f"relative_width={self.relative_width:.1e}, method={self.method!r})"
        )


def weight_exponent(weight: np.ndarray) -> int:
    """The exponent :math:`e` with every real and imaginary part of the weight below
    :math:`2^e` and the largest at least :math:`2^{e-1}`: dividing by :math:`2^e` is exact
    (but for parts that fall below the normal range) and keeps the squares of the norms clear
    of overflow and underflow."""
    return largest_exponent(weight) or 0


@dataclass(frozen=True)
class ScaledTwin:
    """A layer in double precision with its weight divided by :math:`2^{\\text{exponent}}`.

    Attributes
    ----------
    operator : Conv or ConvTranspose
        The scaled layer :math:`B`, float64 or complex128, without bias.
    exponent : int
    error : float
        A bound of :math:`\\|B - A / 2^e\\|_2`: 0 unless a weight fell below the normal
        range when scaled (each such tap then moved by at most :math:`2^{-1074}`).
    """

    operator: ConvOperator
    exponent: int
    error: float

    def unscaled(self, bounds: NormBounds) -> NormBounds:
        """A bracket of :math:`B`'s singular value as one of :math:`A`'s (Weyl's inequality
        for ``error``, then times :math:`2^e`), rounded outwards."""
        lower = math.nextafter(bounds.lower - self.error, 0.0) if self.error else bounds.lower
        upper = math.nextafter(bounds.upper + self.error, math.inf) if self.error else bounds.upper
        return NormBounds(
            scaled_up(max(lower, 0.0), self.exponent, upward=False),
            scaled_up(upper, self.exponent, upward=True),
            bounds.method,
        )


def scaled_twin(op: ConvOperator) -> ScaledTwin:
    """``op`` in double precision, scaled by :func:`weight_exponent`, with its scaling error."""
    exponent = weight_exponent(op.weight)
    twin = double_precision_twin(op, exponent)
    original = np.asarray(op.weight, dtype=twin.weight.dtype)
    if np.array_equal(times_power_of_two(twin.weight, exponent), original):
        return ScaledTwin(twin, exponent, 0.0)
    per_tap = 2.0**-1074 * (math.sqrt(2) if np.iscomplexobj(original) else 1.0)
    error = per_tap * absolute_norm_bound(twin, np.ones(original.shape)) * (1 + 1e-12)
    return ScaledTwin(twin, exponent, error)


def scaled_up(value: float, exponent: int, *, upward: bool) -> float:
    """``value * 2**exponent`` rounded up (``upward``) or down; an upper end past the largest
    double is a :class:`ParameterError`, a lower end there is the largest double."""
    try:
        result = math.ldexp(value, exponent)
    except OverflowError:
        if not upward:
            return sys.float_info.max
        raise ParameterError(
            "weight",
            f"the bound {value!r} x 2^{exponent} is above the largest double "
            f"({sys.float_info.max:.4g}): scale the weight down by a power of two and scale "
            "the bounds back by hand",
        ) from None
    if value and math.ldexp(result, -exponent) != value:  # fell below the normal range
        result = math.nextafter(result, math.inf if upward else 0.0)
    return result


ROUNDING_FLOOR = (
    "this is the rounding floor of the proof for this layer (a singular value near the "
    "rounding level of the matrix's entries, or an rtol near machine precision)"
)


def warn_if_wider(bounds: NormBounds, rtol: float, what: str, why: str = ROUNDING_FLOOR) -> None:
    """A :class:`CertifiedWidthWarning` when a bracket is wider than ``rtol``, saying
    ``why`` (by default: the rounding floor of a proof that promises ``rtol``)."""
    if bounds.relative_width > rtol:
        warnings.warn(
            f"{what}: the proven bracket [{bounds.lower:.6g}, {bounds.upper:.6g}] is "
            f"{bounds.relative_width:.2g} wide, more than rtol={rtol:g}: {why}",
            CertifiedWidthWarning,
            stacklevel=3,
        )


def check_layer(op: object, rtol: float) -> ConvOperator:
    """``op`` when it is a layer and ``rtol`` a number in ``[RTOL_FLOOR, 1)``, else a
    parameter error."""
    if not isinstance(op, ConvOperator):
        raise ParameterTypeError(
            "op", f"op must be a toeplitz_conv Conv or ConvTranspose; got {type(op).__name__}"
        )
    if not (isinstance(rtol, numbers.Real) and not isinstance(rtol, bool)):
        raise ParameterTypeError("rtol", f"rtol must be a number; got {rtol!r}")
    if not RTOL_FLOOR <= rtol < 1:
        raise ParameterError(
            "rtol",
            f"rtol must be in [{RTOL_FLOOR:g}, 1) (below, no bracket of doubles is proven "
            f"that narrow); got {rtol!r}",
        )
    return op


def double_precision_twin(op: ConvOperator, exponent: int = 0) -> ConvOperator:
    """The same layer (same view) in float64 or complex128, without bias, its weight times
    :math:`2^{-\\text{exponent}}` (exact unless a part falls below the normal range)."""
    dtype = np.complex128 if np.iscomplexobj(op.weight) else np.float64
    return op.with_weight(times_power_of_two(op.weight.astype(dtype), -exponent), dtype=dtype)


def periodic_layer(op: ConvOperator, period, stride=None) -> PeriodicLayer:
    """The circular layer with ``op``'s weight, groups and dilation on ``period``."""
    g = op.geometry
    return PeriodicLayer(
        weight=np.asarray(op.weight),
        groups=g.groups,
        stride=tuple(g.stride) if stride is None else stride,
        dilation=tuple(g.dilation),
        period=tuple(period),
    )
