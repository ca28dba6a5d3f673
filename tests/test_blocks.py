"""Scalar-kernel blocks against scipy.linalg.convolution_matrix and dense torch matrices."""

import numpy as np
import pytest
import scipy.linalg
from oracles import conv

import toeplitz_conv as tc


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("n", [5, 8, 11])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_convolve_convention_equals_scipy_convolution_matrix(k, n, mode):
    a = np.random.default_rng(k * n).standard_normal(k)
    padding = {"full": k - 1, "same": "same", "valid": "valid"}[mode]
    block = tc.kernel_block(a, n, padding=padding, convention="convolve")
    np.testing.assert_allclose(block.toarray(), scipy.linalg.convolution_matrix(a, n, mode))


@pytest.mark.parametrize("mode", ["zeros", "circular", "reflect", "replicate"])
@pytest.mark.parametrize(
    "kernel_shape, size, stride, padding, dilation",
    [
        ((4,), (9,), 2, ((3, 1),), 1),
        ((3, 2), (6, 5), (1, 2), ((2, 0), (1, 1)), (2, 1)),
        ((2, 3, 2), (4, 5, 3), 1, 1, 1),
    ],
)
def test_block_equals_dense_matrix_of_torch_conv(
    mode, kernel_shape, size, stride, padding, dilation
):
    h = np.random.default_rng(0).standard_normal(kernel_shape)
    block = tc.kernel_block(
        h, size, stride=stride, padding=padding, dilation=dilation, padding_mode=mode
    )
    d = len(size)
    pads = padding if isinstance(padding, tuple) else ((padding, padding),) * d
    n = int(np.prod(size))
    eye = np.eye(n).reshape(n, 1, *size)
    strides = stride if isinstance(stride, tuple) else (stride,) * d
    dilations = dilation if isinstance(dilation, tuple) else (dilation,) * d
    dense = (
        conv(eye, h[None, None], stride=strides, pads=pads, dilation=dilations, groups=1, mode=mode)
        .reshape(n, -1)
        .T
    )
    np.testing.assert_allclose(block.toarray(), dense, atol=1e-12)


def test_circular_block_is_circulant_in_1d():
    h = np.array([1.0, 2.0, 3.0])
    block = tc.kernel_block(h, 6, padding=1, padding_mode="circular").toarray()
    # correlation with circular padding 1: row o reads x[o-1], x[o], x[o+1] (mod 6)
    first_column = np.zeros(6)
    first_column[[0, 1, 5]] = [2.0, 1.0, 3.0]
    np.testing.assert_allclose(block, scipy.linalg.circulant(first_column))


def test_reflect_and_replicate_blocks_fold_the_boundary_and_keep_row_sums():
    h = np.array([1.0, 10.0, 100.0])
    for mode in ("reflect", "replicate"):
        block = tc.kernel_block(h, 5, padding=1, padding_mode=mode)
        assert block.has_canonical_format
        # every tap lands somewhere in the input: each row sums to the kernel's sum
        np.testing.assert_allclose(block.sum(axis=1), h.sum())
    reflect = tc.kernel_block(h, 5, padding=1, padding_mode="reflect").toarray()
    np.testing.assert_allclose(reflect[0, :3], [10.0, 101.0, 0.0])  # x[-1] -> x[1]
    replicate = tc.kernel_block(h, 5, padding=1, padding_mode="replicate").toarray()
    np.testing.assert_allclose(replicate[0, :2], [11.0, 100.0])  # x[-1] -> x[0]


def test_convention_must_be_known():
    with pytest.raises(ValueError, match="convention"):
        tc.kernel_block([1.0, 2.0], 4, convention="fft")
