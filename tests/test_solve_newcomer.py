"""What a new user hit with the solvers (#34): image layouts, what ran, BLAS threads, and
messages that name what is allowed. The solutions are checked against numpy's dense
least squares."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import operator_matrix, tikhonov_minimiser
from spies import counted

import toeplitz_conv as tc
from toeplitz_conv.solve import iterative


def _blur(mode: str, size=(3, 10, 9)) -> tc.Conv:
    t = np.arange(-1, 2)
    g = np.exp(-(t**2) / 2)
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    weight = np.array([[kernel * (0.8 if i == j else 0.1) for j in range(3)] for i in range(3)])
    return tc.Conv(weight, size, padding=1, padding_mode=mode)


@pytest.mark.parametrize("mode", ["circular", "replicate", "reflect", "zeros"])
def test_an_image_channels_first_gives_x_in_the_layers_input_shape(mode):
    op = _blur(mode)
    rng = np.random.default_rng(0)
    image = rng.random(op.output_shape)
    prior = rng.random(op.input_shape)
    result = tc.solve_tikhonov(op, image, 0.1, x0=prior, rtol=1e-12)
    assert result.x.shape == op.input_shape
    expected = tikhonov_minimiser(operator_matrix(op), image.ravel(), 0.1, prior.ravel())
    np.testing.assert_allclose(result.x.ravel(), expected, rtol=1e-9, atol=1e-10)
    flat = tc.solve_tikhonov(op, image.ravel(), 0.1, x0=prior.ravel(), rtol=1e-12)
    assert flat.x.shape == (op.shape[1],)


@pytest.mark.parametrize("call", ["solve_tikhonov", "choose_damp"])
def test_an_image_channels_last_is_refused_naming_b_and_the_shape_expected(call):
    """A (H, W, C) photograph was read as (C, H, W): -56.7 dB and no word (#34)."""
    op = _blur("reflect", size=(3, 12, 12))
    photo = np.random.default_rng(1).random((12, 12, 3))
    solve = {
        "solve_tikhonov": lambda b: tc.solve_tikhonov(op, b, 0.1),
        "choose_damp": lambda b: tc.choose_damp(op, b),
    }[call]
    with pytest.raises(
        tc.ParameterError, match=r"b must have 432 entries, flat, or shape \(3, 12, 12\)"
    ):
        solve(photo)
    with pytest.raises(tc.ParameterError, match="channels last"):
        solve(photo)
    solve(np.moveaxis(photo, -1, 0))  # channels first: taken


def test_a_prior_of_another_layout_is_refused():
    op = _blur("zeros")
    with pytest.raises(tc.ParameterError, match="x0 must have"):
        tc.solve_tikhonov(op, np.ones(op.shape[0]), 0.1, x0=np.ones((10, 9, 3)))


@pytest.mark.parametrize(
    "mode, choice, method, used",
    [
        ("circular", "auto", "fourier", None),
        ("replicate", "auto", "cosine", None),
        ("reflect", "auto", "pcg", "dct1"),
        ("zeros", "auto", "pcg", None),
        ("zeros", "circulant", "pcg", "circulant"),
        ("zeros", "cosine", "pcg", "cosine"),
        ("zeros", None, "pcg", None),
    ],
)
def test_the_result_says_what_preconditioned_the_solve(mode, choice, method, used):
    op = _blur(mode)
    result = tc.solve_tikhonov(op, np.ones(op.shape[0]), 0.1, preconditioner=choice)
    assert (result.method, result.preconditioner) == (method, used)
    given = tc.preconditioner(op, 0.1, kind="circulant")
    assert tc.solve_tikhonov(
        op, np.ones(op.shape[0]), 0.1, preconditioner=given
    ).preconditioner == ("given" if method == "pcg" else None)


@pytest.mark.parametrize("mode", ["reflect", "zeros"])
def test_every_conjugate_gradient_path_runs_blas_on_one_thread_on_large_layers(monkeypatch, mode):
    """The DCT-I path lacked the guard the plain path had (#34)."""
    entered: list[int] = []
    monkeypatch.setattr(
        iterative, "blas_on_one_thread", counted(iterative.blas_on_one_thread, entered)
    )
    large = _blur(mode, size=(3, 64, 48))  # 9216 unknowns: above BLAS_ONE_THREAD_SIZE
    assert large.shape[1] >= iterative.BLAS_ONE_THREAD_SIZE
    tc.solve_tikhonov(large, np.ones(large.shape[0]), 0.1)
    assert len(entered) == 1
    small = _blur(mode)
    tc.solve_tikhonov(small, np.ones(small.shape[0]), 0.1)
    assert len(entered) == 1


def test_the_guard_is_offered_for_users_own_loops():
    import scipy.sparse.linalg as spla
    from threadpoolctl import threadpool_info

    op = _blur("reflect")
    with tc.blas_on_one_thread():
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
        x = spla.lsqr(op, np.ones(op.shape[0]), damp=0.1, atol=1e-12, btol=1e-12)[0]
    expected = tikhonov_minimiser(operator_matrix(op), np.ones(op.shape[0]), 0.1, 0 * x)
    np.testing.assert_allclose(x, expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("method", [np.array(["pcg"]), ["pcg"], b"pcg"])
def test_a_method_that_is_not_a_string_is_refused(method):
    op = _blur("zeros")
    with pytest.raises(tc.ParameterError, match="method must be one of"):
        tc.solve_tikhonov(op, np.ones(op.shape[0]), 0.1, method=method)


@pytest.mark.parametrize("damp", [-1, 0, 0.0, float("inf")])
def test_the_preconditioner_asks_for_a_positive_damp(damp):
    """-1 was answered 'must be >= 0', where 0 is refused too (#34)."""
    with pytest.raises(tc.ParameterError, match="damp must be a finite number > 0"):
        tc.preconditioner(_blur("zeros"), damp)


@pytest.mark.parametrize("mode", ["circular", "replicate"])
def test_an_exact_solve_over_budget_names_the_matrix_free_way(mode):
    """The refusal suggested every way but method='pcg', which works (#34)."""
    op = _blur(mode, size=(3, 12, 12))
    b = np.ones(op.shape[0])
    with pytest.raises(tc.MatrixTooLargeError, match="method='pcg'"):
        tc.solve_tikhonov(op, b, 0.1, max_bytes=10**4)
    result = tc.solve_tikhonov(op, b, 0.1, max_bytes=10**4, method="pcg", rtol=1e-12)
    expected = tikhonov_minimiser(operator_matrix(op), b, 0.1, np.zeros(op.shape[1]))
    np.testing.assert_allclose(result.x, expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("mode", ["circular", "reflect", "zeros"])
def test_auto_means_the_layers_own_form_in_both_places(mode):
    """#31: "auto" is the layer's diagonal form where it has one, in tc.preconditioner and
    in solve_tikhonov alike; only the fallback differs (circulant there, none here)."""
    op = tc.Conv(
        np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0])[None, None] / 16,
        (1, 8, 8),
        padding=1,
        padding_mode=mode,
    )
    a = operator_matrix(op)
    normal = a.T @ a + 0.01 * np.eye(a.shape[1])
    b = np.random.default_rng(3).standard_normal(op.shape[0])
    has_form = mode != "zeros"
    auto = tc.preconditioner(op, 0.1) @ np.eye(op.shape[1])
    if has_form:  # the same matrix as kind="form"
        np.testing.assert_allclose(auto, tc.preconditioner(op, 0.1, kind="form") @ np.eye(64))
    else:
        with pytest.raises(ValueError, match="kind='form'.*no diagonal form"):
            tc.preconditioner(op, 0.1, kind="form")
        np.testing.assert_allclose(auto, tc.preconditioner(op, 0.1, kind="circulant") @ np.eye(64))
    result = tc.solve_tikhonov(op, b, 0.1, method="pcg", rtol=1e-12)
    assert result.preconditioner == {"circular": "dft", "reflect": "dct1", "zeros": None}[mode]
    np.testing.assert_allclose(result.x, np.linalg.solve(normal, a.T @ b), rtol=1e-9, atol=1e-10)
    if mode == "circular":  # the exact inverse: one iteration
        np.testing.assert_allclose(auto, np.linalg.inv(normal), rtol=1e-9, atol=1e-12)
        assert result.iterations <= 2
    if not has_form:
        with pytest.raises(ValueError, match="preconditioner='form'.*no diagonal form"):
            tc.solve_tikhonov(op, b, 0.1, method="pcg", preconditioner="form")


def _smooth_blur_problem(n: int, size: int, seed: int):
    t = np.arange(size) - size // 2
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * 1.2**2))
    mixing = np.full((3, 3), 0.12) + 0.64 * np.eye(3)
    op = tc.Conv(mixing[:, :, None, None] * g / g.sum(), (3, n, n), padding=size // 2)
    yy, xx = np.mgrid[0:n, 0:n] / n
    truth = np.stack([np.sin(3 * xx + c) * np.cos(2 * yy) + 0.5 for c in range(3)]).ravel()
    a = operator_matrix(op)
    b = a @ truth + 0.02 * np.random.default_rng(seed).standard_normal(a.shape[0])
    return op, a, b


@pytest.mark.parametrize("n, size", [(16, 5), (14, 7)])
def test_the_damp_rules_of_a_zero_padded_layer_use_its_own_residual(n, size):
    """#32: on zero padding the rules worked on the circulant counterpart, whose boundary
    rows count as misfit (GCV chose a damp 10 times too small on a photograph). The
    residual now comes from the layer (Krylov), the trace from the counterpart."""
    op, a, b = _smooth_blur_problem(n, size, seed=n)
    u, s, _ = np.linalg.svd(a)
    c = np.abs(u.T @ b) ** 2
    s = np.concatenate([s, np.zeros(a.shape[0] - s.size)])

    def gcv(d):
        filt = d**2 / (s**2 + d**2)
        return np.sum(filt**2 * c) / np.sum(filt) ** 2

    best = min(gcv(d) for d in np.logspace(-4, 0, 2000))
    assert gcv(tc.choose_damp(op, b)) <= 1.05 * best
    damp = tc.choose_damp(op, b, rule="discrepancy", noise_std=0.02)
    x = np.linalg.solve(a.T @ a + damp**2 * np.eye(a.shape[1]), a.T @ b)
    assert np.linalg.norm(a @ x - b) == pytest.approx(0.02 * np.sqrt(a.shape[0]), rel=1e-3)
