"""solve_tikhonov against the exact minimiser in rational arithmetic on tiny layers.

The matrix is written from PyTorch's definitions in fractions (``exact_oracle``); the
weights, data, prior and damp are dyadic, so the normal equations
:math:`(A^T A + d^2 I) x = A^T b + d^2 x_0` are exact in :class:`fractions.Fraction`
and solved by elimination without rounding. Kernels with cancelling taps (a symbol
that vanishes at some frequency: a singular value of exactly 0, far below rounding
beside the damp) and folded taps (replicate, reflect) are included.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from exact_oracle import conv_matrix

import toeplitz_conv as tc


def _exact_tikhonov(matrix: dict, b, damp: Fraction, x0) -> list[Fraction]:
    rows, cols = matrix["shape"]
    a = [[Fraction(0)] * cols for _ in range(rows)]
    for (i, j), value in matrix["entries"].items():
        a[i][j] = value
    gram = [
        [sum((a[k][i] * a[k][j] for k in range(rows)), Fraction(0)) for j in range(cols)]
        for i in range(cols)
    ]
    for i in range(cols):
        gram[i][i] += damp * damp
    rhs = [
        sum((a[k][i] * b[k] for k in range(rows)), Fraction(0)) + damp * damp * x0[i]
        for i in range(cols)
    ]
    return _solve(gram, rhs)


def _solve(matrix: list[list[Fraction]], rhs: list[Fraction]) -> list[Fraction]:
    """Gauss-Jordan elimination in exact arithmetic (the matrix is SPD: no pivoting)."""
    n = len(rhs)
    rows = [row[:] + [value] for row, value in zip(matrix, rhs)]
    for i in range(n):
        pivot = rows[i][i]
        rows[i] = [value / pivot for value in rows[i]]
        for k in range(n):
            if k != i and rows[k][i] != 0:
                factor = rows[k][i]
                rows[k] = [v - factor * w for v, w in zip(rows[k], rows[i])]
    return [row[n] for row in rows]


def _rational_matrix(weight, input_shape, padding, mode, scale=Fraction(1)) -> dict:
    """The layer's matrix times ``scale`` in fractions, from PyTorch's definitions."""
    d = weight.ndim - 2
    matrix = conv_matrix(
        weight,
        input_shape,
        stride=(1,) * d,
        pads=[(padding, padding)] * d,
        dilation=(1,) * d,
        groups=1,
        mode=mode,
    )
    return {**matrix, "entries": {k: v * scale for k, v in matrix["entries"].items()}}


def _dyadic(rng, size: int, scale: int = 16) -> np.ndarray:
    return rng.integers(-4 * scale, 4 * scale, size) / scale


CASES = [
    # (name, weight, input shape, padding, mode, the method solve_tikhonov takes)
    ("circular difference", [[[1.0, -1.0, 0.0]]], (1, 8), 1, "circular", "fourier"),
    (
        "circular 2->2 mixing",
        [[[0.25, 0.5, 0.25], [0.5, -1.0, 0.5]], [[0.125, 0.25, 0.125], [-0.5, 1.0, -0.5]]],
        (2, 6),
        1,
        "circular",
        "fourier",
    ),
    ("replicate symmetric 2-D", np.full((1, 1, 3, 3), 0.125), (1, 4, 5), 1, "replicate", "cosine"),
    ("reflect cancelling", [[[0.25, -0.5, 0.25]]], (1, 7), 1, "reflect", "pcg"),
    ("zeros 2->1", [[[0.5, 0.25, -0.25], [1.0, 0.0, -1.0]]], (2, 5), 1, "zeros", "pcg"),
]


@pytest.mark.parametrize("damp", [0.5, 2.0**-20])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_solve_tikhonov_equals_the_rational_minimiser(case, damp):
    name, weight, input_shape, padding, mode, method = case
    weight = np.asarray(weight, dtype=np.float64)
    op = tc.Conv(weight, input_shape, padding=padding, padding_mode=mode)
    matrix = _rational_matrix(weight, input_shape, padding, mode)
    rng = np.random.default_rng(len(name))
    b, x0 = _dyadic(rng, op.shape[0]), _dyadic(rng, op.shape[1])
    exact = _exact_tikhonov(
        matrix, [Fraction(v) for v in b], Fraction(damp), [Fraction(v) for v in x0]
    )
    expected = np.array([float(v) for v in exact])
    result = tc.solve_tikhonov(op, b, damp, x0=x0, rtol=1e-14, maxiter=10_000)
    assert result.method == method and result.converged
    bound = 1e-13 if result.exact else 10 * 1e-14 * np.linalg.cond(operator_gram(op, damp))
    error = np.linalg.norm(result.x - expected) / np.linalg.norm(expected)
    assert error <= bound


def operator_gram(op, damp: float) -> np.ndarray:
    a = op.todense()
    return a.T @ a + damp * damp * np.eye(a.shape[1])


MAGNITUDES = [  # powers of two of (the weights and damp, b, x0)
    (1000, 0, 0),
    (-1000, 0, 0),
    (600, 0, 0),
    (0, -1000, 1000),
    (0, 1000, -1000),
    (0, 0, 600),
]


@pytest.mark.parametrize("magnitudes", MAGNITUDES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_extreme_magnitudes_and_a_prior_far_beyond_the_data(case, magnitudes):
    """Weights of 2^1000 make the prior 2^1000 times its size once the layer is scaled
    into range: no power of two holds it and the data together, so it is taken out of
    the problem first (``.scaling.shifted_data``); before, conjugate gradients overflowed
    and the exact methods returned NaN as exact."""
    name, weight, input_shape, padding, mode, method = case
    e, f, g = magnitudes
    weight = np.asarray(weight, dtype=np.float64)
    op = tc.Conv(weight * 2.0**e, input_shape, padding=padding, padding_mode=mode)
    matrix = _rational_matrix(weight, input_shape, padding, mode, scale=Fraction(2) ** e)
    rng = np.random.default_rng(len(name))
    b, x0 = _dyadic(rng, op.shape[0]) * 2.0**f, _dyadic(rng, op.shape[1]) * 2.0**g
    damp = 0.5 * 2.0**e
    exact = _exact_tikhonov(
        matrix, [Fraction(v) for v in b], Fraction(damp), [Fraction(v) for v in x0]
    )
    result = tc.solve_tikhonov(op, b, damp, x0=x0, rtol=1e-14, maxiter=10_000)
    assert result.method == method and result.converged and np.all(np.isfinite(result.x))
    unscaled = tc.Conv(weight, input_shape, padding=padding, padding_mode=mode)
    bound = 1e-13 if result.exact else 10 * 1e-14 * np.linalg.cond(operator_gram(unscaled, 0.5))
    largest = max(abs(v) for v in exact)
    error = max(abs(Fraction(float(v)) - w) for v, w in zip(result.x, exact)) / largest
    assert error <= bound
    residual = _residual(matrix, result.x, b)
    top = max(abs(v) for v in residual)
    norm = float(top) * math.sqrt(sum(float(v / top) ** 2 for v in residual)) if top else 0.0
    assert result.residual_norm == pytest.approx(norm, rel=1e-6)


def _residual(matrix: dict, x, b) -> list[Fraction]:
    """:math:`A x - b` in exact arithmetic."""
    rows = [-Fraction(v) for v in b]
    for (i, j), value in matrix["entries"].items():
        rows[i] += value * Fraction(float(x[j]))
    return rows


@pytest.mark.parametrize("mode", ["circular", "replicate", "zeros"])
def test_damp_zero_with_a_prior_far_beyond_the_data_gives_a_least_squares_solution(mode):
    """With damp 0 the prior is not in the objective: conjugate gradients start from 0
    instead of a start 2^1000 times the data (which they could not leave), the exact
    methods ignore it as always (the minimum-norm solution)."""
    weight = np.asarray([[[0.25, 0.5, 0.25], [0.5, 1.0, 0.5]]])  # 2 -> 1: a null space
    op = tc.Conv(weight * 2.0**800, (2, 6), padding=1, padding_mode=mode)
    rng = np.random.default_rng(3)
    b, x0 = _dyadic(rng, op.shape[0]), _dyadic(rng, op.shape[1])
    result = tc.solve_tikhonov(op, b, 0.0, x0=x0, rtol=1e-12)
    a = op.todense() * 2.0**-800
    minimum_norm = np.linalg.pinv(a) @ b * 2.0**-800
    assert result.converged
    np.testing.assert_allclose(result.x, minimum_norm, rtol=1e-9, atol=0)
