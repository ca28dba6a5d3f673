"""solve_tikhonov on random layers (hypothesis), against the dense normal equations of
PyTorch's matrix: the cosine solve exact on its whole class, conjugate gradients to
their rtol on every layer with every preconditioner that applies, real and complex."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from oracles import operator_matrix
from strategies import examples, layer_cases, symmetric_weights

import toeplitz_conv as tc
from toeplitz_conv.core.errors import ParameterError


def _minimiser(a, b, damp):
    """The Tikhonov minimiser by an SVD least-squares solve of [A; d I] x = [b; 0] (or the
    minimum-norm least-squares solution for damp 0)."""
    n = a.shape[1]
    stacked = np.vstack([a, damp * np.eye(n)]) if damp else a
    rhs = np.concatenate([b, np.zeros(n)]) if damp else b
    return np.linalg.lstsq(stacked, rhs, rcond=None)[0]


@st.composite
def replicate_symmetric_layers(draw):
    """The DCT-II class: replicate padding of 0 or 1 (kernels 1 or 3, centred), stride 1,
    kernels symmetric along every axis, any groups; real or complex."""
    d = draw(st.integers(1, 3))
    kernel = tuple(draw(st.sampled_from([1, 3])) for _ in range(d))
    spatial = tuple(draw(st.integers(1, 6 if d < 3 else 3)) for _ in range(d))
    w, groups, c_in = draw(symmetric_weights(kernel))
    pads = tuple((k - 1) // 2 for k in kernel)
    return tc.Conv(w, (c_in, *spatial), padding=pads, groups=groups, padding_mode="replicate")


@settings(max_examples=examples(100), deadline=None)
@given(op=replicate_symmetric_layers(), damp=st.sampled_from([0.0, 1e-2, 0.5]))
def test_the_cosine_solve_is_exact_on_random_layers_of_its_class(op, damp):
    a = operator_matrix(op)
    b = np.random.default_rng(1).standard_normal(a.shape[0])
    result = tc.solve_tikhonov(op, b, damp)
    assert result.method == "cosine" and result.exact
    expected = _minimiser(a, b, damp)
    conditioning = 1.0 if damp else np.linalg.cond(a)
    scale = max(np.linalg.norm(expected), 1e-300)
    assert np.linalg.norm(result.x - expected) <= 1e-10 * conditioning * scale
    misfit = np.linalg.norm(a @ result.x - b)  # the residual, from the spectra for damp > 0
    assert abs(result.residual_norm - misfit) <= 1e-12 * np.linalg.norm(b) + 1e-9 * misfit


@settings(max_examples=examples(60), deadline=None)
@given(
    case=layer_cases(dtypes=(np.float64, np.complex128), max_dim=2),
    choice=st.sampled_from(["auto", None, "circulant", "cosine"]),
)
def test_conjugate_gradients_reach_rtol_on_random_layers(case, choice):
    kwargs = {**case.kwargs(), "bias": None}
    op = tc.Conv(case.weight, case.input_shape, **kwargs)
    damp = 0.3
    if isinstance(choice, str) and choice != "auto":
        try:
            tc.preconditioner(op, damp, kind=choice)
        except ParameterError:
            assume(False)  # this kind does not apply to the layer
    a = operator_matrix(op)
    b = np.random.default_rng(2).standard_normal(a.shape[0])
    rtol = 1e-10
    result = tc.solve_tikhonov(op, b, damp, rtol=rtol, method="pcg", preconditioner=choice)
    assert result.method == "pcg" and not result.exact and result.converged
    expected = _minimiser(a, b, damp)
    # the normal equations' residual is below rtol: the error, times their condition
    gram = a.conj().T @ a + damp**2 * np.eye(a.shape[1])
    bound = 10 * rtol * np.linalg.cond(gram)
    assert np.linalg.norm(result.x - expected) <= bound * np.linalg.norm(expected)
