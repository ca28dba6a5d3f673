"""Bad input: a clear ValueError/TypeError naming the parameter, before any large allocation."""

import numpy as np
import pytest

import toeplitz_conv as tc

W = np.ones((4, 4, 3, 3))


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(groups=3), ValueError, "groups=3 must divide"),
        (dict(groups=0), ValueError, "groups must be >= 1"),
        (dict(groups=1.5), TypeError, "groups must be an integer"),
        (dict(input_shape=(3, 8, 8)), ValueError, "C_in = 4"),
        (dict(input_shape=(4, 8)), ValueError, "2 spatial axes"),
        (dict(input_shape=(4, 8, 8, 8)), ValueError, "2 spatial axes"),
        (dict(stride=0), ValueError, "stride must be >= 1"),
        (dict(stride=(1, 2, 3)), ValueError, "stride must be an int or 2 per-axis"),
        (dict(dilation=0), ValueError, "dilation must be >= 1"),
        (dict(padding=-1), ValueError, "padding must be >= 0"),
        (dict(padding=((1, -2), (0, 0))), ValueError, "padding must be >= 0"),
        (dict(padding=(1, 2, 3)), ValueError, "padding must be an int, 2 per-axis"),
        (dict(padding=((1, 2, 3), (0, 0))), ValueError, r"\(before, after\)"),
        (dict(padding="full"), ValueError, "'valid', 'same'"),
        (dict(padding_mode="wrap"), ValueError, "padding_mode must be one of"),
        (dict(input_shape=(4, 2, 8)), ValueError, "larger than the padded input"),
        (
            dict(input_shape=(4, 2, 8), padding=1, dilation=(2, 1)),
            ValueError,
            "larger than the padded input",
        ),
        (
            dict(input_shape=(4, 2, 8), padding=2, padding_mode="reflect"),
            ValueError,
            "pad < input size",
        ),
        (dict(bias=np.ones(3)), ValueError, r"bias must have shape \(4,\)"),
        (dict(bias=["a"] * 4), TypeError, "bias must hold"),
        (dict(dtype=np.int32), TypeError, "dtype must be one of"),
        (dict(input_shape="4x8x8"), TypeError, "input_shape must be a tuple"),
    ],
)
def test_bad_layer_parameters(kwargs, error, pattern):
    kwargs = dict(kwargs)
    input_shape = kwargs.pop("input_shape", (4, 8, 8))
    with pytest.raises(error, match=pattern):
        tc.Conv(W, input_shape, **kwargs)


def test_non_numeric_weight():
    with pytest.raises(TypeError, match=r"weight must hold numbers \(bool, int, float"):
        tc.Conv(np.array([[["a", "b"]]]), (1, 4))
    with pytest.raises(TypeError, match="weight is complex but dtype"):
        tc.Conv(np.ones((1, 1, 2)) * 1j, (1, 4), dtype=np.float64)


def test_kernel_rank_must_be_1_to_3():
    with pytest.raises(ValueError, match="1, 2 or 3 kernel axes"):
        tc.Conv(np.ones((1, 1)), (1, 4))
    with pytest.raises(ValueError, match="1, 2 or 3 kernel axes"):
        tc.Conv(np.ones((1, 1, 2, 2, 2, 2)), (1, 4, 4, 4, 4))


def test_wrong_vector_lengths_to_matvec_and_rmatvec():
    op = tc.Conv(W, (4, 8, 8), padding=1)
    with pytest.raises(ValueError, match=r"matvec: x must be a flat vector of length 256"):
        op.matvec(np.ones(255))
    with pytest.raises(ValueError, match=r"rmatvec: x must be a flat vector of length 256"):
        op.rmatvec(np.ones(257))


def test_wrong_array_shape_to_apply():
    op = tc.Conv(W, (4, 8, 8), padding=1)
    with pytest.raises(ValueError, match=r"x must have shape \(N, \*\(4, 8, 8\)\)"):
        op.apply(np.ones((2, 3, 8, 8)))
    with pytest.raises(ValueError, match="x must have shape"):
        op.apply(np.ones(256))


def test_unknown_sparse_format():
    with pytest.raises(ValueError, match="format must be one of"):
        tc.Conv(W, (4, 8, 8)).tosparse("dok")
