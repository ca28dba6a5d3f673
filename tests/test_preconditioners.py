"""The preconditioners against their definitions: T. Chan's optimal block circulant as the
Frobenius projection of PyTorch's matrix onto circular layers, and Ng, Chan and Tang's
Neumann form as the inverse of a matrix built here by numpy from the half-sample
symmetric extension."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse.linalg as spla
from oracles import operator_matrix
from strategies import cross_channel_gaussian

import toeplitz_conv as tc
from toeplitz_conv.solve.preconditioners import circulant_counterpart


def _circulant_projection(a, op):
    """Each channel block of ``a`` averaged over its offset classes
    :math:`o = (j - s i) \\bmod n` (conv rows ``i``, conv columns ``j``; swapped for a
    conv-transpose): the Frobenius-nearest strided circular layer."""
    g = op.geometry
    n, s = np.array(g.input_spatial), np.array(g.stride)
    m = n // s
    fine = np.array(list(itertools.product(*map(range, n))))  # conv input pixels
    coarse = np.array(list(itertools.product(*map(range, m))))  # conv output pixels
    classes = np.mod(fine[None, :, :] - s * coarse[:, None, :], n)  # (M, N, d)
    class_id = np.ravel_multi_index(tuple(np.moveaxis(classes, -1, 0)), tuple(n))
    if op.transposed:
        class_id = class_id.T
    rows, cols = class_id.shape
    out = np.zeros_like(a)
    for r0, c0 in itertools.product(range(0, a.shape[0], rows), range(0, a.shape[1], cols)):
        block = a[r0 : r0 + rows, c0 : c0 + cols]
        sums = np.bincount(class_id.ravel(), weights=block.real.ravel(), minlength=math.prod(n))
        if np.iscomplexobj(a):
            imag = np.bincount(class_id.ravel(), weights=block.imag.ravel(), minlength=sums.size)
            sums = sums + 1j * imag
        out[r0 : r0 + rows, c0 : c0 + cols] = sums[class_id] / math.prod(m)
    return out


CHAN_CASES = [  # (weight shape, input shape, kwargs, transposed, complex)
    ((2, 3, 5), (3, 9), dict(padding=2), False, False),
    ((2, 3, 3, 5), (3, 6, 8), dict(padding=(1, 2), padding_mode="reflect"), False, False),
    ((3, 2, 3, 3), (2, 6, 5), dict(padding=2, dilation=2, padding_mode="replicate"), False, True),
    ((4, 1, 3, 3), (2, 8, 6), dict(padding=1, stride=2, groups=2), False, False),
    ((2, 2, 4, 3), (2, 8, 6), dict(padding=((1, 2), (1, 1)), stride=(2, 3)), False, False),
    ((2, 2, 3, 3), (2, 5, 4), dict(padding=1, padding_mode="circular"), False, True),
    ((2, 3, 4, 4), (2, 4, 3), dict(padding=1, stride=2), True, False),
    ((2, 2, 3), (2, 6), dict(padding=1, stride=2, output_padding=1), True, True),
]


@pytest.mark.parametrize("case", CHAN_CASES)
def test_the_circulant_counterpart_is_t_chans_optimal_circulant(case):
    weight_shape, input_shape, kwargs, transposed, complex_ = case
    rng = np.random.default_rng(len(weight_shape) + len(kwargs))
    weight = rng.standard_normal(weight_shape)
    if complex_:
        weight = weight + 1j * rng.standard_normal(weight_shape)
    op = (tc.ConvTranspose if transposed else tc.Conv)(weight, input_shape, **kwargs)
    a = operator_matrix(op)
    twin = circulant_counterpart(op)
    assert twin.geometry.padding_mode == "circular"
    np.testing.assert_allclose(operator_matrix(twin), _circulant_projection(a, op), atol=1e-12)


def test_a_circular_layer_is_its_own_counterpart_and_strang_is_farther():
    op = tc.Conv(np.random.default_rng(1).standard_normal((2, 2, 5, 5)), (2, 7, 6), padding=2)
    a = operator_matrix(op)
    chan = operator_matrix(circulant_counterpart(op))
    strang = operator_matrix(tc.Conv(op.weight, (2, 7, 6), padding=2, padding_mode="circular"))
    assert np.linalg.norm(a - chan) < np.linalg.norm(a - strang)
    circular = tc.Conv(op.weight, (2, 7, 6), padding=2, padding_mode="circular")
    np.testing.assert_allclose(operator_matrix(circulant_counterpart(circular)), strang, atol=1e-13)


def _half_sample_matrix(h, n, dilation):
    """The 1-D matrix of a centred kernel on the half-sample symmetric extension
    (reads ``q < 0`` at ``-q - 1``, ``q >= n`` at ``2 n - 1 - q``, repeated)."""
    k = h.size
    out = np.zeros((n, n))
    for i, t in itertools.product(range(n), range(k)):
        q = np.mod(i + (t - (k - 1) // 2) * dilation, 2 * n)
        out[i, q if q < n else 2 * n - 1 - q] += h[t]
    return out


def _neumann_matrix(weight, spatial, dilation):
    """Block matrix of the kernels' symmetric parts with the half-sample symmetric boundary
    (each kernel a sum of separable outer products, rank by rank through the SVD)."""
    c_out, c_in = weight.shape[:2]
    n = math.prod(spatial)
    out = np.zeros((c_out * n, c_in * n), dtype=weight.dtype)
    for o, i in itertools.product(range(c_out), range(c_in)):
        h = weight[o, i]
        h = (h + np.flip(h, 0) + np.flip(h, 1) + np.flip(h, (0, 1))) / 4
        u, s, vt = np.linalg.svd(h)
        block = sum(
            s[r]
            * np.kron(
                _half_sample_matrix(u[:, r], spatial[0], dilation),
                _half_sample_matrix(vt[r], spatial[1], dilation),
            )
            for r in range(s.size)
        )
        out[o * n : (o + 1) * n, i * n : (i + 1) * n] = block
    return out


@pytest.mark.parametrize(
    "mode, dilation, kernel",
    [("zeros", 1, (5, 3)), ("replicate", 1, (5, 5)), ("reflect", 2, (3, 3))],
)
def test_the_cosine_preconditioner_inverts_the_neumann_form_of_the_symmetric_part(
    mode, dilation, kernel
):
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((3, 2, *kernel))  # not symmetric
    pads = tuple(dilation * (k - 1) // 2 for k in kernel)
    op = tc.Conv(weight, (2, 7, 6), padding=pads, dilation=dilation, padding_mode=mode)
    damp = 0.3
    m = tc.preconditioner(op, damp, kind="cosine") @ np.eye(op.shape[1])
    s = _neumann_matrix(weight, (7, 6), dilation)
    expected = np.linalg.inv(s.T @ s + damp**2 * np.eye(op.shape[1]))
    np.testing.assert_allclose(m, expected, atol=1e-10)


def test_the_cosine_preconditioner_says_why_it_does_not_apply():
    weight = np.ones((1, 1, 3, 3))
    cases = {
        "stride 2": tc.Conv(weight, (1, 6, 6), padding=1, stride=2),
        "circular": tc.Conv(weight, (1, 6, 6), padding=1, padding_mode="circular"),
        "conv-transpose": tc.ConvTranspose(weight, (1, 6, 6), padding=1),
        "do not centre": tc.Conv(weight, (1, 6, 6), padding=(0, 1)),
    }
    for why, op in cases.items():
        with pytest.raises(ValueError, match=why):
            tc.preconditioner(op, 0.1, kind="cosine")


def _iterations(op, b, damp, m):
    gram = spla.LinearOperator(
        (op.shape[1],) * 2, matvec=lambda v: op.rmatvec(op.matvec(v)) + damp**2 * v
    )
    calls = []
    _, info = spla.cg(gram, op.rmatvec(b), rtol=1e-8, M=m, callback=calls.append, maxiter=5000)
    assert info == 0
    return len(calls)


@pytest.mark.parametrize("kind", ["circulant", "cosine"])
def test_both_preconditioners_cut_cg_on_a_zero_padded_gaussian_blur(kind):
    op = cross_channel_gaussian("zeros")
    b = op @ np.random.default_rng(6).standard_normal(op.shape[1])
    damp = 1e-2
    plain = _iterations(op, b, damp, None)
    preconditioned = _iterations(op, b, damp, tc.preconditioner(op, damp, kind=kind))
    assert preconditioned <= (0.6 if kind == "circulant" else 0.3) * plain, (preconditioned, plain)


def test_solve_tikhonov_takes_a_preconditioner_and_reaches_the_same_minimiser():
    op = cross_channel_gaussian("zeros")
    b = op @ np.random.default_rng(7).standard_normal(op.shape[1])
    damp = 1e-2
    a = operator_matrix(op)
    exact = np.linalg.solve(a.T @ a + damp**2 * np.eye(a.shape[1]), a.T @ b)
    plain = tc.solve_tikhonov(op, b, damp, rtol=1e-10)
    assert plain.method == "pcg" and plain.converged
    given = tc.preconditioner(op, damp, kind="circulant")
    for choice in ("cosine", "circulant", given):
        result = tc.solve_tikhonov(op, b, damp, rtol=1e-10, preconditioner=choice)
        assert result.converged and result.iterations < plain.iterations / 2
        assert np.linalg.norm(result.x - exact) <= 1e-8 * np.linalg.norm(exact)
    none = tc.solve_tikhonov(op, b, damp, rtol=1e-10, preconditioner=None)
    assert none.iterations == plain.iterations
    with pytest.raises(ValueError, match="preconditioner"):
        tc.solve_tikhonov(op, b, damp, preconditioner="jacobi")
    with pytest.raises(ValueError, match="preconditioner='cosine' needs damp > 0"):
        tc.solve_tikhonov(op, b, 0.0, preconditioner="cosine")
    with pytest.raises(TypeError, match="preconditioner"):
        tc.solve_tikhonov(op, b, damp, preconditioner=3.0)
    with pytest.raises(ValueError, match="preconditioner"):
        tc.solve_tikhonov(op, b, damp, preconditioner=spla.aslinearoperator(np.eye(3)))


def test_the_dct1_by_matrix_and_by_fft_agree(monkeypatch):
    from toeplitz_conv.solve import cosine, dct

    rng = np.random.default_rng(8)
    weight = rng.standard_normal((2, 2, 3, 3))
    weight = weight + np.flip(weight, 2)
    weight = weight + np.flip(weight, 3)  # exactly symmetric: the DCT-I form
    op = tc.Conv(weight, (2, 9, 6), padding=1, padding_mode="reflect")
    v = rng.standard_normal(op.shape[1])
    by_matrix = tc.preconditioner(op, 0.1, kind="cosine") @ v
    monkeypatch.setattr(dct, "DENSE_DCT1", 0)  # every axis through pocketfft
    by_fft = tc.preconditioner(op, 0.1, kind="cosine") @ v
    np.testing.assert_allclose(by_matrix, by_fft, rtol=1e-12, atol=1e-14)
    _, by_fft_coordinates = cosine.cosine_coordinates(op, v, side="input")
    monkeypatch.setattr(dct, "DENSE_DCT1", 256)
    _, by_matrix_coordinates = cosine.cosine_coordinates(op, v, side="input")
    np.testing.assert_allclose(by_matrix_coordinates, by_fft_coordinates, rtol=1e-12, atol=1e-14)
