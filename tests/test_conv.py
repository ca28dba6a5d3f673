"""Conv operator against PyTorch (forward), autograd (adjoint) and dense numpy."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch
from hypothesis import given, settings
from oracles import assert_close, conv, conv_vjp
from strategies import examples, layer_cases, random_array

import toeplitz_conv as tc


@settings(max_examples=examples(300), deadline=None)
@given(case=layer_cases())
def test_conv_matches_torch_over_random_layers(case):
    op = tc.Conv(case.weight, case.input_shape, **case.kwargs())
    rng = np.random.default_rng(0)
    x = random_array(rng, (2, *case.input_shape), case.dtype)
    expected = conv(x, case.weight, bias=case.bias, **case.oracle_kwargs())
    assert op.output_shape == expected.shape[1:]
    assert op.dims == case.input_shape and op.dimsd == expected.shape[1:]
    scale = float(np.abs(case.weight).sum())
    # the affine layer, batched and unbatched
    assert_close(op.apply(x), expected, case.dtype, scale)
    assert_close(op.apply(x[0]), expected[0], case.dtype, scale)
    # the linear part: matvec, and the explicit matrix
    linear = conv(x, case.weight, **case.oracle_kwargs())
    y = op.matvec(x[0].ravel())
    assert y.dtype == case.dtype
    assert_close(y, linear[0].ravel(), case.dtype, scale)
    assert_close(op.tosparse() @ x[1].ravel(), linear[1].ravel(), case.dtype, scale)
    assert_close(op.matmat(x.reshape(2, -1).T), linear.reshape(2, -1).T, case.dtype, scale)


@settings(max_examples=examples(200), deadline=None)
@given(case=layer_cases())
def test_rmatvec_is_the_autograd_vjp(case):
    op = tc.Conv(case.weight, case.input_shape, **case.kwargs())
    rng = np.random.default_rng(1)
    v = random_array(rng, op.shape[0], case.dtype)
    expected = conv_vjp(v, (1, *case.input_shape), case.weight, **case.oracle_kwargs())
    scale = float(np.abs(case.weight).sum())
    got = op.rmatvec(v)
    assert got.dtype == case.dtype
    assert_close(got, expected.ravel(), case.dtype, scale)
    assert_close(op.H @ v, expected.ravel(), case.dtype, scale)
    V = np.stack([v, 2 * v], axis=1)
    assert_close(op.rmatmat(V)[:, 1], 2 * expected.ravel(), case.dtype, scale)


@settings(max_examples=examples(60), deadline=None)
@given(case=layer_cases(dtypes=(np.float64, np.complex128)))
def test_matrix_equals_dense_matrix_of_torch_conv(case):
    """Every entry of tosparse()/todense() against torch applied to the identity."""
    op = tc.Conv(case.weight, case.input_shape, **case.kwargs())
    n = op.shape[1]
    eye = np.eye(n, dtype=case.dtype).reshape(n, *case.input_shape)
    dense = conv(eye, case.weight, **case.oracle_kwargs()).reshape(n, -1).T
    np.testing.assert_allclose(op.todense(), dense, atol=1e-12)
    A = op.tosparse()
    assert A.has_canonical_format
    np.testing.assert_allclose(A.toarray(), dense, atol=1e-12)


def test_circular_padding_wrapping_more_than_once_matches_numpy_wrap():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((2, 1, 7))
    x = rng.standard_normal((1, 1, 3))
    op = tc.Conv(w, (1, 3), padding=((5, 4),), padding_mode="circular")
    xp = np.pad(x, ((0, 0), (0, 0), (5, 4)), mode="wrap")
    expected = torch.nn.functional.conv1d(torch.tensor(xp), torch.tensor(w)).numpy()
    np.testing.assert_allclose(op.apply(x), expected, atol=1e-12)


@pytest.mark.parametrize("mode", ["zeros", "circular", "reflect", "replicate"])
def test_torch_padding_same_and_modes_via_module(mode):
    """PyTorch's own padding='same' split (total // 2 before) with every padding mode."""
    torch.manual_seed(0)
    module = torch.nn.Conv2d(
        4,
        6,
        (4, 3),
        padding="same",
        dilation=(1, 2),
        groups=2,
        padding_mode=mode,
        dtype=torch.float64,
    )
    x = torch.randn(3, 4, 9, 8, dtype=torch.float64)
    op = tc.Conv(
        module.weight.detach().numpy(),
        (4, 9, 8),
        bias=module.bias.detach().numpy(),
        padding="same",
        dilation=(1, 2),
        groups=2,
        padding_mode=mode,
    )
    np.testing.assert_allclose(op.apply(x.numpy()), module(x).detach().numpy(), atol=1e-12)


def test_a_float32_operator_follows_numpy_result_type_as_scipy_operators_do():
    """float32 data stays float32; float64 or complex data is not narrowed (#34): the
    product is computed in the wider type and equals the float64 matrix's to its rounding."""
    rng = np.random.default_rng(3)
    op = tc.Conv(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), (2, 6, 6), padding=1)
    assert op.dtype == np.float32
    assert op.tosparse().dtype == np.float32
    a = op.tosparse().astype(np.float64)
    single = rng.standard_normal(op.shape[1]).astype(np.float32)
    assert op.matvec(single).dtype == np.float32
    x, y = rng.standard_normal(op.shape[1]), rng.standard_normal(op.shape[0])
    for product, expected in [(op.matvec(x), a @ x), (op.rmatvec(y), a.T @ y), (op @ x, a @ x)]:
        assert product.dtype == np.float64
        np.testing.assert_allclose(product, expected, rtol=1e-12, atol=1e-12)
    assert op.apply(rng.standard_normal((2, 6, 6))).dtype == np.float64
    z = rng.standard_normal(op.shape[1]) * 1j
    assert op.matvec(z).dtype == np.complex128
    assert op.matvec(z.astype(np.complex64)).dtype == np.complex64
    assert op.matvec(x).dtype == spla.aslinearoperator(op.tosparse()).matvec(x).dtype


def test_dtype_argument_overrides_weight_type():
    w = np.arange(18).reshape(1, 2, 3, 3)  # integers become float64 by default
    assert tc.Conv(w, (2, 5, 5)).dtype == np.float64
    assert tc.Conv(w, (2, 5, 5), dtype=np.complex64).dtype == np.complex64
