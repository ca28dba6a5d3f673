"""Solve tests aimed at the bugs a suite of plausible mutants of ``solve/`` let through
(#33): factorisations kept per damp, the compiled Gram's conjugate, the damp rules on
the cosine forms, the reflect path's stopping norm, single-precision layers, complex
priors, and the prior taken out at small damps. Each compares with an independent
oracle: numpy's dense least squares and SVD, or rational arithmetic."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from oracles import dense_gcv, operator_matrix, tikhonov_minimiser
from spies import counted
from test_solve_exact import _dyadic, _exact_tikhonov, _rational_matrix

import toeplitz_conv as tc
from toeplitz_conv.core.jit import numba_installed
from toeplitz_conv.solve import algebra


def _symmetric(rng, shape):
    w = rng.standard_normal(shape)
    for axis in range(2, len(shape)):
        w = w + np.flip(w, axis)
    return w


def _relative_error(x, expected):
    return np.linalg.norm(x - expected) / np.linalg.norm(expected)


# --- 1. factorisations kept by the layer: one per damp ---------------------------------------

KEPT_LAYERS = {  # the exact methods keep per-damp factors; so do the preconditioners
    "fourier": dict(padding=1, padding_mode="circular"),
    "cosine": dict(padding=1, padding_mode="replicate"),
    "pcg": dict(padding=1, padding_mode="reflect"),  # the DCT-I inverses, per damp
}


@pytest.mark.parametrize("method", KEPT_LAYERS)
def test_a_second_damp_on_the_same_layer_is_solved_for_that_damp(method):
    """d1, d2, then d1 again on one layer, each against a dense solve: a factorisation
    kept under a key without the damp returns the first damp's answer."""
    rng = np.random.default_rng(21)
    op = tc.Conv(_symmetric(rng, (2, 2, 3, 3)), (2, 6, 7), **KEPT_LAYERS[method])
    a = operator_matrix(op)
    b = rng.standard_normal(op.shape[0])
    for damp in (0.05, 0.7, 0.05):
        expected = tikhonov_minimiser(a, b, damp, np.zeros(a.shape[1]))
        result = tc.solve_tikhonov(op, b, damp, rtol=1e-12)
        assert result.method == method
        assert _relative_error(result.x, expected) <= 1e-9, damp


@pytest.mark.parametrize("kind, mode", [("circulant", "circular"), ("cosine", "replicate")])
def test_the_preconditioner_at_a_second_damp_inverts_that_damp(kind, mode):
    rng = np.random.default_rng(22)
    op = tc.Conv(_symmetric(rng, (2, 2, 3, 3)), (2, 6, 7), padding=1, padding_mode=mode)
    a = operator_matrix(op)
    v = rng.standard_normal(op.shape[1])
    for damp in (0.1, 0.9, 0.1):
        expected = np.linalg.solve(a.T @ a + damp**2 * np.eye(a.shape[1]), v)
        got = tc.preconditioner(op, damp, kind=kind) @ v
        assert _relative_error(got, expected) <= 1e-10, damp


def test_the_conv_transpose_view_sharing_the_layer_is_solved_for_itself():
    """The conv-transpose of a solved layer shares its caches: each view and damp its own."""
    rng = np.random.default_rng(23)
    w = rng.standard_normal((2, 2, 3, 3)) + 1j * rng.standard_normal((2, 2, 3, 3))
    op = tc.Conv(w, (2, 6, 6), padding=1, padding_mode="circular")
    for view, damp in [(op, 0.2), (op.H, 0.2), (op.T, 0.2), (op, 0.5), (op.H, 0.5), (op, 0.2)]:
        a = view.todense()
        c = rng.standard_normal(a.shape[0])
        expected = tikhonov_minimiser(a, c, damp, np.zeros(a.shape[1]))
        assert _relative_error(tc.solve_tikhonov(view, c, damp).x, expected) <= 1e-10


@pytest.mark.parametrize("mode", ["circular", "replicate", "reflect"])
def test_choose_damp_after_solves_on_the_layer_minimises_the_dense_gcv(mode):
    rng = np.random.default_rng(24)
    w = _symmetric(rng, (2, 2, 3, 3))
    w = w + np.swapaxes(w, 0, 1)  # symmetric mixing: the eigendecomposition path
    op = tc.Conv(w, (2, 6, 7), padding=1, padding_mode=mode)
    a, b = _weighted(op, rng)
    for damp in (0.05, 0.3):
        tc.solve_tikhonov(op, b[1], damp)
        tc.preconditioner(op, damp, kind="cosine" if mode != "circular" else "circulant")
    chosen = tc.choose_damp(op, b[1])
    grid = np.logspace(-8, 0, 400) * np.linalg.norm(a, 2)
    best = min(dense_gcv(a, b[0], d) for d in grid)
    assert dense_gcv(a, b[0], chosen) <= best * (1 + 1e-6)


# --- 2. the compiled Gram matrices are conjugated --------------------------------------------


@pytest.mark.skipif(not numba_installed(), reason="the compiled loop needs the [fast] extra")
@pytest.mark.parametrize("rows, cols", [(3, 3), (2, 4), (4, 2)])
@pytest.mark.parametrize("inverse", [False, True])
def test_the_compiled_loop_conjugates_near_real_complex_symbols(monkeypatch, rows, cols, inverse):
    """Random complex symbols make an unconjugated Gram matrix fail its Cholesky, and the
    SVD fallback hides the bug; near-real ones (imaginary part 0.1 times the real) keep
    it positive, so the compiled answer itself is checked, the fallback counted out."""
    monkeypatch.setattr(algebra, "USE_NUMBA", True)
    monkeypatch.setattr(algebra, "COMPILED_WORK", 0)
    fallbacks: list[int] = []
    for name in ("_singular_solution_operators", "_singular_normal_inverses"):
        monkeypatch.setattr(algebra, name, counted(getattr(algebra, name), fallbacks))
    rng = np.random.default_rng(rows * 10 + cols)
    real = rng.standard_normal((2, 300, rows, cols)) + 2 * np.eye(rows, cols)
    symbols = real + 0.1j * real * rng.standard_normal(real.shape)
    n = cols
    v = rng.standard_normal((2, 300, n)) + 1j * rng.standard_normal((2, 300, n))
    adjoint = np.conj(np.swapaxes(symbols, -1, -2))
    gram = adjoint @ symbols + 0.3**2 * np.eye(cols)
    if inverse:
        got = algebra.normal_inverses(symbols, 0.3).apply(v)
        expected = np.linalg.solve(gram, v[..., None])[..., 0]
    else:
        w = rng.standard_normal((2, 300, rows)) + 1j * rng.standard_normal((2, 300, rows))
        got = algebra.solution_operators(symbols, 0.3).apply(w)
        expected = np.linalg.solve(gram, (adjoint @ w[..., None]))[..., 0]
    assert not fallbacks
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


# --- 3. the damp rules on the cosine forms ---------------------------------------------------

COSINE_RULE_LAYERS = [
    ((2, 2, 3, 3), (2, 6, 7), 1, "replicate"),
    ((3, 3, 3), (3, 11), 1, "replicate"),
    ((2, 2, 3, 3), (2, 6, 7), 1, "reflect"),
    ((2, 2, 5, 5), (2, 7, 8), 2, "reflect"),
]


def _blur(rng, weight_shape):
    """Binomial blurs (symmetric, smoothing: GCV has an interior minimum) mixed across
    channels, 0.8 on the diagonal and random off it."""
    kernel = np.ones(())
    for k in weight_shape[2:]:
        taps = np.array([math.comb(k - 1, j) for j in range(k)], dtype=float)
        kernel = np.multiply.outer(kernel, taps / taps.sum())
    mixing = 0.8 * np.eye(*weight_shape[:2]) + 0.1 * rng.random(weight_shape[:2])
    return np.multiply.outer(mixing, kernel)


def _weighted(op, rng):
    """The layer's matrix and data (a blurred signal plus noise) in the norm the damp
    rules use: the Euclidean one, or for reflect padding the DCT-I's weighted norm
    (edges by 1/2 per axis): :math:`W^{1/2} A W^{-1/2}` and :math:`W^{1/2} b`, with the
    unweighted data beside."""
    a = operator_matrix(op)
    b = a @ rng.standard_normal(a.shape[1]) + 0.05 * rng.standard_normal(a.shape[0])
    if op.geometry.padding_mode != "reflect":
        return a, (b, b)
    weights = np.ones(op.input_shape[1:])
    for axis in range(weights.ndim):
        edge = [slice(None)] * weights.ndim
        for end in (0, -1):
            edge[axis] = end
            weights[tuple(edge)] *= 0.5
    root_in = np.sqrt(np.broadcast_to(weights, op.input_shape)).ravel()
    root_out = np.sqrt(np.broadcast_to(weights, op.output_shape)).ravel()
    return root_out[:, None] * a / root_in[None, :], (root_out * b, b)


def _rule_problem(case, seed: int):
    """The blur layer of ``case``, and its matrix and data as :func:`_weighted` gives them."""
    weight_shape, input_shape, padding, mode = case
    rng = np.random.default_rng(seed)
    op = tc.Conv(_blur(rng, weight_shape), input_shape, padding=padding, padding_mode=mode)
    return (op, *_weighted(op, rng))


@pytest.mark.parametrize("case", COSINE_RULE_LAYERS, ids=lambda c: f"{c[3]}-{c[0]}")
def test_the_discrepancy_rule_on_cosine_layers_meets_its_equation(case):
    op, a, (b, given) = _rule_problem(case, seed=25)
    noise = 0.05
    damp = tc.choose_damp(op, given, rule="discrepancy", noise_std=noise)
    x = tikhonov_minimiser(a, b, damp, np.zeros(a.shape[1]))
    assert np.linalg.norm(a @ x - b) == pytest.approx(noise * math.sqrt(a.shape[0]), rel=2e-3)


@pytest.mark.parametrize("case", COSINE_RULE_LAYERS, ids=lambda c: f"{c[3]}-{c[0]}")
def test_gcv_on_cosine_layers_chooses_the_minimum_of_the_dense_gcv(case):
    op, a, (b, given) = _rule_problem(case, seed=26)
    chosen = tc.choose_damp(op, given)
    grid = np.logspace(-8, 0, 400) * np.linalg.norm(a, 2)
    best = min(dense_gcv(a, b, d) for d in grid)
    assert dense_gcv(a, b, chosen) <= best * (1 + 1e-6)


# --- 4. the reflect path stops on the normal equations' own residual -------------------------


def test_reflect_pcg_meets_rtol_on_data_at_the_corners():
    """Data at the four corners, where the DCT-I's weighted norm counts a sample by a
    quarter: CG's coordinates overstate the right-hand side's norm there, so a stopping
    test in the unweighted norm stops early (1.9 rtol for this layer)."""
    rng = np.random.default_rng(2)
    w = 0.05 * _symmetric(rng, (1, 1, 3, 3))
    w[0, 0, 1, 1] += 1.0
    op = tc.Conv(w, (1, 6, 7), padding=1, padding_mode="reflect")
    a = operator_matrix(op)
    b = np.zeros(op.output_shape)
    for corner in itertools.product([0, -1], [0, -1]):
        b[(0, *corner)] = rng.standard_normal()
    b = b.ravel()
    damp, rtol = 0.5, 1e-7
    result = tc.solve_tikhonov(op, b, damp, rtol=rtol)
    assert result.method == "pcg" and result.converged
    rhs = a.T @ b
    residual = a.T @ (a @ result.x) + damp**2 * result.x - rhs
    assert np.linalg.norm(residual) <= rtol * np.linalg.norm(rhs)


# --- 5, 6. single precision, complex priors --------------------------------------------------

EVERY_METHOD = [  # (padding mode, preconditioner): each path solve_tikhonov can take
    ("circular", "auto"),  # fourier
    ("replicate", "auto"),  # cosine
    ("reflect", "auto"),  # PCG in DCT-I coordinates
    ("zeros", "auto"),  # plain CG
    ("zeros", "circulant"),
    ("zeros", "cosine"),
]


@pytest.mark.parametrize("mode, preconditioner", EVERY_METHOD)
@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_single_precision_layers_are_solved_in_double_precision(mode, preconditioner, dtype):
    """A float32 or complex64 layer's solution is float64 or complex128 and as accurate
    as the same weights' in double precision: the solves never run in the layer's
    precision (CG in float32 products stopped 1e-5 off, reporting convergence)."""
    rng = np.random.default_rng(27)
    w = _symmetric(rng, (2, 2, 3, 3))
    if dtype == np.complex64:
        w = w * (1 + 0.5j)
    single = tc.Conv(w.astype(dtype), (2, 6, 7), padding=1, padding_mode=mode)
    wide = np.complex128 if dtype == np.complex64 else np.float64
    double = tc.Conv(w.astype(dtype).astype(wide), (2, 6, 7), padding=1, padding_mode=mode)
    a = operator_matrix(double)
    b = rng.standard_normal(a.shape[0]).astype(np.float32)
    damp, rtol = 0.05, 1e-10
    result = tc.solve_tikhonov(single, b, damp, rtol=rtol, preconditioner=preconditioner)
    assert result.x.dtype == (np.complex128 if dtype == np.complex64 else np.float64)
    expected = tikhonov_minimiser(a, b.astype(float), damp, np.zeros(a.shape[1]))
    gram = a.conj().T @ a + damp**2 * np.eye(a.shape[1])
    bound = 1e-10 if result.exact else 10 * rtol * np.linalg.cond(gram)
    assert result.converged and _relative_error(result.x, expected) <= bound


@pytest.mark.parametrize("mode, preconditioner", EVERY_METHOD)
def test_a_complex_prior_on_a_real_layer_keeps_its_imaginary_part(mode, preconditioner):
    rng = np.random.default_rng(28)
    op = tc.Conv(_symmetric(rng, (2, 2, 3, 3)), (2, 6, 7), padding=1, padding_mode=mode)
    a = operator_matrix(op)
    b = rng.standard_normal(a.shape[0])
    x0 = rng.standard_normal(a.shape[1]) + 1j * rng.standard_normal(a.shape[1])
    damp, rtol = 0.3, 1e-12
    with np.errstate(all="raise"):
        result = tc.solve_tikhonov(op, b, damp, x0=x0, rtol=rtol, preconditioner=preconditioner)
    assert result.x.dtype == np.complex128
    expected = tikhonov_minimiser(a, b, damp, x0)
    gram = a.T @ a + damp**2 * np.eye(a.shape[1])
    bound = 1e-10 if result.exact else 10 * rtol * np.linalg.cond(gram)
    assert _relative_error(result.x, expected) <= bound


# --- 7. a prior far beyond the data, at a small damp -----------------------------------------

SHIFTED = [  # (name, weight, input shape, padding, mode): layers with a null space
    ("reflect cancelling", [[[0.25, -0.5, 0.25]]], (1, 7), 1, "reflect"),
    ("zeros 2->1", [[[0.5, 0.25, -0.25], [1.0, 0.0, -1.0]]], (2, 5), 1, "zeros"),
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("magnitudes", [(1000, 0, 0), (0, -1000, 1000), (0, 0, 600)], ids=str)
@pytest.mark.parametrize("case", SHIFTED, ids=[c[0] for c in SHIFTED])
def test_a_prior_far_beyond_the_data_at_a_small_damp(case, magnitudes, seed):
    """At damp 2^-20 (times the weights' scale) the minimiser is the prior's null-space
    part plus a least-squares fit: conjugate gradients started at a prior 2^600 or more
    beyond the data stop on a residual dominated by the prior's rounding (1e-4 off
    here), while the prior taken out first (``x = x0 + u``) gives the rational
    minimiser to 1e-12. The residual of the normal equations meets ``rtol`` relative to
    :math:`\\|A^H (b - A x_0)\\|`, as documented."""
    name, weight, shape, padding, mode = case
    e, f, g = magnitudes
    weight = np.asarray(weight, dtype=np.float64)
    op = tc.Conv(weight * 2.0**e, shape, padding=padding, padding_mode=mode)
    matrix = _rational_matrix(weight, shape, padding, mode, scale=Fraction(2) ** e)
    rng = np.random.default_rng(seed)
    b, x0 = _dyadic(rng, op.shape[0]) * 2.0**f, _dyadic(rng, op.shape[1]) * 2.0**g
    damp = Fraction(2) ** (e - 20)
    exact = _exact_tikhonov(matrix, [Fraction(v) for v in b], damp, [Fraction(v) for v in x0])
    rtol = 1e-14
    result = tc.solve_tikhonov(op, b, float(damp), x0=x0, rtol=rtol, maxiter=10_000)
    assert result.converged and result.method == "pcg"
    x = [Fraction(float(v)) for v in result.x]
    largest = max(abs(v) for v in exact)
    assert max(abs(v - w) for v, w in zip(x, exact)) <= Fraction(1, 10**12) * largest
    assert _relative_normal_residual(matrix, x, b, damp, x0) <= 10 * rtol


def _relative_normal_residual(matrix, x, b, damp, x0) -> float:
    """:math:`\\|A^H (A x - b) + d^2 (x - x_0)\\| / \\|A^H (b - A x_0)\\|` in exact
    arithmetic (both norms may lie beyond the floating-point range; their ratio not)."""
    cols = matrix["shape"][1]
    b, x0 = [Fraction(v) for v in b], [Fraction(v) for v in x0]
    fit, shifted = [-v for v in b], [-v for v in b]
    for (i, j), value in matrix["entries"].items():
        fit[i] += value * x[j]
        shifted[i] += value * x0[j]
    normal = [damp * damp * (x[j] - x0[j]) for j in range(cols)]
    reference = [Fraction(0)] * cols
    for (i, j), value in matrix["entries"].items():
        normal[j] += value * fit[i]
        reference[j] += value * shifted[i]
    return math.sqrt(sum(v * v for v in normal) / sum(v * v for v in reference))


# --- also seen: the circulant preconditioner kept by the layer -------------------------------


def test_the_circulant_preconditioner_is_factorised_once_per_damp(monkeypatch):
    """Three same-damp PCG solves with the circulant preconditioner factorise once (the
    counterpart was rebuilt per call, with caches of its own), each still the dense
    solution."""
    from toeplitz_conv.solve import fourier

    factorisations: list[int] = []
    monkeypatch.setattr(fourier, "_inverses", counted(fourier._inverses, factorisations))
    rng = np.random.default_rng(29)
    op = tc.Conv(rng.standard_normal((2, 2, 3, 3)), (2, 8, 8), padding=1)
    a = operator_matrix(op)
    for seed in range(3):
        b = np.random.default_rng(seed).standard_normal(op.shape[0])
        result = tc.solve_tikhonov(op, b, 0.1, rtol=1e-12, preconditioner="circulant")
        expected = tikhonov_minimiser(a, b, 0.1, np.zeros(a.shape[1]))
        assert _relative_error(result.x, expected) <= 1e-9
    assert len(factorisations) == 1
    tc.solve_tikhonov(op, b, 0.2, preconditioner="circulant")
    assert len(factorisations) == 2
