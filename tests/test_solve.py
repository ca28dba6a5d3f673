"""solve_tikhonov against numpy's solve of the dense normal equations, the matrix being
PyTorch's (its conv on unit vectors)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import dense_gcv, operator_matrix, tikhonov_minimiser
from strategies import circular_fft_layers, cross_channel_gaussian, examples

import toeplitz_conv as tc

# (weight shape, input shape, kwargs, transposed, complex): circular, stride dividing
FOURIER_CASES = [
    ((3, 2, 3, 3), (2, 6, 6), dict(padding=1), False, False),
    ((4, 1, 3, 3), (2, 8, 6), dict(padding=1, stride=2, groups=2), False, False),
    ((2, 3, 5), (3, 12), dict(padding=((2, 4),), stride=3, dilation=2), False, True),
    (
        (2, 2, 2, 3, 3),
        (2, 4, 4, 6),
        dict(padding=((0, 1), (1, 1), (1, 1)), stride=(2, 1, 2)),
        False,
        False,
    ),
    ((6, 1, 3, 3), (6, 6, 6), dict(padding=1, groups=6), False, True),  # depthwise
    ((2, 3, 4, 4), (2, 4, 4), dict(padding=1, stride=2), True, False),  # conv-transpose
    ((4, 1, 3), (4, 5), dict(padding=1, groups=2), True, True),
]


def _layer(weight_shape, input_shape, kwargs, transposed, complex_, seed=0):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal(weight_shape)
    if complex_:
        weight = weight + 1j * rng.standard_normal(weight_shape)
    cls = tc.ConvTranspose if transposed else tc.Conv
    return cls(weight, input_shape, padding_mode="circular", **kwargs)


def _random(rng, n, complex_):
    v = rng.standard_normal(n)
    return v + 1j * rng.standard_normal(n) if complex_ else v


@pytest.mark.parametrize("case", FOURIER_CASES, ids=lambda c: f"{c[0]}-{c[3]}")
@pytest.mark.parametrize("damp", [1e-3, 0.3])
def test_the_fourier_solve_is_exact(case, damp):
    op = _layer(*case)
    a = operator_matrix(op)
    rng = np.random.default_rng(1)
    b, x0 = _random(rng, a.shape[0], case[4]), _random(rng, a.shape[1], case[4])
    for prior in (None, x0):
        result = tc.solve_tikhonov(op, b, damp, x0=prior)
        expected = tikhonov_minimiser(a, b, damp, np.zeros(a.shape[1]) if prior is None else x0)
        assert result.method == "fourier" and result.exact and result.converged
        assert result.iterations == 0
        error = np.linalg.norm(result.x - expected) / np.linalg.norm(expected)
        assert error <= 1e-10, error
        assert result.residual_norm == pytest.approx(np.linalg.norm(a @ result.x - b), rel=1e-9)
        assert np.iscomplexobj(result.x) == case[4]


@pytest.mark.parametrize("case", FOURIER_CASES[:4], ids=lambda c: f"{c[0]}")
def test_damp_zero_gives_the_minimum_norm_least_squares_solution(case):
    op = _layer(*case)
    a = operator_matrix(op)
    b = _random(np.random.default_rng(2), a.shape[0], case[4])
    expected = np.linalg.lstsq(a, b, rcond=None)[0]  # minimum norm
    result = tc.solve_tikhonov(op, b, 0.0)
    assert np.linalg.norm(result.x - expected) <= 1e-9 * np.linalg.norm(expected)


@pytest.mark.parametrize(
    "mode, kwargs",
    [
        ("zeros", dict(padding=1)),
        ("reflect", dict(padding=1, stride=2)),
        ("replicate", dict(padding=2, dilation=2)),
        ("circular", dict(padding=1, stride=(1, 2))),
    ],
)
def test_conjugate_gradients_reach_rtol_on_every_other_layer(mode, kwargs):
    rng = np.random.default_rng(3)
    op = tc.Conv(rng.standard_normal((3, 2, 3, 3)), (2, 7, 9), padding_mode=mode, **kwargs)
    if mode == "circular":
        assert not tc.solve.fourier.fourier_applicable(op)  # stride 2 does not divide 9
    a = op.todense()
    np.testing.assert_allclose(a, operator_matrix(op), atol=1e-12)
    b = rng.standard_normal(a.shape[0])
    rtol = 1e-10
    result = tc.solve_tikhonov(op, b, 0.05, rtol=rtol)
    expected = tikhonov_minimiser(a, b, 0.05, np.zeros(a.shape[1]))
    assert result.method == "pcg" and not result.exact and result.converged
    assert result.iterations > 0
    # the normal equations' relative residual is rtol: the error, times their condition
    gram = a.T @ a + 0.05**2 * np.eye(a.shape[1])
    bound = 10 * rtol * np.linalg.cond(gram)
    assert np.linalg.norm(result.x - expected) <= bound * np.linalg.norm(expected)


def test_a_bias_is_subtracted_from_the_data_by_the_caller():
    rng = np.random.default_rng(4)
    op = tc.Conv(
        rng.standard_normal((2, 2, 3, 3)),
        (2, 6, 6),
        padding=1,
        padding_mode="circular",
        bias=np.array([1.0, -2.0]),
    )
    truth = rng.standard_normal(op.shape[1])
    data = op.apply(truth.reshape(1, *op.input_shape)).ravel()
    offset = op.apply(np.zeros((1, *op.input_shape))).ravel()
    x = tc.solve_tikhonov(op, data - offset, 1e-9).x
    np.testing.assert_allclose(x, truth, atol=1e-6)


def test_an_unconverged_solve_returns_its_iterate_with_a_warning():
    rng = np.random.default_rng(5)
    op = tc.Conv(rng.standard_normal((2, 2, 3, 3)), (2, 9, 9), padding=1)
    b = rng.standard_normal(op.shape[0])
    with pytest.warns(RuntimeWarning, match="did not reach"):
        result = tc.solve_tikhonov(op, b, 1e-4, maxiter=2, rtol=1e-12)
    assert not result.converged and result.iterations == 2 and np.all(np.isfinite(result.x))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(damp=-1.0), ValueError, "damp"),
        (dict(damp=math.nan), ValueError, "damp"),
        (dict(damp=math.inf), ValueError, "damp"),
        (dict(damp="1"), TypeError, "damp"),
        (dict(damp=True), TypeError, "damp"),
        (dict(damp=0.1, rtol=0.0), ValueError, "rtol"),
        (dict(damp=0.1, rtol=2.0), ValueError, "rtol"),
        (dict(damp=0.1, maxiter=0), ValueError, "maxiter"),
        (dict(damp=0.1, maxiter=2.5), ValueError, "maxiter"),
        (dict(damp=0.1, method="qr"), ValueError, "method must be one of"),
        (dict(damp=0.1, method="fourier"), ValueError, "not circular"),
        (dict(damp=0.1, b=np.ones(5)), ValueError, "b must have"),
        (dict(damp=0.1, b=np.full(72, np.nan)), ValueError, "b must be finite"),
        (dict(damp=0.1, x0=np.ones(3)), ValueError, "x0 must have"),
    ],
)
def test_bad_input_is_refused_by_name(kwargs, error, match):
    op = tc.Conv(np.ones((2, 2, 3, 3)), (2, 6, 6), padding=1)
    b = kwargs.pop("b", np.ones(op.shape[0]))
    damp = kwargs.pop("damp")
    with pytest.raises(error, match=match):
        tc.solve_tikhonov(op, b, damp, **kwargs)
    with pytest.raises(TypeError, match="op must be"):
        tc.solve_tikhonov(np.eye(3), np.ones(3), 0.1)


@pytest.mark.parametrize("mode", ["circular", "replicate", "zeros"])
@pytest.mark.parametrize(
    "max_bytes, error", [(-1, ValueError), (0, ValueError), ("1G", TypeError), (2.0, TypeError)]
)
def test_a_bad_max_bytes_is_refused_even_when_the_factors_are_cached(mode, max_bytes, error):
    op = tc.Conv(np.ones((2, 2, 3, 3)), (2, 6, 6), padding=1, padding_mode=mode)
    b = np.ones(op.shape[0])
    tc.solve_tikhonov(op, b, 0.1, preconditioner="circulant" if mode == "zeros" else "auto")
    with pytest.raises(error, match="max_bytes"):
        tc.solve_tikhonov(op, b, 0.1, max_bytes=max_bytes)
    tc.preconditioner(op, 0.1)
    with pytest.raises(error, match="max_bytes"):
        tc.preconditioner(op, 0.1, max_bytes=max_bytes)


def test_the_circulant_preconditioner_is_spd_and_exact_for_circular_layers():
    for mode in ("circular", "zeros"):
        op = cross_channel_gaussian(mode)
        m = tc.preconditioner(op, 0.05)
        dense = m @ np.eye(op.shape[1])
        np.testing.assert_allclose(dense, dense.T, atol=1e-12)
        assert np.linalg.eigvalsh((dense + dense.T) / 2).min() > 0
        if mode == "circular":
            a = operator_matrix(op)
            normal = a.T @ a + 0.05**2 * np.eye(op.shape[1])
            np.testing.assert_allclose(dense @ normal, np.eye(op.shape[1]), atol=1e-9)


def test_the_preconditioner_refuses_what_it_cannot_build():
    op = cross_channel_gaussian("zeros")
    for damp in (0.0, -1.0, "1"):
        with pytest.raises((ValueError, TypeError), match="damp"):
            tc.preconditioner(op, damp)
    odd = tc.Conv(np.ones((1, 1, 3)), (1, 7), stride=2, padding=1)
    with pytest.raises(ValueError, match="kind='cosine' does not apply.*stride 2"):
        tc.preconditioner(odd, 0.1, kind="cosine")
    with pytest.raises(ValueError, match="no circulant counterpart"):
        tc.preconditioner(odd, 0.1)
    with pytest.raises(TypeError, match="op must be"):
        tc.preconditioner(np.eye(3), 0.1)


@pytest.mark.parametrize("case", FOURIER_CASES[:3] + FOURIER_CASES[5:], ids=lambda c: f"{c[0]}")
def test_gcv_chooses_the_minimum_of_the_dense_gcv_function(case):
    op = _layer(*case)
    a = operator_matrix(op)
    rng = np.random.default_rng(7)
    truth = _random(rng, a.shape[1], case[4])
    b = a @ truth + 0.05 * _random(rng, a.shape[0], case[4])
    damp = tc.choose_damp(op, b)
    grid = np.logspace(-8, 0, 400) * np.linalg.norm(a, 2)
    best = min(dense_gcv(a, b, d) for d in grid)
    assert dense_gcv(a, b, damp) <= best * (1 + 1e-6)


@pytest.mark.parametrize("case", FOURIER_CASES[:3], ids=lambda c: f"{c[0]}")
def test_the_discrepancy_rule_meets_its_equation(case):
    op = _layer(*case)
    a = operator_matrix(op)
    rng = np.random.default_rng(8)
    noise = 0.05
    b = a @ _random(rng, a.shape[1], case[4]) + noise * _random(rng, a.shape[0], case[4])
    damp = tc.choose_damp(op, b, rule="discrepancy", noise_std=noise)
    x = tikhonov_minimiser(a, b, damp, np.zeros(a.shape[1]))
    target = noise * np.sqrt(a.shape[0])
    assert np.linalg.norm(a @ x - b) == pytest.approx(target, rel=1e-3)


def test_choose_damp_refuses_bad_input():
    op = _layer(*FOURIER_CASES[0])
    b = np.ones(op.shape[0])
    with pytest.raises(ValueError, match="rule"):
        tc.choose_damp(op, b, rule="l-curve")
    with pytest.raises(ValueError, match="noise_std"):
        tc.choose_damp(op, b, rule="discrepancy")
    with pytest.raises(ValueError, match="noise_std"):
        tc.choose_damp(op, b, rule="discrepancy", noise_std=-1.0)
    with pytest.raises(ValueError, match="b must have"):
        tc.choose_damp(op, np.ones(3))
    with pytest.raises(ValueError, match="b is zero"):
        tc.choose_damp(op, np.zeros(op.shape[0]))


@pytest.mark.parametrize("rule", ["gcv", "discrepancy"])
@pytest.mark.parametrize("noise_std, error", [("0.1", TypeError), (math.nan, ValueError)])
def test_choose_damp_checks_noise_std_before_it_builds_the_spectra(
    rule, noise_std, error, monkeypatch
):
    from toeplitz_conv.solve import parameters

    def no_spectra(*args):
        raise AssertionError("the spectra were built before noise_std was checked")

    monkeypatch.setattr(parameters, "diagonal_form", no_spectra)
    op = _layer(*FOURIER_CASES[0])
    with pytest.raises(error, match="noise_std"):
        tc.choose_damp(op, np.ones(op.shape[0]), rule=rule, noise_std=noise_std)


def _symmetric(rng, shape):
    w = rng.standard_normal(shape)
    for axis in range(2, len(shape)):
        w = w + np.flip(w, axis)
    return w


# (weight shape, input shape, padding, mode, kwargs): symmetric kernels, stride 1
COSINE_CASES = [
    ((3, 2, 3, 3), (2, 5, 6), 1, "replicate", {}),
    ((2, 2, 3), (2, 9), 1, "replicate", {}),
    ((4, 1, 3, 1, 3), (2, 3, 2, 4), (1, 0, 1), "replicate", dict(groups=2)),
    ((3, 2, 3, 3), (2, 5, 6), 1, "reflect", {}),
    ((3, 2, 5, 5), (2, 7, 6), 2, "reflect", {}),
    ((2, 2, 3), (2, 9), 2, "reflect", dict(dilation=2)),
]


def _cosine_layer(case, seed=0):
    weight_shape, input_shape, padding, mode, kwargs = case
    weight = _symmetric(np.random.default_rng(seed), weight_shape)
    return tc.Conv(weight, input_shape, padding=padding, padding_mode=mode, **kwargs)


@pytest.mark.parametrize("case", COSINE_CASES, ids=lambda c: f"{c[3]}-{c[0]}")
def test_the_cosine_forms_diagonalise_or_bound_the_normal_equations(case):
    from toeplitz_conv.solve.cosine import cosine_class

    op = _cosine_layer(case)
    a = operator_matrix(op)
    damp = 0.1
    normal = a.T @ a + damp**2 * np.eye(a.shape[1])
    m = tc.preconditioner(op, damp, kind="cosine") @ np.eye(a.shape[1])
    eigenvalues = np.linalg.eigvals(m @ normal).real
    axes = sum(n > 1 for n in op.input_shape[1:])
    kind, _ = cosine_class(op)
    if kind == "dct2":  # the exact inverse
        np.testing.assert_allclose(eigenvalues, 1.0, atol=1e-10)
    else:  # P <= A^T A + d^2 I <= 2^axes P
        assert eigenvalues.min() >= 1 - 1e-10 and eigenvalues.max() <= 2**axes + 1e-10


@pytest.mark.parametrize("case", COSINE_CASES[:3], ids=lambda c: f"{c[0]}")
@pytest.mark.parametrize("damp", [0.0, 1e-3, 0.3])
def test_the_cosine_solve_is_exact_for_replicate_pads_of_one(case, damp):
    op = _cosine_layer(case)
    a = operator_matrix(op)
    rng = np.random.default_rng(9)
    b, x0 = rng.standard_normal(a.shape[0]), rng.standard_normal(a.shape[1])
    result = tc.solve_tikhonov(op, b, damp, x0=x0 if damp else None)
    assert result.method == "cosine" and result.exact
    if damp:
        expected = tikhonov_minimiser(a, b, damp, x0)
    else:
        expected = np.linalg.lstsq(a, b, rcond=None)[0]
    assert np.linalg.norm(result.x - expected) <= 1e-10 * np.linalg.norm(expected)
    # the residual (from the spectra where damp > 0) is the dense matrix's
    assert result.residual_norm == pytest.approx(np.linalg.norm(a @ result.x - b), rel=1e-9)


def test_reflect_layers_converge_in_few_preconditioned_iterations():
    t = np.arange(-3, 4)
    g = np.exp(-(t**2) / 4)
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    weight = np.array([[kernel * (0.8 if i == j else 0.1) for j in range(3)] for i in range(3)])
    op = tc.Conv(weight, (3, 32, 32), padding=3, padding_mode="reflect")
    b = op @ np.random.default_rng(10).standard_normal(op.shape[1])
    for damp in (1e-1, 1e-2, 1e-3):
        result = tc.solve_tikhonov(op, b, damp, rtol=1e-8)
        assert result.method == "pcg" and result.converged
        assert result.iterations <= 20, (damp, result.iterations)  # condition number <= 4


@pytest.mark.parametrize(
    "weight, kwargs, why",
    [
        (
            np.arange(9.0).reshape(1, 1, 3, 3),
            dict(padding=1, padding_mode="replicate"),
            "h_11 is not symmetric along axis 1",
        ),
        (np.ones((1, 1, 7, 7)), dict(padding=3, padding_mode="replicate"), "replicate pad 3 > 1"),
        (np.ones((1, 1, 3, 3)), dict(padding=1, stride=2, padding_mode="replicate"), "stride 2"),
        (np.ones((1, 1, 3, 3)), dict(padding=1, padding_mode="reflect"), r"not A\^H A"),
        (np.ones((1, 1, 3, 3)), dict(padding=1), "neither replicate nor reflect"),
    ],
)
def test_method_cosine_outside_its_exact_class_says_why(weight, kwargs, why):
    op = tc.Conv(weight, (1, 8, 8), **kwargs)
    with pytest.raises(ValueError, match=why):
        tc.solve_tikhonov(op, np.ones(op.shape[0]), 0.1, method="cosine")


@pytest.mark.parametrize("case", COSINE_CASES, ids=lambda c: f"{c[3]}-{c[0]}")
def test_cosine_coordinates_preserve_the_weighted_norm_and_diagonalise_the_layer(case):
    from toeplitz_conv.solve.cosine import cosine_class, cosine_coordinates
    from toeplitz_conv.solve.dct import dct1_weights

    op = _cosine_layer(case)
    rng = np.random.default_rng(11)
    x = rng.standard_normal(op.shape[1])
    symbols, x_hat = cosine_coordinates(op, x, side="input")
    _, y_hat = cosine_coordinates(op, op @ x)
    np.testing.assert_allclose((symbols @ x_hat[..., None])[..., 0], y_hat, atol=1e-12)
    kind, _ = cosine_class(op)
    spatial = op.input_shape[1:]
    weights = np.ones(spatial) if kind == "dct2" else dct1_weights(spatial)
    weighted = np.sum(np.broadcast_to(weights, op.input_shape).ravel() * x**2)
    assert np.sum(np.abs(x_hat) ** 2) == pytest.approx(weighted, rel=1e-12)


def test_gcv_on_a_reflect_layer_chooses_a_damp_that_recovers_the_image():
    t = np.arange(-3, 4)
    g = np.exp(-(t**2) / 5)
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    op = tc.Conv(kernel[None, None], (1, 48, 40), padding=3, padding_mode="reflect")
    yy, xx = np.mgrid[0:48, 0:40]
    truth = ((yy // 8 + xx // 8) % 2).astype(float)  # a checkerboard: not periodic
    rng = np.random.default_rng(12)
    b = op @ truth.ravel() + 0.01 * rng.standard_normal(op.shape[0])
    damp = tc.choose_damp(op, b)
    errors = {
        d: np.linalg.norm(tc.solve_tikhonov(op, b, d).x - truth.ravel())
        for d in (damp, damp / 10, damp * 10)
    }
    assert errors[damp] < min(errors[damp / 10], errors[damp * 10]), errors


def test_the_factorizations_are_kept_by_the_layer_per_view_and_damp():
    from toeplitz_conv.layers.layer import CACHED_VALUES

    rng = np.random.default_rng(13)
    w = rng.standard_normal((2, 2, 3, 3)) + 1j * rng.standard_normal((2, 2, 3, 3))
    op = tc.Conv(w, (2, 6, 6), padding=1, padding_mode="circular")
    b = rng.standard_normal(op.shape[0]) + 1j * rng.standard_normal(op.shape[0])
    first = tc.solve_tikhonov(op, b, 0.1).x
    np.testing.assert_array_equal(tc.solve_tikhonov(op, b, 0.1).x, first)  # the kept one
    for view in (op.H, op.T, op.H.T):  # one layer, other matrices: other keys
        a = view.todense()
        c = rng.standard_normal(a.shape[0])
        expected = tikhonov_minimiser(a, c, 0.1, np.zeros(a.shape[1]))
        got = tc.solve_tikhonov(view, c, 0.1).x
        assert np.linalg.norm(got - expected) <= 1e-10 * np.linalg.norm(expected)
    for damp in np.linspace(0.2, 0.9, 2 * CACHED_VALUES):
        tc.solve_tikhonov(op, b, damp)
    assert len(op.layer._derived) == CACHED_VALUES  # the oldest are dropped


@settings(max_examples=examples(100), deadline=None)
@given(op=circular_fft_layers(), damp=st.sampled_from([0.0, 1e-2, 0.5]), transposed=st.booleans())
def test_the_fourier_solve_is_exact_on_random_circular_layers(op, damp, transposed):
    """Random dims, groups, strides, dilations, pads and complex weights: hypothesis."""
    view = op.H if transposed else op
    a = view.todense()  # tested against PyTorch's in test_conv; here too where F.pad can
    g = op.geometry
    if all(max(pads) <= n for pads, n in zip(g.pads, g.input_spatial)):
        np.testing.assert_allclose(a, operator_matrix(view), atol=1e-12)
    rng = np.random.default_rng(14)
    b = rng.standard_normal(a.shape[0])
    result = tc.solve_tikhonov(view, b, damp)
    assert result.method == "fourier" and result.exact
    if damp:
        expected = tikhonov_minimiser(a, b, damp, np.zeros(a.shape[1]))
    else:
        expected = np.linalg.lstsq(a, b, rcond=None)[0]
    scale = max(np.linalg.norm(expected), 1e-300)
    conditioning = 1.0 if damp else np.linalg.cond(a)
    assert np.linalg.norm(result.x - expected) <= 1e-10 * conditioning * scale


@pytest.mark.parametrize("shape", [(3, 5, 6), (2, 1), (2, 3, 1, 4), (1, 9), (2, 4, 3, 5)], ids=str)
@pytest.mark.parametrize("complex_", [False, True])
def test_the_dct2_frequencies_are_scipys_orthonormal_dctn_in_reversed_axis_order(shape, complex_):
    import scipy.fft

    from toeplitz_conv.solve.dct import frequency_grid, from_frequencies, to_frequencies

    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if complex_ else 0)
    d = len(shape) - 1
    hat = to_frequencies(x.reshape(-1), shape, 1, "dct2")  # (1, F, C)
    assert frequency_grid(shape, "dct2") == (shape[0], *shape[:0:-1])
    grid = np.transpose(hat, (0, 2, 1)).reshape(frequency_grid(shape, "dct2"))
    expected = scipy.fft.dctn(x, type=2, axes=range(1, d + 1), norm="ortho")
    np.testing.assert_allclose(grid, np.transpose(expected, (0, *range(d, 0, -1))), atol=1e-14)
    assert np.linalg.norm(hat) == pytest.approx(np.linalg.norm(x), rel=1e-14)
    np.testing.assert_allclose(from_frequencies(hat, shape, "dct2"), x.reshape(-1), atol=1e-14)
