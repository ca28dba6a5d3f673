"""Exact ground truth for tiny layers: the matrix in rational arithmetic, its singular
values with mpmath at high precision.

Written from PyTorch's definitions alone (no code of the package): output
``(o, p)`` of a conv reads padded position ``p * s + t * d - before`` of every
input channel of its group, and the padding mode says which input sample that
position is. Entries are sums of :class:`fractions.Fraction` taps, so folded
taps that cancel cancel exactly.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import mpmath
import numpy as np

DIGITS = 60  # decimal digits of the singular values


def _fold(q: int, n: int, mode: str) -> int | None:
    if mode == "zeros":
        return q if 0 <= q < n else None
    if mode == "circular":
        return q % n
    if mode == "replicate":
        return min(max(q, 0), n - 1)
    if mode == "reflect":  # whole-sample mirror, pads < n
        q = abs(q)
        return 2 * (n - 1) - q if q > n - 1 else q
    raise ValueError(mode)


def _output_size(n, k, s, d, before, after) -> int:
    return (n + before + after - d * (k - 1) - 1) // s + 1


def _exact(value) -> Fraction | tuple[Fraction, Fraction]:
    if isinstance(value, complex | np.complexfloating):
        return (Fraction(float(value.real)), Fraction(float(value.imag)))
    return Fraction(float(value))


def conv_matrix(weight, input_shape, *, stride, pads, dilation, groups, mode) -> dict:
    """The conv's matrix as ``{(row, column): exact value}`` and its shape.

    A complex value is a pair ``(real, imaginary)`` of fractions.
    """
    weight = np.asarray(weight)
    c_out, c_group, *kernel = weight.shape
    c_in, *spatial = input_shape
    out = [
        _output_size(n, k, s, d, b, a)
        for n, k, s, d, (b, a) in zip(spatial, kernel, stride, dilation, pads)
    ]
    out_per_group = c_out // groups
    entries: dict = {}
    for o in range(c_out):
        group = o // out_per_group
        for p in itertools.product(*(range(m) for m in out)):
            row = np.ravel_multi_index((o, *p), (c_out, *out))
            for j in range(c_group):
                channel = group * c_group + j
                for t in itertools.product(*(range(k) for k in kernel)):
                    where = [
                        _fold(pa * s + ta * d - b, n, mode)
                        for pa, ta, s, d, (b, _), n in zip(p, t, stride, dilation, pads, spatial)
                    ]
                    if any(w is None for w in where):
                        continue
                    column = np.ravel_multi_index((channel, *where), tuple(input_shape))
                    key = (int(row), int(column))
                    value = _exact(weight[(o, j, *t)])
                    entries[key] = _add(entries.get(key), value)
    shape = (c_out * math.prod(out), math.prod(input_shape))
    return {"entries": entries, "shape": shape, "output_spatial": tuple(out)}


def _add(a, b):
    if a is None:
        return b
    if isinstance(b, tuple):
        return (a[0] + b[0], a[1] + b[1])
    return a + b


def conv_transpose_matrix(
    weight, input_shape, *, stride, pads, dilation, groups, output_padding, mode="zeros"
) -> dict:
    """The conv-transpose's matrix: the transpose of the conv on its output shape, whose
    rows past the conv-transpose's input (``output_padding >= stride``) are dropped."""
    weight = np.asarray(weight)
    c_in, *spatial = input_shape
    c_out = weight.shape[1] * groups
    sizes = [
        (n - 1) * s - b - a + d * (k - 1) + op + 1
        for n, s, (b, a), d, k, op in zip(
            spatial, stride, pads, dilation, weight.shape[2:], output_padding
        )
    ]
    conv = conv_matrix(
        weight,
        (c_out, *sizes),
        stride=stride,
        pads=pads,
        dilation=dilation,
        groups=groups,
        mode=mode,
    )
    conv_out = (c_in, *conv["output_spatial"])
    entries = {}
    for (row, column), value in conv["entries"].items():
        index = np.unravel_index(row, conv_out)
        if all(i < n for i, n in zip(index[1:], spatial)):
            kept = int(np.ravel_multi_index(index, tuple(input_shape)))
            entries[(column, kept)] = value
    return {"entries": entries, "shape": (conv["shape"][1], math.prod(input_shape))}


def singular_values(matrix: dict) -> list:
    """All min(m, n) singular values, descending, as mpmath numbers of ``DIGITS`` digits."""
    m, n = matrix["shape"]
    complex_ = any(isinstance(v, tuple) for v in matrix["entries"].values())
    with mpmath.workdps(DIGITS):
        a = mpmath.zeros(m, n)
        for (i, j), v in matrix["entries"].items():
            if isinstance(v, tuple):
                a[i, j] = mpmath.mpc(_mpf(v[0]), _mpf(v[1]))
            else:
                a[i, j] = _mpf(v)
        if not complex_:
            values = mpmath.svd_r(a, compute_uv=False)
        else:
            values = mpmath.svd_c(a, compute_uv=False)
        result = sorted((values[i] for i in range(min(m, n))), reverse=True)
    return result


def _mpf(fraction: Fraction):
    return mpmath.mpf(fraction.numerator) / fraction.denominator
