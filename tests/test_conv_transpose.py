"""ConvTranspose against PyTorch conv_transpose, autograd, and the matrix identity."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from oracles import (
    CONV_T,
    assert_close,
    conv,
    conv_transpose,
    conv_transpose_by_vjp,
    conv_transpose_vjp,
)
from strategies import examples, random_array, transpose_cases

import toeplitz_conv as tc


def _conv_partner(op: tc.ConvTranspose, case) -> tc.Conv:
    """The conv with the same weight whose transpose this layer is, from the public API."""
    return tc.Conv(
        case.weight,
        op.output_shape,
        stride=case.stride,
        padding=case.pads,
        dilation=case.dilation,
        groups=case.groups,
        padding_mode=case.mode,
        dtype=case.dtype,
    )


@settings(max_examples=examples(250), deadline=None)
@given(case=transpose_cases(modes=("zeros",)))
def test_conv_transpose_matches_torch(case):
    op = tc.ConvTranspose(case.weight, case.input_shape, **case.kwargs())
    x = random_array(np.random.default_rng(0), (2, *case.input_shape), case.dtype)
    expected = conv_transpose(x, case.weight, bias=case.bias, **case.oracle_kwargs())
    assert op.output_shape == expected.shape[1:]
    assert op.output_padding == case.output_padding
    scale = float(np.abs(case.weight).sum())
    assert_close(op.apply(x), expected, case.dtype, scale)
    assert_close(op.apply(x[0]), expected[0], case.dtype, scale)
    linear = conv_transpose(x, case.weight, **case.oracle_kwargs())
    assert_close(op.matvec(x[1].ravel()), linear[1].ravel(), case.dtype, scale)
    v = random_array(np.random.default_rng(4), (1, *op.output_shape), case.dtype)
    vjp = conv_transpose_vjp(v, (1, *case.input_shape), case.weight, **case.oracle_kwargs())
    assert_close(op.rmatvec(v.ravel()), vjp.ravel(), case.dtype, scale)
    if all(pb == pa for pb, pa in case.pads):  # torch's own padding argument
        d = case.weight.ndim - 2
        direct = CONV_T[d](
            torch.as_tensor(x),
            torch.as_tensor(case.weight),
            stride=case.stride,
            padding=tuple(pb for pb, _ in case.pads),
            output_padding=case.output_padding,
            dilation=case.dilation,
            groups=case.groups,
        ).numpy()
        assert_close(op.matvec(x[0].ravel()), direct[0].ravel(), case.dtype, scale)


@settings(max_examples=examples(250), deadline=None)
@given(case=transpose_cases())
def test_every_padding_mode_is_the_vjp_of_the_padded_conv(case):
    """ConvTranspose = A^T of the conv with F.pad(mode): the exact adjoint, all modes."""
    op = tc.ConvTranspose(case.weight, case.input_shape, **case.kwargs())
    x = random_array(np.random.default_rng(1), (1, *case.input_shape), case.dtype)
    expected = conv_transpose_by_vjp(x, case.weight, mode=case.mode, **case.oracle_kwargs())
    scale = float(np.abs(case.weight).sum())
    assert_close(op.matvec(x.ravel()), expected.ravel(), case.dtype, scale)
    # rmatvec of the transpose layer is (A^T)^H v = conj(A conj(v)): torch's padded conv
    v = random_array(np.random.default_rng(2), (1, *op.output_shape), case.dtype)
    padded_conv = conv(
        np.conj(v),
        case.weight,
        stride=case.stride,
        pads=case.pads,
        dilation=case.dilation,
        groups=case.groups,
        mode=case.mode,
    )
    crop = (slice(None), slice(None)) + tuple(slice(0, m) for m in op.input_shape[1:])
    assert_close(op.rmatvec(v.ravel()), np.conj(padded_conv[crop]).ravel(), case.dtype, scale)


@settings(max_examples=examples(150), deadline=None)
@given(case=transpose_cases())
def test_matrix_identity_conv_transpose_is_conv_transposed(case):
    op = tc.ConvTranspose(case.weight, case.input_shape, **case.kwargs())
    partner = _conv_partner(op, case)
    A = partner.tosparse()
    if all(o < s for o, s in zip(op.output_padding, case.stride)):
        assert partner.output_shape == op.input_shape
        expected = A.T
    else:
        # output_padding >= stride: the conv has more outputs; keep those this layer reads
        keep = np.zeros(partner.output_shape, dtype=bool)
        keep[(slice(None),) + tuple(slice(0, m) for m in op.input_shape[1:])] = True
        expected = A[keep.ravel()].T
    diff = op.tosparse() - expected
    assert diff.nnz == 0 or np.abs(diff.data).max() == 0.0  # entry for entry


def test_h_and_t_return_the_other_class():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 2, 3, 3)) + 1j * rng.standard_normal((4, 2, 3, 3))
    conv = tc.Conv(w, (2, 9, 8), stride=2, padding=1)
    assert isinstance(conv.H, tc.ConvTranspose) and isinstance(conv.T, tc.ConvTranspose)
    assert isinstance(conv.H.H, tc.Conv)
    assert conv.H.output_shape == conv.input_shape and conv.H.output_padding == (0, 1)
    A = conv.todense()
    np.testing.assert_array_equal(conv.H.todense(), A.conj().T)
    np.testing.assert_array_equal(conv.T.todense(), A.T)
    public = tc.ConvTranspose(w, (4, 5, 4), stride=2, padding=1, output_padding=(0, 1))
    np.testing.assert_array_equal(public.todense(), A.T)
    np.testing.assert_array_equal(public.H.todense(), A.conj())


def test_h_of_a_complex_layer_is_a_view_of_the_same_layer():
    """``op.H`` in a loop shares the layer and its engines; ``op.H.H`` is the layer itself."""
    rng = np.random.default_rng(4)
    w = (rng.standard_normal((3, 2, 3)) + 1j * rng.standard_normal((3, 2, 3))).astype(np.complex64)
    conv = tc.Conv(w, (2, 12), padding=1, engine="sparse")
    A = conv.tosparse()
    y = rng.standard_normal(conv.shape[0]) + 1j * rng.standard_normal(conv.shape[0])
    conv.rmatvec(y)
    engine = conv.layer.engine("sparse")
    adjoint = conv.H
    assert adjoint.layer is conv.layer and adjoint.H.layer is conv.layer
    assert adjoint.conjugated and not adjoint.H.conjugated
    assert adjoint.layer.engine("sparse") is engine  # nothing assembled again
    np.testing.assert_array_equal(adjoint.weight, w.conj())
    np.testing.assert_array_equal(adjoint.tosparse().toarray(), A.toarray().conj().T)
    np.testing.assert_allclose(adjoint @ y, A.toarray().conj().T @ y, rtol=1e-5)
    x = rng.standard_normal(conv.shape[1]) + 1j * rng.standard_normal(conv.shape[1])
    np.testing.assert_allclose(adjoint.H @ x, A.toarray() @ x, rtol=1e-5)



@pytest.mark.parametrize(
    "module, spatial",
    [
        (torch.nn.ConvTranspose1d(3, 4, 5, stride=3, padding=2, output_padding=1), (7,)),
        (
            torch.nn.ConvTranspose2d(
                4, 6, (3, 2), stride=2, groups=2, dilation=(1, 3), output_padding=(1, 2)
            ),
            (5, 4),
        ),
        (torch.nn.ConvTranspose3d(2, 2, 3, stride=2, padding=1, bias=False), (3, 2, 3)),
    ],
)
def test_from_torch_conv_transpose(module, spatial):
    module = module.double()
    x = torch.randn(2, module.in_channels, *spatial, dtype=torch.float64)
    op = tc.from_torch(module, (module.in_channels, *spatial))
    assert isinstance(op, tc.ConvTranspose)
    np.testing.assert_allclose(op.apply(x.numpy()), module(x).detach().numpy(), atol=1e-12)


def test_output_size_resolves_like_torch():
    module = torch.nn.ConvTranspose2d(2, 3, 3, stride=3, padding=1).double()
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    for size in [(10, 13), (12, 15), (1, 3, 11, 14)]:
        op = tc.ConvTranspose(
            module.weight.detach().numpy(),
            (2, 4, 5),
            stride=3,
            padding=1,
            output_size=size,
            bias=module.bias.detach().numpy(),
        )
        expected = module(x, output_size=list(size)).detach().numpy()
        np.testing.assert_allclose(op.apply(x.numpy()), expected, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(stride=2, output_padding=2), r"output_padding must be smaller than max\(stride, "),
        (
            dict(stride=2, output_padding=1, dilation=1, padding=0, output_size=(20, 20)),
            "output_size .* is not reachable",
        ),
        (dict(padding=5), "output size along spatial axis 0 would be"),
        (dict(padding="same"), "padding for conv-transpose must be"),
        (dict(output_size=(9,)), "output_size must have 2 spatial sizes"),
    ],
)
def test_conv_transpose_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        tc.ConvTranspose(np.ones((2, 3, 3, 3)), (2, 4, 4), **kwargs)


def test_conv_transpose_channel_errors():
    with pytest.raises(ValueError, match="C_in = weight.shape\\[0\\] = 2"):
        tc.ConvTranspose(np.ones((2, 3, 3, 3)), (3, 4, 4))
    with pytest.raises(ValueError, match="groups=2 must divide the input channels C_in=3"):
        tc.ConvTranspose(np.ones((3, 3, 3, 3)), (3, 4, 4), groups=2)
