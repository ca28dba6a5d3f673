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
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .banded import banded_gram, is_positive_definite
from .errors import ParameterError, ParameterTypeError
from .layer_gram import explicit_ratio_bounds, factorization_fits, group_layers, top_vector
from .memory import check_budget, memory_budget
from .operators import Conv, ConvOperator, ConvTranspose
from .padding import PADDING_MODES
from .spectral import fft_applicable
from .symbol import PeriodicLayer, gamma, periodic_norm_bracket

__all__ = [
    "NormBounds",
    "check_layer",
    "double_precision_twin",
    "is_whole",
    "norm_bounds",
    "periodic_layer",
    "weight_scale",
]

METHODS = ("auto", "exact", "factorization", "symbol")
PLANE_WAVE_COPIES = 6  # input-sized complex vectors alive while the lower bound is built
POWER_STEPS = 2  # power iterations refining the plane-wave vector of the lower bound


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
        """:math:`(u - \\ell) / u` (0 when both are 0)."""
        return (self.upper - self.lower) / self.upper if self.upper > 0 else 0.0

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

    Parameters
    ----------
    op : Conv or ConvTranspose
        Any dimension, padding mode, stride, dilation, groups; real or complex.
    rtol : float
        Target relative width of the bracket (the per-frequency and the
        factorization proofs meet it; the symbol bound is wider).
    max_bytes : int, optional
        Memory budget (default :func:`toeplitz_conv.memory_budget`); the
        factorization is used only when its band fits.
    method : {"auto", "exact", "factorization", "symbol"}
        ``"auto"`` takes the per-frequency proof when it applies, else the
        factorization when it fits, else the symbol bound.

    Returns
    -------
    NormBounds
    """
    op = _checked(op, rtol, method)
    if not np.any(op.weight):
        return NormBounds(0.0, 0.0, "zero weight: the zero matrix")
    factor = weight_scale(op.weight)  # sigma(A) = factor * sigma(A / factor), exactly
    bounds = _bracket(double_precision_twin(op, 1 / factor), rtol, max_bytes, method)
    return NormBounds(bounds.lower * factor, bounds.upper * factor, bounds.method)


def weight_scale(weight: np.ndarray) -> float:
    """The power of two nearest above the largest weight: dividing by it is exact, and keeps
    squares of the norms clear of overflow and underflow."""
    largest = float(np.abs(weight).max(initial=0.0))
    return math.ldexp(1.0, math.frexp(largest)[1]) if largest > 0 else 1.0


def _bracket(twin: ConvOperator, rtol: float, max_bytes: int | None, method: str) -> NormBounds:
    budget = memory_budget() if max_bytes is None else max_bytes
    g = twin.geometry
    if method in ("auto", "exact") and fft_applicable(g) and is_whole(twin):
        lower, upper, _ = periodic_norm_bracket(
            periodic_layer(twin, g.input_spatial), max_bytes=budget
        )
        return NormBounds(lower, upper, "per-frequency Cholesky proof (circular, exact)")
    if method == "exact":
        raise ParameterError(
            "method", "method='exact' needs circular padding with stride dividing the size"
        )
    if method == "factorization" or (method == "auto" and factorization_fits(twin, budget)):
        return _factorization_bounds(twin, rtol, budget)
    return _symbol_bounds(twin, budget)


def _checked(op: object, rtol: float, method: str) -> ConvOperator:
    check_layer(op, rtol)
    if method not in METHODS:
        raise ParameterError("method", f"method must be one of {METHODS}; got {method!r}")
    return op


def check_layer(op: object, rtol: float) -> ConvOperator:
    """``op`` when it is a layer and ``rtol`` a number in (0, 1), else a parameter error."""
    if not isinstance(op, ConvOperator):
        raise ParameterTypeError(
            "op", f"op must be a toeplitz_conv Conv or ConvTranspose; got {type(op).__name__}"
        )
    if not (isinstance(rtol, numbers.Real) and not isinstance(rtol, bool) and 0 < rtol < 1):
        raise ParameterError("rtol", f"rtol must be a number in (0, 1); got {rtol!r}")
    return op


def double_precision_twin(op: ConvOperator, scale: float = 1.0) -> ConvOperator:
    """The same layer (same view) in float64 or complex128, without bias, its weight times
    ``scale`` (a power of two keeps the matrix exactly proportional)."""
    complex_ = np.iscomplexobj(op.weight)
    dtype = np.complex128 if complex_ else np.float64
    weight = op.weight.astype(dtype) * scale
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


def absolute_norm_bound(op: ConvOperator) -> float:
    """A bound of :math:`\\| |A| \\|_2 \\le \\sqrt{\\|A\\|_1 \\|A\\|_\\infty}` from the weight.

    A row of :math:`|A|` sums at most the absolute taps of one output channel; a
    column at most those of one input channel, each read at most
    :math:`\\prod_a m_a` times (:func:`read_multiplicity`).
    """
    g = op.geometry
    w = np.abs(op.weight).reshape(g.out_channels, g.in_per_group, -1).sum(axis=-1)
    rows = float(w.sum(axis=1).max())
    per_input = w.reshape(g.groups, g.out_per_group, g.in_per_group).sum(axis=1)
    columns = float(per_input.max()) * math.prod(read_multiplicity(g))
    return math.sqrt(rows * columns)


def read_multiplicity(geometry) -> tuple[int, ...]:
    """Per axis, the most padded positions that read one input sample (1 for zeros)."""
    mode = PADDING_MODES[geometry.padding_mode]
    counts = []
    for (before, after), n in zip(geometry.pads, geometry.input_spatial):
        if mode.drops_reads:
            counts.append(1)
        elif n + before + after > 1 << 24:  # too long to count: every pad could land on one
            counts.append(1 + before + after)
        else:
            folded = mode.fold(np.arange(-before, n + after), n)
            counts.append(int(np.bincount(folded[folded >= 0], minlength=n).max()))
    return tuple(counts)


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


def _plane_wave(op: ConvOperator, layer: PeriodicLayer, witness) -> list[np.ndarray]:
    """A windowed plane wave at the symbol's peak, on the conv's input, refined by a few
    power iterations; real and imaginary parts for a real layer."""
    frequency, group, vector = witness
    g = op.geometry
    forward = op.T if op.transposed else op
    c_group = g.in_per_group
    f = np.array(np.unravel_index(frequency, layer.coarse))
    d = g.ndim
    column = (d, *([1] * d))
    pads = np.array([pb for pb, _ in g.pads]).reshape(column)
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
    if mode == "circular":
        period, stride = tuple(g.input_spatial), (1,) * g.ndim
        factor = math.sqrt(math.prod(_circular_row_repeats(g)))
        how = "circular stride-1 layer's per-frequency proof"
        if fft_applicable(g):
            stride, factor, how = tuple(g.stride), 1.0, "per-frequency proof (a submatrix)"
        elif factor != 1.0:
            how += f" x sqrt(row repeats) {factor:.4g}"
    else:
        period = tuple(
            _multiple_above((m - 1) * s + d * (k - 1) + 1, s)
            for m, s, d, k in zip(g.output_spatial, g.stride, g.dilation, g.kernel)
        )
        stride = tuple(g.stride)
        factor = math.sqrt(math.prod(read_multiplicity(g)))
        how = f"symbol bound (a submatrix of the circular layer on period {period})"
        if mode != "zeros":
            how += f" x ||padding operator|| {factor:.4g}"
    layer = periodic_layer(op, period, stride)
    # the plane wave, its real and imaginary parts and their images, in complex128
    vectors = 16 * (PLANE_WAVE_COPIES * op.shape[1] + 2 * op.shape[0])
    check_budget(vectors, f"vectors of the lower bound of a {op.shape} layer", max_bytes=budget)
    _, upper, witness = periodic_norm_bracket(layer, max_bytes=budget)
    lower = _explicit_lower(op, _plane_wave(op, layer, witness))
    return NormBounds(lower, upper * factor * (1 + 4 * gamma(1)), f"{how}; lower: explicit vector")


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
        gram = banded_gram(matrix, block.side, block.channels, block.spatial, max_bytes=budget)
        del matrix
        upper = lower * (1 + rtol / 2)
        for attempt in range(60):
            if upper > 0 and is_positive_definite(gram, upper**2, -1.0):
                break
            upper = max(upper, 1e-300) * (1 + rtol * 2**attempt)
        else:  # pragma: no cover - a proof that never succeeds
            raise RuntimeError("the factorization proof did not succeed")
        lowers.append(lower)
        uppers.append(upper)
    return NormBounds(
        max(lowers), max(uppers), "banded Cholesky proof of u^2 I - A^H A; lower: Lanczos vector"
    )
