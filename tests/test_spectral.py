"""Singular values and spectral norms against numpy's dense SVD of the layer's matrix."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from oracles import dense_matrix
from strategies import circular_fft_layers, examples, layer_cases

import toeplitz_conv as tc
from toeplitz_conv.spectra.spectral import fft_applicable


def _dense_singular_values(op):
    return np.linalg.svd(op.todense(), compute_uv=False)


@settings(max_examples=examples(120), deadline=None)
@given(case=layer_cases())
def test_singular_values_equal_dense_svd_for_random_layers(case):
    """Every method against PyTorch's matrix (its conv on unit vectors), not our own."""
    op = tc.Conv(case.weight, case.input_shape, **case.kwargs())
    expected = np.linalg.svd(
        dense_matrix(case.weight, case.input_shape, **case.oracle_kwargs()), compute_uv=False
    )
    tol = 1e-4 if case.dtype in (np.float32, np.complex64) else 1e-10
    atol = tol * max(1.0, expected[0])
    np.testing.assert_allclose(tc.singular_values(op, method="dense"), expected, atol=atol)
    if fft_applicable(op.geometry):
        np.testing.assert_allclose(tc.singular_values(op, method="fft"), expected, atol=atol)
    k = min(3, min(op.shape) - 1)
    if k >= 1:
        top = tc.singular_values(op, k=k, method="iterative")
        np.testing.assert_allclose(top[0], expected[0], atol=atol, rtol=max(tol, 1e-8))
        assert np.all(top <= expected[0] + atol)
        # single-vector Lanczos finds one copy of a repeated value (in exact arithmetic):
        # the others are compared where the values are apart
        separated = np.abs(np.diff(expected[: k + 1])) > 1e-3 * max(expected[0], 1e-300)
        if separated.all():
            np.testing.assert_allclose(top, expected[:k], atol=atol, rtol=max(tol, 1e-8))
    np.testing.assert_allclose(tc.spectral_norm(op, rtol=1e-12), expected[0], rtol=max(tol, 1e-8))


@settings(max_examples=examples(150), deadline=None)
@given(op=circular_fft_layers())
def test_fft_method_equals_the_matrix_for_circular_padding(op):
    assert fft_applicable(op.geometry)
    expected = _dense_singular_values(op)
    np.testing.assert_allclose(tc.singular_values(op, method="fft"), expected, atol=1e-10)
    np.testing.assert_allclose(tc.singular_values(op.H, method="fft"), expected, atol=1e-10)
    np.testing.assert_allclose(tc.spectral_norm(op), expected[0], rtol=1e-12)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_top_k_by_iterative_method(mode):
    rng = np.random.default_rng(0)
    op = tc.Conv(
        rng.standard_normal((3, 2, 3, 3)), (2, 10, 9), stride=(1, 2), padding=1, padding_mode=mode
    )
    weight = op.weight
    oracle = dict(stride=(1, 2), pads=((1, 1), (1, 1)), dilation=(1, 1), groups=1, mode=mode)
    expected = np.linalg.svd(dense_matrix(weight, (2, 10, 9), **oracle), compute_uv=False)
    np.testing.assert_allclose(
        tc.singular_values(op, k=5, method="iterative"), expected[:5], rtol=1e-8
    )
    np.testing.assert_allclose(tc.singular_values(op, k=5), expected[:5], rtol=1e-10)


def test_spectral_norm_of_a_torch_layer_is_not_torch_spectral_norm_sigma():
    """PyTorch's spectral_norm normalises the reshaped weight, not the conv operator."""
    torch.manual_seed(0)
    module = torch.nn.Conv2d(4, 4, 3, padding=1, bias=False).double()
    op = tc.from_torch(module, (4, 8, 8))
    exact = tc.spectral_norm(op, rtol=1e-12)
    np.testing.assert_allclose(exact, _dense_singular_values(op)[0], rtol=1e-8)
    reshaped = np.linalg.norm(module.weight.detach().numpy().reshape(4, -1), 2)
    assert abs(exact - reshaped) > 1e-3 * exact


def test_errors():
    op = tc.Conv(np.ones((2, 2, 3)), (2, 8), padding=1)
    with pytest.raises(ValueError, match="k must be an int between 1 and"):
        tc.singular_values(op, k=0)
    with pytest.raises(ValueError, match="method must be one of"):
        tc.singular_values(op, method="qr")
    with pytest.raises(ValueError, match="method='fft' needs padding_mode='circular'"):
        tc.singular_values(op, method="fft")
    with pytest.raises(ValueError, match="iterative method needs k <"):
        tc.singular_values(op, method="iterative")
    with pytest.raises(ValueError, match=r"rtol must be in \(0, 1\)"):
        tc.spectral_norm(op, rtol=0)
    with pytest.raises(TypeError, match="op must be a linear operator"):
        tc.spectral_norm({"shape": (3, 3)})
    big = tc.Conv(np.ones((64, 64, 3, 3)), (64, 32, 32), padding=1)
    with pytest.raises(tc.MatrixTooLargeError, match="pass k for the top k"):
        tc.singular_values(big)


@pytest.mark.parametrize("mode", ["circular", "zeros"])
@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda op: tc.spectral_norm(op, rtol="1e-8"), TypeError, "rtol must be a real number"),
        (lambda op: tc.spectral_norm(op, rtol=None), TypeError, "rtol must be a real number"),
        (lambda op: tc.spectral_norm(op, rtol=True), TypeError, "rtol must be a real number"),
        (lambda op: tc.spectral_norm(op, rtol=math.inf), ValueError, "rtol must be in"),
        (lambda op: tc.spectral_norm(op, rtol=2.0), ValueError, "rtol must be in"),
        (lambda op: tc.spectral_norm(op, max_bytes=-1), ValueError, "max_bytes"),
        (lambda op: tc.spectral_norm(op, max_bytes="1G"), TypeError, "max_bytes"),
        (lambda op: tc.singular_values(op, tol="0"), TypeError, "tol must be a real number"),
        (lambda op: tc.singular_values(op, tol=math.nan), ValueError, "tol must be in"),
        (lambda op: tc.singular_values(op, tol=-1e-3), ValueError, "tol must be in"),
        (lambda op: tc.singular_values(op, max_bytes=0), ValueError, "max_bytes"),
    ],
)
def test_every_path_refuses_bad_tolerances_and_budgets_by_name(mode, call, error, match):
    op = tc.Conv(np.ones((2, 2, 3, 3)), (2, 12, 12), padding=1, padding_mode=mode)
    with pytest.raises(error, match=match):
        call(op)


def test_k_may_be_a_numpy_integer():
    op = tc.Conv(np.arange(18.0).reshape(2, 1, 3, 3), (1, 8, 8), padding=1)
    np.testing.assert_array_equal(tc.singular_values(op, k=np.int64(3)), tc.singular_values(op)[:3])


def test_spectral_norm_of_a_shift_invariant_layer_whose_top_singular_vector_is_not_constant():
    """Regression: a constant start vector only explores the zero-frequency subspace.

    (With it, Lanczos returned 8.503 here instead of 9.563.)
    """
    from toeplitz_conv.spectra.spectral import SMALL_DENSE

    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 1, 3, 4)) + 1j * rng.standard_normal((6, 1, 3, 4))
    op = tc.Conv(w, (2, 12, 9), stride=2, padding="same", groups=2, padding_mode="circular")
    assert not fft_applicable(op.geometry)  # so the iterative method runs
    assert min(op.shape) > SMALL_DENSE  # and Lanczos, not the dense shortcut
    expected = np.linalg.svd(op.todense(), compute_uv=False)[0]
    assert tc.spectral_norm(op, rtol=1e-12) == pytest.approx(expected, rel=1e-10)


def test_spectral_norm_of_a_tiny_mostly_padding_layer():
    """Regression: eigsh on a 3x3 Gram matrix failed ('starting vector is zero')."""
    for stride, expected in (((1, 2, 1), 0.0), ((1, 1, 1), 0.125)):
        # with stride 2 along the size-1 axis every output reads padding: A = 0
        op = tc.Conv(np.full((1, 1, 1, 1, 1), 0.125), (1, 1, 1, 3), stride=stride, padding=1)
        assert _dense_singular_values(op)[0] == pytest.approx(expected, abs=1e-15)
        assert tc.spectral_norm(op) == pytest.approx(expected, abs=1e-15)


def test_spectral_norm_of_a_rank_deficient_layer():
    """A rank-1 channel mixing: 36 of 108 singular values are non-zero, the top one found."""
    rng = np.random.default_rng(1)
    a, b, k = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal((3, 3))
    op = tc.Conv(a[:, None, None, None] * b[None, :, None, None] * k, (3, 6, 6), padding=1)
    values = _dense_singular_values(op)
    assert np.sum(values > 1e-10 * values[0]) == 36 and values[0] > 1  # rank-deficient, not 0
    assert tc.spectral_norm(op, rtol=1e-12) == pytest.approx(values[0], rel=1e-9)


@pytest.mark.parametrize("shape", [(3, 6, 6), (3, 40, 40)])
def test_spectral_norm_when_arpack_fails_falls_back_to_a_right_answer(monkeypatch, shape):
    """Regression: ARPACK error -9 once Lanczos spans the range of a rank-deficient Gram
    (raised here by an ARPACK that always fails): the dense SVD, or power iteration past
    the dense limit, answers instead."""
    import scipy.sparse.linalg as spla

    def failing(*args, **kwargs):
        raise spla.ArpackError(-9)

    rng = np.random.default_rng(2)
    op = tc.Conv(rng.standard_normal((3, 3, 3, 3)), shape, padding=1)
    expected = tc.spectral_norm(op, rtol=1e-12)
    monkeypatch.setattr(spla, "eigsh", failing)
    assert expected > 1
    assert tc.spectral_norm(op, rtol=1e-9) == pytest.approx(expected, rel=1e-5)


def test_power_iteration_fallback():
    from toeplitz_conv.spectra.spectral import _power_iteration

    matrix = np.diag([3.0, 1.0, 0.5])
    assert _power_iteration(lambda v: matrix @ v, np.ones(3), 1e-12) == pytest.approx(3.0)
    with pytest.raises(RuntimeError, match="did not reach"):
        _power_iteration(lambda v: matrix @ v, np.ones(3), 1e-15, max_iterations=3)


@pytest.mark.parametrize("shape", [(30, 50), (50, 30), (200, 150), (150, 220)])
def test_spectral_norm_of_any_linear_operator_equals_the_dense_norm(shape):
    import pylops

    matrix = np.random.default_rng(sum(shape)).standard_normal(shape)
    expected = np.linalg.norm(matrix, 2)
    for linear in (matrix, pylops.MatrixMult(matrix), 0.5 * (2 * pylops.MatrixMult(matrix))):
        assert tc.spectral_norm(linear, rtol=1e-10) == pytest.approx(expected, rel=1e-8)


def test_spectral_norm_of_a_composition_of_layers():
    rng = np.random.default_rng(4)
    first = tc.Conv(rng.standard_normal((3, 2, 3, 3)), (2, 10, 9), padding=1)
    second = tc.Conv(
        rng.standard_normal((2, 3, 3, 3)), (3, 10, 9), padding=1, padding_mode="reflect"
    )
    chain = second @ first
    dense = second.todense() @ first.todense()
    assert tc.spectral_norm(chain, rtol=1e-10) == pytest.approx(np.linalg.norm(dense, 2), rel=1e-8)


def test_iterative_top_values_of_a_complex_layer_up_to_all_but_one():
    """ARPACK's complex solver needs k < n - 1: larger k falls back to the dense SVD."""
    rng = np.random.default_rng(7)
    w = rng.standard_normal((1, 1, 2)) + 1j * rng.standard_normal((1, 1, 2))
    op = tc.Conv(w, (1, 4), padding=1)  # 5 x 4: four singular values
    expected = np.linalg.svd(op.todense(), compute_uv=False)
    for k in (1, 2, 3):
        np.testing.assert_allclose(
            tc.singular_values(op, k=k, method="iterative"), expected[:k], rtol=1e-8
        )


@settings(max_examples=examples(30), deadline=None)
@given(op=circular_fft_layers())
def test_half_frequency_matrices_are_the_full_ones_up_to_half_the_last_axis(op):
    from toeplitz_conv.spectra import frequency_matrices

    g = op.geometry
    weight = np.asarray(op.weight).real.copy()
    full = frequency_matrices(g, weight)
    half = frequency_matrices(g, weight, half=True)
    coarse = [n // s for n, s in zip(g.input_spatial, g.stride)]
    grid = full.reshape(full.shape[0], *coarse, *full.shape[2:])
    kept = grid[(slice(None),) * len(coarse) + (slice(0, coarse[-1] // 2 + 1),)]
    np.testing.assert_allclose(half, kept.reshape(half.shape), atol=1e-12)
    with pytest.raises(ValueError, match="half=True needs a real weight"):
        frequency_matrices(g, weight + 1j, half=True)
