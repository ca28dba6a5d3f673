"""The per-frequency algebra of the exact solves: every path (the unrolled Cholesky, LAPACK,
the SVD fallback; frequency-last and frequency-first layouts) against numpy's dense solve
of each frequency's normal equations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.sparse.linalg import LinearOperator
from spies import counted

import toeplitz_conv as tc
from toeplitz_conv.core.jit import numba_installed
from toeplitz_conv.solve import algebra
from toeplitz_conv.solve.algebra import euclidean_norm

SHAPES = [(1, 1), (3, 3), (2, 4), (4, 2), (4, 4), (5, 3), (3, 6), (9, 8), (17, 16), (20, 18)]
PATHS = ["compiled", "numpy", "lapack"]


def _take(monkeypatch, path):
    """Force one of the three paths of the per-frequency solves."""
    monkeypatch.setattr(algebra, "USE_NUMBA", path == "compiled")
    monkeypatch.setattr(algebra, "COMPILED_WORK", 0)  # even these small stacks
    if path == "lapack":
        monkeypatch.setattr(algebra, "UNROLLED", 0)


def _symbols(rng, rows, cols, complex_, groups=2, frequencies=37):
    shape = (groups, frequencies, rows, cols)
    symbols = rng.standard_normal(shape)
    if complex_:
        symbols = symbols + 1j * rng.standard_normal(shape)
    return symbols


def _vectors(rng, groups, frequencies, n, complex_):
    """``(groups, F, n)`` as the transforms leave them: a view of ``(groups, n, F)``."""
    v = rng.standard_normal((groups, n, frequencies))
    if complex_:
        v = v + 1j * rng.standard_normal(v.shape)
    return v.transpose(0, 2, 1)


def _dense_solution(symbols, damp, v):
    adjoint = np.conj(np.swapaxes(symbols, -1, -2))
    gram = adjoint @ symbols + damp**2 * np.eye(symbols.shape[-1])
    return np.linalg.solve(gram, (adjoint @ v[..., None]))[..., 0]


def _dense_inverse(symbols, damp, v):
    adjoint = np.conj(np.swapaxes(symbols, -1, -2))
    gram = adjoint @ symbols + damp**2 * np.eye(symbols.shape[-1])
    return np.linalg.solve(gram, v[..., None])[..., 0]


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("rows, cols", SHAPES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("frequencies", [37, 2 * 256 + 37])  # kernels.SOLVE_BLOCK: 256
def test_solution_operators_solve_each_frequency(
    monkeypatch, rows, cols, complex_, path, frequencies
):
    """Every path against numpy's dense solve; the compiled loop on one partial block of
    frequencies, and on two whole ones and a partial one."""
    _take(monkeypatch, path)
    rng = np.random.default_rng(rows * 10 + cols)
    symbols = _symbols(rng, rows, cols, complex_, frequencies=frequencies)
    v = _vectors(rng, 2, frequencies, rows, complex_)
    stack = algebra.solution_operators(symbols, 0.3)
    assert stack.last == (rows * cols <= algebra.FREQUENCY_LAST)
    expected = _dense_solution(symbols, 0.3, v)
    np.testing.assert_allclose(stack.apply(v), expected, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("rows, cols", SHAPES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("frequencies", [37, 2 * 256 + 37])
def test_normal_inverses_invert_each_frequency(
    monkeypatch, rows, cols, complex_, path, frequencies
):
    _take(monkeypatch, path)
    rng = np.random.default_rng(rows * 10 + cols + 1)
    symbols = _symbols(rng, rows, cols, complex_, frequencies=frequencies)
    v = _vectors(rng, 2, frequencies, cols, complex_)
    stack = algebra.normal_inverses(symbols, 0.2)
    np.testing.assert_allclose(
        stack.apply(v), _dense_inverse(symbols, 0.2, v), rtol=1e-11, atol=1e-12
    )
    scales = rng.random(frequencies) + 0.5
    np.testing.assert_allclose(
        stack.scaled(scales).apply(v),
        _dense_inverse(symbols, 0.2, v) * scales[None, :, None],
        rtol=1e-11,
        atol=1e-12,
    )


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("rows, cols", [(1, 1), (3, 3), (2, 4), (4, 2), (20, 18)])
@pytest.mark.parametrize("with_prior", [False, True])
@pytest.mark.parametrize("frequencies", [37, 2 * 4096 + 37])  # kernels.FREQUENCY_BLOCK: 4096
@pytest.mark.parametrize("path", ["compiled", "numpy"])
def test_the_damped_residual_is_the_dense_one(
    monkeypatch, rows, cols, complex_, with_prior, frequencies, path
):
    """x_hat = x0 + R (b - K x0) and ||K x_hat - b|| over all frequencies against each
    frequency's dense solve (both stack layouts: frequency-last up to 256 entries; the
    compiled loop over blocks of frequencies, the last one partial, and numpy's)."""
    _take(monkeypatch, path)
    fused = []
    monkeypatch.setattr(algebra, "_compiled_residual", counted(algebra._compiled_residual, fused))
    rng = np.random.default_rng(rows * 7 + cols)
    symbols = _symbols(rng, rows, cols, complex_, frequencies=frequencies)
    b = _vectors(rng, 2, frequencies, rows, complex_)
    x0 = _vectors(rng, 2, frequencies, cols, complex_) if with_prior else None
    damp = 0.3
    stack = algebra.FrequencyStack.of(symbols)
    solution = algebra.solution_operators(symbols, damp)
    x_hat, residual = algebra.damped_residual(stack, solution, b, x0)
    assert len(fused) == (path == "compiled" and stack.last and solution.last and numba_installed())
    _assert_dense_damped_residual(symbols, damp, b, x0, x_hat, residual)


def _assert_dense_damped_residual(symbols, damp, b, x0, x_hat, residual):
    adjoint = np.conj(np.swapaxes(symbols, -1, -2))
    gram = adjoint @ symbols + damp**2 * np.eye(symbols.shape[-1])
    rhs = adjoint @ b[..., None]
    if x0 is not None:
        rhs = rhs + damp**2 * x0[..., None]
    expected = np.linalg.solve(gram, rhs)[..., 0]
    np.testing.assert_allclose(x_hat, expected, atol=1e-12 * np.abs(expected).max(initial=1))
    misfit = euclidean_norm((symbols @ expected[..., None])[..., 0] - b)
    assert residual == pytest.approx(misfit, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("path", ["compiled", "numpy"])
@pytest.mark.parametrize("scale", [0.0, 1e-160, 1e160], ids=["zero", "tiny", "huge"])
def test_the_damped_residual_of_extreme_data_is_exact(monkeypatch, path, scale):
    """A sum of squares that underflows or overflows (or b = 0, x0 = 0) is taken again by
    the scaled norm: the residual is exact at every scale."""
    _take(monkeypatch, path)
    rng = np.random.default_rng(5)
    symbols = _symbols(rng, 3, 3, False)
    b = scale * _vectors(rng, 2, 37, 3, False)
    stack = algebra.FrequencyStack.of(symbols)
    solution = algebra.solution_operators(symbols, 0.3)
    x_hat, residual = algebra.damped_residual(stack, solution, b, None)
    _assert_dense_damped_residual(symbols, 0.3, b, None, x_hat, residual)
    assert (residual == 0) == (scale == 0)


def test_the_compiled_residual_takes_a_real_layer_with_complex_data(monkeypatch):
    """Real symbols and a complex prior: one value type for the loop (the numpy path's)."""
    _take(monkeypatch, "compiled")
    rng = np.random.default_rng(6)
    symbols = _symbols(rng, 3, 2, False)
    b = _vectors(rng, 2, 37, 3, False)
    x0 = _vectors(rng, 2, 37, 2, True)
    stack = algebra.FrequencyStack.of(symbols)
    solution = algebra.solution_operators(symbols, 0.3)
    x_hat, residual = algebra.damped_residual(stack, solution, b, x0)
    assert x_hat.dtype == np.complex128
    _assert_dense_damped_residual(symbols, 0.3, b, x0, x_hat, residual)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("damp", [1e-160, 1e-200, 0.0])
def test_gram_singular_to_rounding_falls_back_to_the_svd(monkeypatch, damp, path):
    _take(monkeypatch, path)
    # a zero column at one frequency: K^H K + d^2 I has a pivot d^2 that is subnormal or 0
    symbols = np.zeros((1, 3, 2, 2))
    symbols[0, :, 0, 0] = [1.0, 2.0, 3.0]
    symbols[0, 1, 1, 1] = 4.0
    v = np.ones((1, 3, 2))
    with np.errstate(all="raise"):  # no overflow reaches the caller
        solution = algebra.solution_operators(symbols, damp).apply(v)
        inverse = algebra.normal_inverses(symbols, damp).apply(v)
    expected = np.array([[[1.0, 0.0], [0.5, 0.25], [1 / 3, 0.0]]])  # pseudo-inverse
    np.testing.assert_allclose(solution, expected, rtol=1e-14)
    assert np.all(np.isfinite(inverse))
    np.testing.assert_allclose(inverse[0, :, 0], [1.0, 0.25, 1 / 9], rtol=1e-14)


@pytest.mark.parametrize("path", PATHS)
def test_tiny_damps_give_finite_exact_solves(monkeypatch, path):
    _take(monkeypatch, path)
    # the symbol of [1, -1] vanishes at frequency 0; before, damp = 1e-200 raised LinAlgError
    op = tc.Conv(np.array([[[1.0, -1.0, 0.0]]]), (1, 8), padding=1, padding_mode="circular")
    b = np.arange(8.0)
    reference = tc.solve_tikhonov(op, b, 0.0).x  # the minimum-norm solution
    for damp in (1e-9, 1e-160, 1e-200):
        result = tc.solve_tikhonov(op, b, damp)
        np.testing.assert_allclose(result.x, reference, atol=1e-12)
        assert np.all(np.isfinite(tc.preconditioner(op, damp).matvec(b)))


@pytest.mark.parametrize(
    "v",
    [
        np.array([3.0, 4.0]),
        np.array([3e200, 4e200]),
        np.array([3e-200, 4e-200]),
        np.array([3 + 4j, 0]),
        np.array([3e300j, 4e300]),
        np.array([1e-320, 0.0]),
        np.zeros(3),
        np.array([np.inf, 1.0]),
        np.array([1.0, 2.0], dtype=np.float32),
    ],
)
def test_euclidean_norm_is_exact_at_every_scale(v):
    # math.hypot scales its arguments: the correctly rounded norm at any magnitude
    assert euclidean_norm(v) == pytest.approx(math.hypot(*np.abs(v).tolist()), rel=1e-15)


def test_euclidean_norm_of_nan_is_nan():
    assert math.isnan(euclidean_norm(np.array([np.nan, 1e300])))


def test_hermitian_symbols_take_the_eigendecomposition_and_agree_with_the_svd(monkeypatch):
    # symmetric mixing of a symmetric kernel, reflect padding: real symmetric cosine
    # symbols (circular ones are Hermitian only to the FFT's rounding: test_solve_eigen)
    from toeplitz_conv.solve import cosine, eigen
    from toeplitz_conv.solve.cosine import cosine_coordinates
    from toeplitz_conv.solve.forms import diagonal_form

    t = np.arange(5) - 2.0
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / 2)
    mixing = np.array([[0.7, 0.2, -0.1], [0.2, 0.5, 0.3], [-0.1, 0.3, 0.6]])
    op = tc.Conv(mixing[:, :, None, None] * g, (3, 12, 10), padding=2, padding_mode="reflect")
    b = np.random.default_rng(3).standard_normal(op.shape[0])
    symbols, b_hat = cosine_coordinates(op, b)
    assert np.array_equal(symbols, np.conj(np.swapaxes(symbols, -1, -2)))
    s, coefficients, _, _ = diagonal_form(op).form.damp_spectrum(b)
    weights = np.abs(coefficients) ** 2
    u_svd, s_svd, _ = np.linalg.svd(symbols)
    weights_svd = np.abs((np.conj(np.swapaxes(u_svd, -1, -2)) @ b_hat[..., None])[..., 0]) ** 2
    order = np.argsort(-s, axis=-1)
    np.testing.assert_allclose(np.take_along_axis(s, order, -1), s_svd, atol=1e-13)
    top = np.abs(b_hat).max() ** 2
    distinct = np.min(np.abs(np.diff(s_svd, axis=-1))) > 1e-8  # vectors defined up to phase
    assert distinct
    np.testing.assert_allclose(
        np.take_along_axis(weights, order, -1), weights_svd, atol=1e-12 * top
    )
    # and the chosen damp is that of the SVD path
    chosen = tc.choose_damp(op, b)
    monkeypatch.setattr(cosine, "cosine_eigen", lambda *args, **kwargs: None)
    monkeypatch.setattr(eigen, "hermitian_to_rounding", lambda symbols, relative: None)
    assert tc.choose_damp(op, b) == pytest.approx(chosen, rel=1e-6)


@pytest.mark.parametrize("large", [True, False])
def test_conjugate_gradients_on_large_problems_run_with_blas_on_one_thread(large, monkeypatch):
    # from BLAS_ONE_THREAD_SIZE unknowns on BLAS is limited to one thread during CG and
    # restored after; below it BLAS is left as it is
    from threadpoolctl import threadpool_info

    from toeplitz_conv.solve import iterative

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    seen = []
    op = tc.Conv(np.ones((1, 1, 3, 3)) / 9, (1, 12, 12), padding=1)
    monkeypatch.setattr(iterative, "BLAS_ONE_THREAD_SIZE", 144 if large else 145)

    def record(v):
        seen.append(blas_threads())
        return v

    identity = LinearOperator((144, 144), matvec=record, dtype=np.float64)
    tc.solve_tikhonov(op, np.ones(144), 0.1, preconditioner=identity)
    assert seen and all(threads == ([1] * len(before) if large else before) for threads in seen)
    assert blas_threads() == before


SCALES = [(1e-160, 1.0), (1e160, 1.0), (1.0, 1e-200), (1.0, 1e200), (1e100, 1e-150)]


@pytest.mark.parametrize("mode", ["circular", "replicate", "reflect", "zeros"])
@pytest.mark.parametrize("weight_scale, data_scale", SCALES)
def test_extreme_magnitudes_solve_as_the_unscaled_problem(mode, weight_scale, data_scale):
    # min ||sA x - tb||^2 + (s d)^2 ||x - (t/s) x0||^2 is solved by (t/s) x*: before, the
    # normal equations overflowed (inf, NaN, or an OverflowError from damp**2)
    rng = np.random.default_rng(5)
    t = np.arange(3) - 1.0
    weight = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2))[None, None] * [[[[1.0]], [[0.3]]]]
    weight = np.concatenate([weight, weight[:, ::-1]], axis=0)  # 2 -> 2, symmetric kernels
    op = tc.Conv(weight, (2, 9, 8), padding=1, padding_mode=mode)
    big = tc.Conv(weight * weight_scale, (2, 9, 8), padding=1, padding_mode=mode)
    b, x0 = rng.standard_normal(op.shape[0]), rng.standard_normal(op.shape[1])
    ratio = data_scale / weight_scale
    for damp in (0.05, 0.5):
        expected = tc.solve_tikhonov(op, b, damp, x0=x0, rtol=1e-12)
        got = tc.solve_tikhonov(big, b * data_scale, damp * weight_scale, x0=x0 * ratio, rtol=1e-12)
        assert got.method == expected.method and np.all(np.isfinite(got.x))
        np.testing.assert_allclose(got.x / ratio, expected.x, rtol=1e-9, atol=1e-9)
        assert got.residual_norm == pytest.approx(expected.residual_norm * data_scale, rel=1e-8)
    if mode != "zeros":  # GCV on the circulant counterpart of zero padding: same rule
        chosen = tc.choose_damp(big, b * data_scale) / weight_scale
        assert chosen == pytest.approx(tc.choose_damp(op, b), rel=1e-6)
    v = rng.standard_normal(op.shape[1])
    kind = "circulant" if mode in ("circular", "zeros") else "cosine"
    small_m = tc.preconditioner(op, 0.05, kind=kind).matvec(v)
    big_m = tc.preconditioner(big, 0.05 * weight_scale, kind=kind).matvec(v * weight_scale)
    np.testing.assert_allclose(big_m * weight_scale, small_m, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", ["circular", "zeros"])
def test_a_damp_whose_square_overflows_gives_the_prior(mode):
    op = tc.Conv(np.ones((1, 1, 3, 3)), (1, 6, 6), padding=1, padding_mode=mode)
    x0 = np.linspace(-1, 1, 36)
    result = tc.solve_tikhonov(op, np.ones(36), 1e200, x0=x0)
    np.testing.assert_allclose(result.x, x0, rtol=1e-12, atol=1e-15)  # FFTs round x0


def test_rescaled_is_the_same_view_of_a_layer_times_a_power_of_two():
    w = np.random.default_rng(2).standard_normal((2, 1, 3)) + 1j
    op = tc.Conv(w, (2, 5), padding=1, groups=2, bias=np.ones(2))
    for view in (op, op.H, tc.ConvTranspose(w, (2, 5), padding=1, groups=2)):
        scaled = view.rescaled(-700)  # times 2^-700: exact
        assert type(scaled) is type(view) and scaled.layer is not view.layer
        assert scaled.bias is None and scaled.shape == view.shape
        np.testing.assert_array_equal(scaled.todense(), view.todense() * 2.0**-700)


@pytest.mark.parametrize("mode", ["circular", "replicate", "reflect"])
def test_a_loop_of_solves_on_an_extreme_layer_factorises_once(mode, monkeypatch):
    # the scaled layer is kept by the original: an ADMM loop reuses its factorisation
    from toeplitz_conv.solve import cosine, fourier

    builds = []
    for module, name in [(fourier, "solution_operators"), (cosine, "solution_operators")]:
        monkeypatch.setattr(module, name, counted(getattr(module, name), builds))
    monkeypatch.setattr(cosine, "symmetric_eigen", counted(cosine.symmetric_eigen, builds))
    weight = 1e-160 * np.array([[[[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]]])
    op = tc.Conv(weight, (1, 8, 7), padding=1, padding_mode=mode)
    b = np.random.default_rng(0).standard_normal(op.shape[0])
    first = [tc.solve_tikhonov(op, b + k, 1e-161).x for k in range(3)]
    assert len(builds) == 1
    assert op.rescaled(500).layer is op.rescaled(500).layer
    assert op.rescaled(500).layer is not op.rescaled(501).layer
    again = tc.solve_tikhonov(op.H.H, b, 1e-161).x  # another view of the same layer
    np.testing.assert_array_equal(again, first[0])


def test_the_warning_of_an_unconverged_solve_points_at_the_caller():
    op = tc.Conv(np.ones((1, 1, 3, 3)), (1, 8, 8), padding=1)
    with pytest.warns(RuntimeWarning, match="did not reach rtol") as record:
        result = tc.solve_tikhonov(op, np.arange(64.0), 1e-3, maxiter=2)
    assert not result.converged and record[0].filename == __file__


@pytest.mark.parametrize(
    "mode, kwargs",
    [("circular", {}), ("replicate", {}), ("reflect", {}), ("zeros", {"preconditioner": None})],
)
def test_the_solvers_read_b_and_x0_in_place_and_never_write_to_them(mode, kwargs):
    # b and x0 are not copied (6 MB for a 3 x 512 x 512 image), but only read: the
    # solvers see them read-only, and the caller's arrays stay as they were, writable
    op = tc.Conv(np.ones((2, 2, 3, 3)) / 18, (2, 9, 8), padding=1, padding_mode=mode)
    rng = np.random.default_rng(0)
    b, x0 = rng.standard_normal(op.shape[0]), rng.standard_normal(op.shape[1])
    b_before, x0_before = b.copy(), x0.copy()
    result = tc.solve_tikhonov(op, b, 0.3, x0=x0, **kwargs)
    tc.choose_damp(op, b)
    np.testing.assert_array_equal(b, b_before)
    np.testing.assert_array_equal(x0, x0_before)
    assert b.flags.writeable and x0.flags.writeable
    assert not np.shares_memory(result.x, b) and not np.shares_memory(result.x, x0)
    result.x[:] = 0.0  # the result is the caller's own
    np.testing.assert_array_equal(x0, x0_before)
