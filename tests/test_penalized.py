"""The gradient penalty's structured solves and the data term's prox, against dense
linear algebra (PyTorch's matrices of the layers, numpy's difference matrices)."""

from __future__ import annotations

import numpy as np
import pylops
import pyproximal
import pytest
from oracles import operator_matrix

import toeplitz_conv as tc
from toeplitz_conv.solve.forms import diagonal_form


def difference_matrix(shape, boundary: str) -> np.ndarray:
    """Dense forward differences of every channel of ``shape = (C, *spatial)``, stacked
    by axis: a 1-D matrix per axis, Kronecker products around it."""
    channels, spatial = shape[0], shape[1:]
    blocks = []
    for axis, n in enumerate(spatial):
        one = -np.eye(n) + np.eye(n, k=1)
        if boundary == "periodic":
            one[n - 1, 0] += 1.0
        else:
            one[n - 1] = 0.0
        factors = [np.eye(channels)] + [
            one if a == axis else np.eye(m) for a, m in enumerate(spatial)
        ]
        matrix = factors[0]
        for factor in factors[1:]:
            matrix = np.kron(matrix, factor)
        blocks.append(matrix)
    return np.vstack(blocks)


def symmetric_mixing_layer(mode: str, size=(3, 7, 6), seed=0, **geometry) -> tc.Conv:
    """3 -> 3 with a symmetric 3 x 3 kernel per pair (so the cosine forms apply)."""
    rng = np.random.default_rng(seed)
    k = np.array([1.0, 2.0, 1.0]) / 4
    kernel = np.outer(k, k)
    weight = rng.standard_normal((3, 3))[:, :, None, None] * kernel
    return tc.Conv(weight, size, padding=1, padding_mode=mode, **geometry)


@pytest.mark.parametrize("boundary", ["periodic", "neumann"])
@pytest.mark.parametrize("shape", [(2, 5), (2, 4, 3), (1, 3, 2, 4)])
def test_the_gradient_is_its_dense_matrix_and_passes_the_dot_test(boundary, shape):
    grad = tc.Gradient(shape, boundary)
    dense = np.stack([grad.matvec(e) for e in np.eye(grad.shape[1])], 1)
    np.testing.assert_array_equal(dense, difference_matrix(shape, boundary))
    assert pylops.utils.dottest(grad, *grad.shape, rtol=1e-12)
    assert np.linalg.norm(dense, 2) ** 2 <= 4 * (len(shape) - 1) + 1e-12


def _layers():
    rng = np.random.default_rng(4)
    yield "circular", symmetric_mixing_layer("circular")
    yield "replicate", symmetric_mixing_layer("replicate")
    yield "reflect", symmetric_mixing_layer("reflect")
    yield "zeros", symmetric_mixing_layer("zeros")
    yield (
        "circular-stride2",
        tc.Conv(
            rng.standard_normal((4, 2, 4, 4)),
            (2, 8, 6),
            stride=2,
            padding=1,
            padding_mode="circular",
        ),
    )
    yield (
        "circular-groups",
        tc.Conv(
            rng.standard_normal((4, 1, 3, 3)),
            (2, 6, 5),
            padding=1,
            padding_mode="circular",
            groups=2,
        ),
    )
    yield (
        "transpose-stride2",
        tc.ConvTranspose(
            rng.standard_normal((3, 2, 4, 4)),
            (3, 4, 5),
            stride=2,
            padding=1,
            padding_mode="circular",
        ),
    )
    yield (
        "complex-circular",
        tc.Conv(
            rng.standard_normal((2, 2, 3)) + 1j * rng.standard_normal((2, 2, 3)),
            (2, 9),
            padding=1,
            padding_mode="circular",
        ),
    )
    yield "zeros-1d-stride2", tc.Conv(rng.standard_normal((2, 2, 3)), (2, 10), stride=2, padding=1)


LAYERS = list(_layers())


@pytest.mark.parametrize("damp", [0.3, 0.0])
@pytest.mark.parametrize("name, op", LAYERS, ids=[n for n, _ in LAYERS])
def test_the_penalised_solve_is_the_dense_minimiser(name, op, damp):
    a = operator_matrix(op)
    boundary = "periodic" if op.geometry.padding_mode == "circular" else "neumann"
    d = difference_matrix(op.input_shape, boundary)
    rng = np.random.default_rng(1)
    b = rng.standard_normal(op.shape[0]) + (
        1j * rng.standard_normal(op.shape[0]) if "complex" in name else 0
    )
    x0 = rng.standard_normal(op.shape[1])
    rho = 0.7
    normal = a.conj().T @ a + rho * d.T @ d + damp**2 * np.eye(a.shape[1])
    expected = np.linalg.solve(normal, a.conj().T @ b + damp**2 * x0)
    b_before = b.copy()
    result = tc.solve_penalized(op, b, rho, damp, x0=x0, rtol=1e-13)
    np.testing.assert_array_equal(b, b_before)
    exact = diagonal_form(op).form is not None and diagonal_form(op).form.exact
    assert result.exact == exact
    assert result.method == ("pcg" if not exact else result.method)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(result.x, expected, atol=(1e-11 if exact else 1e-8) * scale)
    assert result.residual_norm == pytest.approx(np.linalg.norm(a @ result.x - b), rel=1e-9)


@pytest.mark.parametrize("size", [(3, 7, 6), (2, 5, 4, 3)])
def test_the_reflect_form_bounds_the_penalised_normal_equations(size):
    """P <= A^H A + rho D^T D + d^2 I <= 2^a P for the DCT-I form with the penalty."""
    channels, spatial = size[0], size[1:]
    k = np.array([1.0, 2.0, 1.0]) / 4
    kernel = k
    for _ in spatial[1:]:
        kernel = np.multiply.outer(kernel, k)
    weight = np.random.default_rng(2).standard_normal((channels, channels))
    weight = weight.reshape(channels, channels, *([1] * len(spatial))) * kernel
    op = tc.Conv(weight, size, padding=1, padding_mode="reflect")
    form = diagonal_form(op).form
    assert form.basis == "dct1"
    a, d = operator_matrix(op), difference_matrix(size, "neumann")
    normal = a.T @ a + 0.4 * d.T @ d + 0.01 * np.eye(a.shape[1])
    inverse = form.normal_inverse(0.1, penalty=0.4)
    p_inv = np.stack([inverse(e) for e in np.eye(a.shape[1])], 1)
    eigenvalues = np.linalg.eigvals(p_inv @ normal).real
    assert eigenvalues.min() >= 1 - 1e-9
    assert eigenvalues.max() <= 2 ** len(spatial) + 1e-9


def test_the_penalised_solve_refuses_bad_input():
    op = symmetric_mixing_layer("circular")
    b = np.ones(op.shape[0])
    with pytest.raises(ValueError, match="penalty"):
        tc.solve_penalized(op, b, -1.0)
    with pytest.raises(ValueError, match="penalty or damp"):
        tc.solve_penalized(op, b, 0.0, 0.0)
    with pytest.raises(ValueError, match="b must"):
        tc.solve_penalized(op, np.full(op.shape[0], np.nan), 1.0)
    with pytest.raises(ValueError, match="boundary"):
        tc.Gradient((1, 4), "dirichlet")


@pytest.mark.parametrize("mode", ["circular", "replicate", "reflect", "zeros"])
def test_the_prox_is_the_dense_proximal_step(mode):
    op = symmetric_mixing_layer(mode, seed=3)
    a = operator_matrix(op)
    rng = np.random.default_rng(5)
    b, v = rng.standard_normal(op.shape[0]), rng.standard_normal(op.shape[1])
    sigma = 2.0
    f = tc.LeastSquaresProx(op, b, sigma, rtol=1e-13)
    assert isinstance(f, pyproximal.ProxOperator)
    for tau in (0.5, 50.0, 0.5):  # back to the first step: the warm start does not leak in
        expected = np.linalg.solve(
            sigma * a.T @ a + np.eye(a.shape[1]) / tau, sigma * a.T @ b + v / tau
        )
        np.testing.assert_allclose(f.prox(v, tau), expected, atol=1e-9 * np.abs(expected).max())
    assert f.calls == 3
    assert f.exact == (mode in ("circular", "replicate"))
    assert (f.iterations == 0) == f.exact
    x = rng.standard_normal(op.shape[1])
    np.testing.assert_allclose(f.grad(x), sigma * a.T @ (a @ x - b), atol=1e-12)
    assert f(x) == pytest.approx(0.5 * sigma * np.sum((a @ x - b) ** 2), rel=1e-12)
    images = rng.standard_normal((2, *op.input_shape))
    batch = f.prox(images, 0.5)
    for item, image in zip(batch, images):
        np.testing.assert_allclose(item, f.prox(image, 0.5), atol=1e-9)


def test_the_prox_refuses_step_arrays_and_keeps_the_callers_data():
    op = symmetric_mixing_layer("zeros")
    b = np.ones(op.shape[0])
    f = tc.LeastSquaresProx(op, b)
    b[:] = 5.0  # the caller's edit does not reach the prox
    assert f(np.zeros(op.shape[1])) == pytest.approx(0.5 * op.shape[0])
    v = np.ones(op.shape[1])
    with pytest.raises(ValueError, match="tau must be a scalar"):
        f.prox(v, np.full(op.shape[1], 0.1))
    for tau in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="tau must be a finite number > 0"):
            f.prox(v, tau)
    with pytest.raises(ValueError, match="sigma"):
        tc.LeastSquaresProx(op, b, sigma=0.0)
    for name in ("atol", "change_rtol"):
        with pytest.raises(ValueError, match=name):
            tc.LeastSquaresProx(op, b, **{name: -1.0})
    v_before = v.copy()
    f.prox(v, 0.1)
    np.testing.assert_array_equal(v, v_before)


def test_an_absolute_tolerance_stops_the_prox_at_that_residual():
    op = symmetric_mixing_layer("zeros", seed=9)
    a = operator_matrix(op)
    b = np.random.default_rng(9).standard_normal(op.shape[0])
    v, tau = np.zeros(op.shape[1]), 10.0
    tight, loose = (tc.LeastSquaresProx(op, b, rtol=1e-14, atol=atol) for atol in (0.0, 1e-2))
    x_tight, x_loose = tight.prox(v, tau), loose.prox(v, tau)
    normal = a.T @ a + np.eye(a.shape[1]) / tau
    assert np.linalg.norm(normal @ x_loose - a.T @ b) <= 1e-2 * (1 + 1e-9)
    assert loose.iterations < tight.iterations
    np.testing.assert_allclose(normal @ x_tight, a.T @ b, atol=1e-12)


def test_a_loose_prox_inside_pyproximals_admm_converges_as_the_tight_one():
    """ADMM with an L1 penalty: the warm-started prox stopped at change_rtol follows the
    ADMM run whose every prox is solved to 1e-12, in a fraction of the inner iterations."""
    op = symmetric_mixing_layer("zeros", size=(3, 6, 6), seed=6)
    rng = np.random.default_rng(7)
    b = op.matvec(rng.standard_normal(op.shape[1]) * (rng.random(op.shape[1]) < 0.2))

    def admm(iterations, **settings):
        f = tc.LeastSquaresProx(op, b, **settings)
        x = pyproximal.optimization.primal.ADMM(
            f,
            pyproximal.L1(sigma=0.05),
            x0=np.zeros(op.shape[1]),
            tau=1.0,
            niter=iterations,
            show=False,
        )[0]
        return x, f.iterations

    reference, _ = admm(1500, rtol=1e-12)
    tight, tight_steps = admm(500, rtol=1e-12)
    loose, loose_steps = admm(500, rtol=0.1, change_rtol=0.1)
    tight_error = np.abs(tight - reference).max()
    assert np.abs(loose - reference).max() <= 1.2 * tight_error + 1e-9
    assert loose_steps < tight_steps / 5


def _step_layers():
    rng = np.random.default_rng(8)
    for mode in ("circular", "replicate", "reflect", "zeros"):
        yield (
            mode,
            tc.Conv(rng.standard_normal((2, 3, 3, 3)), (3, 6, 5), padding=1, padding_mode=mode),
        )
    yield (
        "circular-dilated-groups",
        tc.Conv(
            rng.standard_normal((4, 1, 3, 3)),
            (2, 6, 5),
            padding=2,
            dilation=2,
            groups=2,
            padding_mode="circular",
        ),
    )
    yield "replicate-1x1", tc.Conv(rng.standard_normal((2, 2, 1)), (2, 7), padding_mode="replicate")
    yield (
        "circular-stride2",
        tc.Conv(
            rng.standard_normal((2, 2, 3)), (2, 8), stride=2, padding=1, padding_mode="circular"
        ),
    )
    yield "transpose", tc.ConvTranspose(rng.standard_normal((2, 2, 3)), (2, 5), stride=2, padding=1)


STEP_LAYERS = list(_step_layers())


@pytest.mark.parametrize("name, op", STEP_LAYERS, ids=[n for n, _ in STEP_LAYERS])
def test_the_stacked_bracket_holds_the_dense_norm(name, op):
    boundary = "periodic" if op.geometry.padding_mode == "circular" else "neumann"
    for rho in (0.7, 1e-4):
        stacked = np.vstack(
            [operator_matrix(op), np.sqrt(rho) * difference_matrix(op.input_shape, boundary)]
        )
        truth = np.linalg.norm(stacked, 2)
        bounds = tc.tv_norm_bounds(op, rho)
        assert bounds.lower <= truth <= bounds.upper, (bounds, truth)
        if name.startswith(("circular", "replicate")) and "stride" not in name:
            assert bounds.relative_width <= 1e-6  # one layer, proven to rtol
    assert tc.tv_norm_bounds(op, 0.0).upper == tc.norm_bounds(op).upper
    difference = difference_matrix(op.input_shape, boundary)
    assert tc.solve.steps.gradient_norm(op.input_shape, boundary) == pytest.approx(
        np.linalg.norm(difference, 2), rel=1e-12
    )


def test_the_prox_works_without_pyproximal_and_solve_tv_names_the_extra():
    """pyproximal is an optional extra: the prox class stands alone without it, and
    solve_tv says which extra to install (in a fresh process where it cannot import)."""
    import subprocess
    import sys

    script = """
import sys
sys.modules["pyproximal"] = None  # import pyproximal now raises ImportError
import numpy as np, toeplitz_conv as tc
op = tc.Conv(np.ones((1, 1, 3)) / 3, (1, 8), padding=1, padding_mode="circular")
f = tc.LeastSquaresProx(op, np.ones(8))
assert type(f).__mro__[1] is object
x = f.prox(np.zeros(8), 1.0)
assert np.allclose(op.rmatvec(op.matvec(x) - np.ones(8)) + x, 0)
try:
    tc.solve_tv(op, np.ones(8), 0.1)
except ImportError as error:
    print(error)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 'pip install "toeplitz-conv[prox]"' in done.stdout


@pytest.mark.parametrize("mode", ["circular", "replicate", "reflect"])
def test_each_penalty_has_its_own_inverse_on_one_layer(mode):
    """The layer keeps one inverse per (damp, penalty): asked at penalty 0 and then at 0.7
    with the same damp, the second is not the first (dense normal equations; for the
    DCT-I, its bound's ends)."""
    op = symmetric_mixing_layer(mode, seed=11)
    a = operator_matrix(op)
    d = difference_matrix(op.input_shape, "periodic" if mode == "circular" else "neumann")
    form = diagonal_form(op).form
    for penalty in (0.0, 0.7, 0.0):
        inverse = form.normal_inverse(0.3, penalty=penalty)
        matrix = np.stack([inverse(e) for e in np.eye(a.shape[1])], 1)
        normal = a.T @ a + penalty * d.T @ d + 0.09 * np.eye(a.shape[1])
        eigenvalues = np.linalg.eigvals(matrix @ normal).real
        if form.exact:
            np.testing.assert_allclose(eigenvalues, 1.0, atol=1e-10)
        else:
            assert eigenvalues.min() >= 1 - 1e-9 and eigenvalues.max() <= 4 + 1e-9
