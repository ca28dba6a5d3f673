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
    Cholesky factorization (:mod:`toeplitz_conv.symbol`);
  - the *factorization proof*: a verified banded Cholesky factorization of
    :math:`u^2 I - A^H A` (:mod:`toeplitz_conv.banded`), used when the band
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
import numbers
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .banded import banded_gram, is_positive_definite, proof_floor
from .errors import ParameterError, ParameterTypeError
from .layer_gram import (
    absolute_norm_bound,
    assembly_error,
    explicit_ratio_bounds,
    factorization_fits,
    group_layers,
    read_multiplicity,
    top_vector,
)
from .memory import check_budget, resolve_budget
from .operators import Conv, ConvOperator, ConvTranspose
from .spectral import fft_applicable
from .symbol import UNIT_ROUNDOFF, PeriodicLayer, gamma, periodic_norm_bracket

__all__ = [
    "RTOL_FLOOR",
    "CertifiedWidthWarning",
    "NormBounds",
    "ScaledTwin",
    "check_layer",
    "double_precision_twin",
    "is_whole",
    "norm_bounds",
    "periodic_layer",
    "scaled_twin",
    "warn_if_wider",
    "weight_exponent",
]

METHODS = ("auto", "exact", "factorization", "symbol")
RTOL_FLOOR = 1e-15  # a few units in the last place: no bracket of floats is proven narrower
PLANE_WAVE_COPIES = 6  # input-sized complex vectors alive while the lower bound is built
POWER_STEPS = 2  # power iterations refining the plane-wave vector of the lower bound
PROOF_ATTEMPTS = 80  # raises of the factorization proof's bound before the |A| bound is used


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
        rounding level of the entries); a wider bracket comes with a
        :class:`CertifiedWidthWarning`. The symbol bound is wider by design.
    max_bytes : int, optional
        Memory budget (default :func:`toeplitz_conv.memory_budget`); the
        factorization is used only when its band fits.
    method : {"auto", "exact", "factorization", "symbol"}
        ``"auto"`` takes the per-frequency proof when it applies, else the
        factorization when it fits, else the symbol bound.

    Returns
    -------
    NormBounds
        Finite ends for every finite weight whose norm is a finite double.

    Raises
    ------
    ParameterError
        For an ``rtol`` outside ``[1e-15, 1)``, an unknown ``method``, or a norm above
        the largest double (``weight``).
    """
    op = _checked(op, rtol, method)
    if not np.any(op.weight):
        return NormBounds(0.0, 0.0, "zero weight: the zero matrix")
    twin = scaled_twin(op)  # sigma(A) = 2^e sigma(A / 2^e), exactly
    bounds, promised = _bracket(twin.operator, rtol, max_bytes, method)
    bounds = twin.unscaled(bounds)
    if promised:
        warn_if_wider(bounds, rtol, "norm_bounds")
    return bounds


def weight_exponent(weight: np.ndarray) -> int:
    """The exponent :math:`e` with every real and imaginary part of the weight below
    :math:`2^e` and the largest at least :math:`2^{e-1}`: dividing by :math:`2^e` is exact
    (but for parts that fall below the normal range) and keeps the squares of the norms clear
    of overflow and underflow."""
    parts = np.abs(weight.real).max(initial=0.0), np.abs(weight.imag).max(initial=0.0)
    largest = float(max(parts)) if np.iscomplexobj(weight) else float(parts[0])
    return math.frexp(largest)[1] if largest > 0 else 0


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
    if np.array_equal(_ldexp(twin.weight, exponent), original):
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


def _ldexp(weight: np.ndarray, exponent: int) -> np.ndarray:
    if not np.iscomplexobj(weight):
        return np.ldexp(weight, exponent)
    out = np.empty_like(weight)
    out.real = np.ldexp(weight.real, exponent)
    out.imag = np.ldexp(weight.imag, exponent)
    return out


def warn_if_wider(bounds: NormBounds, rtol: float, what: str) -> None:
    """A :class:`CertifiedWidthWarning` when a proof that promises ``rtol`` could not
    narrow its bracket that far."""
    if bounds.relative_width > rtol:
        warnings.warn(
            f"{what}: the proven bracket [{bounds.lower:.6g}, {bounds.upper:.6g}] is "
            f"{bounds.relative_width:.2g} wide, more than rtol={rtol:g}: this is the rounding "
            "floor of the proof for this layer (a singular value near the rounding level of "
            "the matrix's entries, or an rtol near machine precision)",
            CertifiedWidthWarning,
            stacklevel=3,
        )


def _bracket(
    twin: ConvOperator, rtol: float, max_bytes: int | None, method: str
) -> tuple[NormBounds, bool]:
    """The bracket of the scaled twin, and whether its method promises ``rtol``."""
    budget = resolve_budget(max_bytes)
    g = twin.geometry
    if method in ("auto", "exact") and fft_applicable(g) and is_whole(twin):
        lower, upper, _ = periodic_norm_bracket(
            periodic_layer(twin, g.input_spatial), max_bytes=budget, rtol=rtol
        )
        return NormBounds(lower, upper, "per-frequency Cholesky proof (circular, exact)"), True
    if method == "exact":
        raise ParameterError(
            "method", "method='exact' needs circular padding with stride dividing the size"
        )
    if method == "factorization" or (method == "auto" and factorization_fits(twin, budget)):
        return _factorization_bounds(twin, rtol, budget), True
    return _symbol_bounds(twin, budget), False


def _checked(op: object, rtol: float, method: str) -> ConvOperator:
    check_layer(op, rtol)
    if method not in METHODS:
        raise ParameterError("method", f"method must be one of {METHODS}; got {method!r}")
    return op


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
    complex_ = np.iscomplexobj(op.weight)
    dtype = np.complex128 if complex_ else np.float64
    weight = _ldexp(op.weight.astype(dtype), -exponent)
    g = op.geometry
    if op.transposed:
        return ConvTranspose(
            weight,
            op.input_shape,
            output_padding=g.transpose_output_padding,
            dtype=dtype,
            **g.layer_kwargs(),
        )
    return Conv(weight, op.input_shape, dtype=dtype, **g.layer_kwargs())


def is_whole(op: ConvOperator) -> bool:
    """Whether the matrix is the conv's whole matrix (or its transpose), not a submatrix."""
    return not op.transposed or tuple(op.output_shape) == tuple(op.geometry.input_shape)


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


# ---------------------------------------------------------------- lower bounds


def _explicit_lower(op: ConvOperator, vectors: list[np.ndarray]) -> float:
    """:math:`\\|A X\\|_F / \\|X\\|_F` for explicit vectors, minus its rounding: a proven lower
    bound of :math:`\\sigma_{\\max}` (a real layer takes real and imaginary parts apart)."""
    forward = op.T if op.transposed else op  # the conv's rows: same singular values
    g = op.geometry
    length = g.in_per_group * g.taps * math.prod(read_multiplicity(g)) + 8
    images = [forward.matvec(v) for v in vectors]
    top = math.sqrt(sum(float(np.vdot(y, y).real) for y in images))
    bottom = math.sqrt(sum(float(np.vdot(v, v).real) for v in vectors))
    if bottom == 0:
        return 0.0
    size = max(v.size for v in vectors) + max(y.size for y in images)
    rounding = gamma(length) * absolute_norm_bound(op) * bottom
    value = (top - rounding) * (1 - gamma(size + 8)) / (bottom * (1 + gamma(size + 8)))
    return max(0.0, value)


def _plane_wave(
    op: ConvOperator, layer: PeriodicLayer, witness, offsets: tuple[int, ...]
) -> list[np.ndarray]:
    """A windowed plane wave at the symbol's peak, on the conv's input (input sample ``i``
    is the periodic layer's ``i + offsets``), refined by a few power iterations; real and
    imaginary parts for a real layer."""
    frequency, group, vector = witness
    g = op.geometry
    forward = op.T if op.transposed else op
    c_group = g.in_per_group
    f = np.array(np.unravel_index(frequency, layer.coarse))
    d = g.ndim
    column = (d, *([1] * d))
    pads = np.array(offsets).reshape(column)
    stride = np.array(layer.stride).reshape(column)
    grids = np.meshgrid(*(np.arange(n) for n in g.input_spatial), indexing="ij")
    position = np.stack(grids) + pads  # the periodic layer's index of each input sample
    phase = np.ravel_multi_index(tuple(position % stride), layer.stride)
    coarse = position // stride
    turns = sum((f[a] * coarse[a] % layer.coarse[a]) / layer.coarse[a] for a in range(d))
    window = np.ones(g.input_spatial)
    for a, n in enumerate(g.input_spatial):
        shape = [1] * d
        shape[a] = n
        window = window * np.sin(np.pi * (np.arange(n) + 1) / (n + 1)).reshape(shape)
    x = np.zeros(g.input_shape, dtype=np.complex128)
    amplitudes = vector.reshape(c_group, -1)  # (C_in/G, phases)
    wave = np.exp(2j * np.pi * turns) * window
    for j in range(c_group):
        x[group * c_group + j] = amplitudes[j][phase] * wave
    x = x.ravel()
    for _ in range(POWER_STEPS):
        if np.iscomplexobj(op.weight):
            step = forward.rmatvec(forward.matvec(x))
        else:
            step = forward.rmatvec(forward.matvec(x.real)) + 1j * forward.rmatvec(
                forward.matvec(x.imag)
            )
        norm = np.linalg.norm(step)
        if not norm > 0:  # the wave lies in the null space: keep it (its bound is 0)
            break
        x = step / norm
    if np.iscomplexobj(op.weight):
        return [x]
    return [x.real.copy(), x.imag.copy()]


# ---------------------------------------------------------------- symbol bounds


def _symbol_bounds(op: ConvOperator, budget: int) -> NormBounds:
    g = op.geometry
    mode = g.padding_mode
    weight, offsets = np.asarray(op.weight), tuple(pb for pb, _ in g.pads)
    if mode == "circular":
        period, stride = tuple(g.input_spatial), (1,) * g.ndim
        factor = math.sqrt(math.prod(_circular_row_repeats(g)))
        how = "circular stride-1 layer's per-frequency proof"
        if fft_applicable(g):
            stride, factor, how = tuple(g.stride), 1.0, "per-frequency proof (a submatrix)"
        elif factor != 1.0:
            how += f" x sqrt(row repeats) {factor:.4g}"
    else:
        live = _live_taps(g) if mode == "zeros" else [(0, k - 1) for k in g.kernel]
        if any(first > last for first, last in live):  # every tap reads zero padding
            return NormBounds(0.0, 0.0, "every window reads zero padding: the zero matrix")
        weight = weight[(slice(None), slice(None), *(slice(a, b + 1) for a, b in live))]
        offsets = tuple(o - a * d for o, (a, _), d in zip(offsets, live, g.dilation))
        period = tuple(
            _multiple_above((m - 1) * s + d * (k - 1) + 1, s)
            for m, s, d, k in zip(g.output_spatial, g.stride, g.dilation, weight.shape[2:])
        )
        stride = tuple(g.stride)
        factor = math.sqrt(math.prod(read_multiplicity(g)))
        how = f"symbol bound (a submatrix of the circular layer on period {period})"
        if mode != "zeros":
            how += f" x ||padding operator|| {factor:.4g}"
    layer = PeriodicLayer(weight, g.groups, stride, tuple(g.dilation), period)
    # the plane wave, its real and imaginary parts and their images, in complex128
    vectors = 16 * (PLANE_WAVE_COPIES * op.shape[1] + 2 * op.shape[0])
    check_budget(vectors, f"vectors of the lower bound of a {op.shape} layer", max_bytes=budget)
    _, upper, witness = periodic_norm_bracket(layer, max_bytes=budget)
    lower = _explicit_lower(op, _plane_wave(op, layer, witness, offsets))
    return NormBounds(lower, upper * factor * (1 + 4 * gamma(1)), f"{how}; lower: explicit vector")


def _live_taps(geometry) -> list[tuple[int, int]]:
    """Per axis, the first and last tap that some output reads inside the input with zero
    padding (the taps outside only ever read zeros, so the symbol may drop them: its period,
    and so its cost, follow the matrix, not the dilation or the pads)."""
    live = []
    for m, s, d, k, (before, _), n in zip(
        geometry.output_spatial,
        geometry.stride,
        geometry.dilation,
        geometry.kernel,
        geometry.pads,
        geometry.input_spatial,
    ):
        lowest = before - np.arange(k, dtype=object) * d  # o s must reach [lowest, lowest + n)
        first_output = [max(-(-max(low, 0) // s), 0) for low in lowest]
        reads = [o < m and o * s <= low + n - 1 for o, low in zip(first_output, lowest)]
        taps = [t for t, hit in enumerate(reads) if hit]
        live.append((taps[0], taps[-1]) if taps else (1, 0))
    return live


def _multiple_above(n: int, s: int) -> int:
    return -(-n // s) * s


def _circular_row_repeats(geometry) -> tuple[int, ...]:
    """Per axis, how many rows of the layer are one row of the stride-1 circulant."""
    repeats = []
    for m, s, n in zip(geometry.output_spatial, geometry.stride, geometry.input_spatial):
        cycle = n // math.gcd(n, s)  # the rows o s mod n run through a cycle of this length
        repeats.append(-(-m // cycle))
    return tuple(repeats)


def _factorization_bounds(op: ConvOperator, rtol: float, budget: int) -> NormBounds:
    lowers, uppers = [], []
    for block in group_layers(op):
        matrix = sp.csr_array(block.operator.tosparse(max_bytes=budget))
        lower, _ = explicit_ratio_bounds(block, matrix, top_vector(block, rtol))
        gram = banded_gram(
            matrix,
            block.side,
            block.channels,
            block.spatial,
            max_bytes=budget,
            matrix_error=assembly_error(block.operator),
        )
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
