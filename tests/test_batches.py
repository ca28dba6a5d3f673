"""Batches of images (B, C, *spatial) through the products and the Tikhonov solve: each
item as PyTorch computes it, or as its own solve, in the layout it came in (#32)."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import conv, operator_matrix, tikhonov_minimiser

import toeplitz_conv as tc


@pytest.mark.parametrize("mode", ["zeros", "circular", "reflect"])
def test_a_batch_product_is_pytorchs_batched_conv(mode):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((4, 2, 3, 3))
    op = tc.Conv(weight, (4, 7, 6), padding=1, groups=2, stride=(2, 1), padding_mode=mode)
    images = rng.standard_normal((5, *op.input_shape))
    expected = conv(
        images, weight, stride=(2, 1), pads=((1, 1), (1, 1)), dilation=(1, 1), groups=2, mode=mode
    )
    out = op @ images
    assert out.shape == (5, *op.output_shape)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"a batch must be \(B, 4, 7, 6\)"):
        op @ rng.standard_normal((5, 4, 6, 7))


@pytest.mark.parametrize("mode", ["circular", "zeros"])
def test_a_batch_of_data_is_solved_item_by_item_in_its_layout(mode):
    rng = np.random.default_rng(1)
    op = tc.Conv(rng.standard_normal((3, 2, 3, 3)), (2, 6, 5), padding=1, padding_mode=mode)
    a = operator_matrix(op)
    data = rng.standard_normal((3, *op.output_shape))
    data_before = data.copy()
    shaped = tc.solve_tikhonov(op, data, 0.2, rtol=1e-12)
    np.testing.assert_array_equal(data, data_before)
    assert shaped.x.shape == (3, *op.input_shape)
    flat = tc.solve_tikhonov(op, data.reshape(3, -1), 0.2, rtol=1e-12)
    assert flat.x.shape == (3, op.shape[1])
    zero = np.zeros(op.shape[1])
    for item, row, b in zip(shaped.x, flat.x, data.reshape(3, -1)):
        expected = tikhonov_minimiser(a, b, 0.2, zero)
        np.testing.assert_allclose(item.ravel(), expected, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(row, expected, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(
        shaped.residual_norm, np.linalg.norm(a @ flat.x.T - data.reshape(3, -1).T, axis=0)
    )
    assert shaped.converged
    with pytest.raises(ValueError, match="a batch b must be"):
        tc.solve_tikhonov(op, rng.standard_normal((3, 6, 5, 3)), 0.2)


def test_an_empty_or_non_finite_batch_is_refused_in_one_line():
    op = tc.Conv(np.ones((1, 1, 3)) / 3, (1, 8), padding=1, padding_mode="circular")
    for data, match in (
        (np.ones((0, 1, 8)), "one item at least"),
        (np.full((2, 8), np.nan), "finite"),
    ):
        with pytest.raises(ValueError, match=match):
            tc.solve_tikhonov(op, data, 0.1)
    with pytest.raises(ValueError, match="b must be flat"):
        tc.solve_tv(op, np.ones((0, 1, 8)), 0.1)
