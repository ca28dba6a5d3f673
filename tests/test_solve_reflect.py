"""Conjugate gradients in DCT-I coordinates (toeplitz_conv.solve.reflect): the boundary
form against its dense matrix, solves against the dense normal equations of PyTorch's
matrix (hypothesis), the stopping rule on the normal equations themselves, and the same
iterates as CG preconditioned by the DCT-I operator on the original equations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import operator_matrix
from strategies import examples, symmetric_weights

import toeplitz_conv as tc
from toeplitz_conv.solve.reflect import boundary_form


def _orthonormal_dct1(n: int) -> np.ndarray:
    """:math:`Q = W^{1/2} V D^{-1/2}` from the cosine basis itself (dense, independent of
    scipy's transforms), checked orthogonal."""
    if n < 2:
        return np.ones((1, 1))
    basis = np.cos(np.pi * np.outer(np.arange(n), np.arange(n)) / (n - 1))
    weights = np.ones(n)
    weights[[0, -1]] = 0.5
    norms = np.einsum("jf,j,jf->f", basis, weights, basis)
    q = np.sqrt(weights)[:, None] * basis / np.sqrt(norms)
    np.testing.assert_allclose(q.T @ q, np.eye(n), atol=1e-13)
    return q


def _dense_form(spatial, alpha):
    """:math:`Q^T (I + \\alpha E) Q` over the grid (Kronecker product over the axes)."""
    matrix = np.ones((1, 1))
    for n in spatial:
        q = _orthonormal_dct1(n)
        ends = np.zeros(n)
        if n >= 2:
            ends[[0, -1]] = 1.0
        matrix = np.kron(matrix, q.T @ np.diag(1 + alpha * ends) @ q)
    return matrix


@pytest.mark.parametrize("spatial", [(2,), (3,), (6,), (7,), (4, 5), (2, 3), (1, 4), (3, 1, 4)])
@pytest.mark.parametrize("alpha", [1.0, -0.5])
def test_the_boundary_form_is_its_dense_matrix(spatial, alpha):
    rng = np.random.default_rng(0)
    channels = 3
    v = rng.standard_normal((channels, np.prod(spatial))) + 1j * rng.standard_normal(
        (channels, np.prod(spatial))
    )
    given_v = v.copy()
    out = boundary_form(v.reshape(-1), spatial, alpha).reshape(channels, -1)
    expected = given_v @ _dense_form(spatial, alpha).T
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-13 * np.abs(expected).max())


@st.composite
def reflect_symmetric_layers(draw):
    """The DCT-I class: reflect padding centring a symmetric kernel (sizes 1, 3, 5, any
    dilation the size allows), stride 1, any groups and dimension; real or complex."""
    d = draw(st.integers(1, 3))
    kernel = tuple(draw(st.sampled_from([1, 3, 5])) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    pads = tuple(dl * (k - 1) // 2 for k, dl in zip(kernel, dilation))
    top = 7 if d < 3 else 4
    spatial = tuple(draw(st.integers(max(p + 1, 2), max(p + 1, top))) for p in pads)
    w, groups, c_in = draw(symmetric_weights(kernel))
    return tc.Conv(
        w,
        (c_in, *spatial),
        padding=pads,
        dilation=dilation,
        groups=groups,
        padding_mode="reflect",
    )


@settings(max_examples=examples(100), deadline=None)
@given(
    op=reflect_symmetric_layers(),
    relative_damp=st.sampled_from([1e-3, 1e-1, 1.0]),
    with_prior=st.booleans(),
    rtol=st.sampled_from([1e-4, 1e-10]),
)
def test_reflect_solves_reach_rtol_on_the_normal_equations_themselves(
    op, relative_damp, with_prior, rtol
):
    a = operator_matrix(op)
    rng = np.random.default_rng(3)
    b = rng.standard_normal(a.shape[0]) + 1j * rng.standard_normal(a.shape[0])
    x0 = rng.standard_normal(a.shape[1]) if with_prior else None
    damp = relative_damp * np.linalg.norm(a, 2)
    result = tc.solve_tikhonov(op, b, damp, x0=x0, rtol=rtol)
    assert result.method == "pcg" and result.converged and not result.exact
    gram = a.conj().T @ a + damp**2 * np.eye(a.shape[1])
    rhs = a.conj().T @ b + (0 if x0 is None else damp**2 * x0)
    residual = np.linalg.norm(rhs - gram @ result.x)
    assert residual <= rtol * np.linalg.norm(rhs) * (1 + 1e-6) + 1e-13 * np.linalg.norm(rhs)
    expected = np.linalg.solve(gram, rhs)
    bound = 10 * rtol * np.linalg.cond(gram)
    assert np.linalg.norm(result.x - expected) <= bound * np.linalg.norm(expected)


def _reflect_layer(spatial=(14, 11), seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((3, 3, 5, 5))
    w = w + np.flip(w, 2)
    w = w + np.flip(w, 3)
    return tc.Conv(w, (3, *spatial), padding=2, padding_mode="reflect")


@pytest.mark.filterwarnings("ignore:solve_tikhonov. conjugate gradients did not reach")
@pytest.mark.parametrize("damp", [1e-2, 1.0])
def test_the_coordinates_give_the_iterates_of_the_dct1_preconditioned_equations(damp):
    """A congruence leaves PCG unchanged: the operator ``tc.preconditioner(kind="cosine")``
    on the original equations takes the same iterations to the same point (the stopping
    norms differ, so rtol is set where both stop at once)."""
    op = _reflect_layer()
    b = np.random.default_rng(4).standard_normal(op.shape[0])
    operator = tc.preconditioner(op, damp, kind="cosine")
    for iterations in (1, 2, 3, 5):
        ours = tc.solve_tikhonov(op, b, damp, rtol=1e-300, maxiter=iterations)
        theirs = tc.solve_tikhonov(
            op, b, damp, rtol=1e-300, maxiter=iterations, preconditioner=operator
        )
        assert ours.iterations == theirs.iterations == iterations
        np.testing.assert_allclose(ours.x, theirs.x, rtol=0, atol=1e-9 * np.abs(theirs.x).max())


def test_a_reflect_solve_that_stops_early_says_so_and_keeps_its_iterate():
    op = _reflect_layer()
    b = np.random.default_rng(5).standard_normal(op.shape[0])
    with pytest.warns(RuntimeWarning, match="did not reach"):
        result = tc.solve_tikhonov(op, b, 1e-3, rtol=1e-12, maxiter=2)
    assert not result.converged and result.iterations == 2
    assert np.linalg.norm(op @ result.x - b) < np.linalg.norm(b)  # the work is kept


def test_a_damp_whose_square_overflows_gives_the_prior():
    op = _reflect_layer((6, 5))
    rng = np.random.default_rng(6)
    b, x0 = rng.standard_normal(op.shape[0]), rng.standard_normal(op.shape[1])
    result = tc.solve_tikhonov(op, b, 1e200, x0=x0)
    np.testing.assert_array_equal(result.x, x0)


def test_the_caller_arrays_are_read_not_written():
    op = _reflect_layer((9, 8))
    rng = np.random.default_rng(7)
    b, x0 = rng.standard_normal(op.shape[0]), rng.standard_normal(op.shape[1])
    b_copy, x0_copy = b.copy(), x0.copy()
    result = tc.solve_tikhonov(op, b, 0.1, x0=x0)
    np.testing.assert_array_equal(b, b_copy)
    np.testing.assert_array_equal(x0, x0_copy)
    assert not np.shares_memory(result.x, x0) and not np.shares_memory(result.x, b)
