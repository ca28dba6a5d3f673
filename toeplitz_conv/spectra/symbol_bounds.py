"""Brackets that need no factorization: the symbol bound and an explicit-vector lower bound.

When the banded Gram matrix does not fit the budget, the upper end comes from a
circular layer of which the layer is a submatrix (zero padding, on a period at
least the reach of the windows), times the padding operator's norm for reflect
and replicate, or from the stride-1 circulant for circular layers whose stride does
not divide the size; the lower end from a windowed plane wave at the symbol's peak
(see :mod:`toeplitz_conv.spectra.certified`).
"""

from __future__ import annotations

import math

import numpy as np

from ..core.memory import check_budget
from ..layers.conv import ConvOperator
from .brackets import NormBounds
from .layer_gram import absolute_norm_bound, read_multiplicity
from .spectral import fft_applicable
from .symbol import PeriodicLayer, gamma, periodic_norm_bracket

__all__ = ["symbol_bounds"]

PLANE_WAVE_COPIES = 6  # input-sized complex vectors alive while the lower bound is built
POWER_STEPS = 2  # power iterations refining the plane-wave vector of the lower bound


def explicit_lower(op: ConvOperator, vectors: list[np.ndarray]) -> float:
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


def symbol_bounds(op: ConvOperator, budget: int) -> NormBounds:
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
    lower = explicit_lower(op, _plane_wave(op, layer, witness, offsets))
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
