"""The small Hermitian eigendecompositions of :mod:`toeplitz_conv.solve.eigen` against
LAPACK, mpmath at 50 digits and dense matrices, and their use by the solvers."""

import mpmath
import numpy as np
import pytest
from oracles import operator_matrix
from spies import counted

import toeplitz_conv as tc
from toeplitz_conv.solve import algebra, cosine, eigen
from toeplitz_conv.solve.eigen import symmetric_eigen


def _stack(rng, groups, frequencies, n, complex_=False):
    """Symmetric (Hermitian) ``(groups, F, n, n)`` with hard cases among random ones:
    zeros, repeated eigenvalues, diagonal, and magnitudes from 1e-150 to 1e150."""
    m = rng.standard_normal((groups, frequencies, n, n))
    if complex_:
        m = m + 1j * rng.standard_normal(m.shape)
    m = m + np.conj(np.swapaxes(m, -1, -2))
    m[:, 0] = 0.0
    m[:, 1] = 1.0  # rank one: eigenvalue 0 repeated n - 1 times
    m[:, 2] = np.eye(n)  # one value repeated n times
    m[:, 3] = np.diag(np.arange(n, 0, -1.0))
    m[:, 4] *= 1e-150
    m[:, 5] *= 1e150
    m[:, 6] = np.eye(n) + 1e-9 * m[:, 6]  # nearly repeated
    m[:, 7] *= 1e-30  # beside frequencies of norm 1: each converges to its own norm
    return m


def _check_decomposition(m, result, tolerance):
    values = np.moveaxis(result.values, -1, 1)
    vectors = np.moveaxis(result.vectors, -1, 1)
    n = m.shape[-1]
    norms = np.linalg.norm(m, axis=(-2, -1))[..., None, None]
    rebuilt = np.einsum("gfij,gfj,gfkj->gfik", vectors, values, np.conj(vectors))
    assert np.all(np.abs(rebuilt - m) <= tolerance * norms)
    gram = np.einsum("gfji,gfjk->gfik", np.conj(vectors), vectors)
    assert np.abs(gram - np.eye(n)).max() <= tolerance
    expected = np.linalg.eigvalsh(m)
    assert np.all(np.abs(np.sort(values, axis=-1) - expected) <= tolerance * norms[..., 0])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("complex_", [False, True])
def test_symmetric_eigen_decomposes_every_matrix_to_its_own_norm(n, complex_):
    # real n <= JACOBI_SIZE by Jacobi, the rest by LAPACK: the same contract
    m = _stack(np.random.default_rng(n), 2, 40, n, complex_)
    _check_decomposition(m, symmetric_eigen(m), 8 * n * np.finfo(float).eps)


def test_jacobi_eigenvalues_match_mpmath_at_50_digits():
    mpmath.mp.dps = 50
    rng = np.random.default_rng(5)
    m = _stack(rng, 1, 12, 3)
    m[0, 8] = [[2.0, 1e-8, 0.0], [1e-8, 2.0, 1e-8], [0.0, 1e-8, 2.0]]  # clustered
    m[0, 9] = [[1e6, 1.0, 0.0], [1.0, 1.0, 1e-6], [0.0, 1e-6, 1e-6]]  # graded
    values = symmetric_eigen(m).values[0]
    for f in range(m.shape[1]):
        exact, _ = mpmath.eigsy(mpmath.matrix(m[0, f].tolist()))
        exact = np.sort(np.array([float(v) for v in exact]))
        scale = np.linalg.norm(m[0, f])
        assert np.all(np.abs(np.sort(values[:, f]) - exact) <= 4 * np.finfo(float).eps * scale)


def test_jacobi_ends_within_its_sweeps_on_input_it_cannot_diagonalise():
    m = np.full((1, 3, 3, 3), np.nan)
    result = symmetric_eigen(m)  # bounded by _SWEEPS, NaN out
    assert np.isnan(result.values).all()


@pytest.mark.parametrize("damp", [1e-3, 0.7])
def test_normal_inverses_from_the_eigendecomposition_are_the_dense_inverses(damp):
    m = _stack(np.random.default_rng(2), 2, 12, 3)[:, 8:]  # magnitudes near 1
    inverses = symmetric_eigen(m).normal_inverses(damp)
    expected = np.linalg.inv(m @ m + damp**2 * np.eye(3))
    got = np.moveaxis(inverses.data, -1, 1) if inverses.last else inverses.data
    np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-13 / damp**2)


def test_normal_inverses_are_zero_where_the_shift_is_subnormal():
    # a symbol of 0 and a damp whose square is subnormal: 1 / (0 + d^2) overflows, so 0,
    # as the SVD path of algebra.normal_inverses gives
    m = np.zeros((1, 2, 2, 2))
    m[0, 1] = [[1.0, 0.0], [0.0, 0.0]]
    damp = 1e-160
    with np.errstate(all="raise"):
        ours = symmetric_eigen(m).normal_inverses(damp)
    reference = algebra.normal_inverses(m, damp)
    np.testing.assert_array_equal(ours.data, reference.data)


def _symmetric_mixing_layer(mode, padding, spatial=(7, 6), k=3):
    rng = np.random.default_rng(4)
    w = rng.standard_normal((3, 3, k, k))
    w = w + np.swapaxes(w, 0, 1)  # h_ij = h_ji
    w = w + np.flip(w, 2)
    w = w + np.flip(w, 3)  # symmetric kernels
    return tc.Conv(w, (3, *spatial), padding=padding, padding_mode=mode)


@pytest.mark.parametrize("mode, padding", [("reflect", 1), ("replicate", 1)])
def test_the_preconditioner_from_the_layers_eigendecomposition(mode, padding):

    op = _symmetric_mixing_layer(mode, padding)
    kind, _ = cosine.cosine_class(op)
    assert cosine.cosine_eigen(op, kind) is not None  # Hermitian symbols: this path
    a = operator_matrix(op)
    damp = 0.05
    normal = a.T @ a + damp**2 * np.eye(a.shape[1])
    m = tc.preconditioner(op, damp, kind="cosine") @ np.eye(a.shape[1])
    eigenvalues = np.linalg.eigvals(m @ normal).real
    if kind == "dct2":  # the exact inverse
        np.testing.assert_allclose(eigenvalues, 1.0, atol=1e-10)
    else:  # P <= A^T A + d^2 I <= 4 P
        assert eigenvalues.min() >= 1 - 1e-10 and eigenvalues.max() <= 4 + 1e-10


def test_choose_damp_and_the_preconditioner_share_one_decomposition(monkeypatch):
    op = _symmetric_mixing_layer("reflect", 1, spatial=(20, 18))
    b = np.random.default_rng(1).standard_normal(op.shape[0])
    calls = []
    monkeypatch.setattr(cosine, "symmetric_eigen", counted(eigen.symmetric_eigen, calls))
    damp = tc.choose_damp(op, b)
    tc.solve_tikhonov(op, b, damp)
    tc.solve_tikhonov(op, b, 2 * damp)
    assert len(calls) == 1


def test_the_kept_decomposition_is_read_only():
    op = _symmetric_mixing_layer("reflect", 1)
    kept = cosine.cosine_eigen(op, "dct1")
    for array in (kept.values, kept.vectors):
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 0.0


def test_mixing_that_is_not_symmetric_keeps_the_general_path(monkeypatch):
    # h_12 != h_21: no eigendecomposition (and no symbols computed to find that out);
    # the preconditioner and GCV then take the Cholesky and SVD paths
    op = _symmetric_mixing_layer("reflect", 1)
    weight = np.array(op.weight)
    weight[0, 1] += 0.5
    op = tc.Conv(weight, op.input_shape, padding=1, padding_mode="reflect")
    symbols_built = []
    monkeypatch.setattr(cosine, "_symbols", counted(cosine._symbols, symbols_built))
    assert cosine.cosine_eigen(op, "dct1") is None and not symbols_built
    a = operator_matrix(op)
    damp = 0.05
    normal = a.T @ a + damp**2 * np.eye(a.shape[1])
    m = tc.preconditioner(op, damp, kind="cosine") @ np.eye(a.shape[1])
    eigenvalues = np.linalg.eigvals(m @ normal).real
    assert eigenvalues.min() >= 1 - 1e-10 and eigenvalues.max() <= 4 + 1e-10


def test_the_hermitian_part_is_taken_only_within_the_tolerance():
    rng = np.random.default_rng(11)
    h = _stack(rng, 1, 16, 3)[:, 8:]  # random symmetric, norm about 1
    skew = rng.standard_normal(h.shape)
    skew = skew - np.swapaxes(skew, -1, -2)
    near = eigen.hermitian_to_rounding(h + 1e-15 * skew + 1e-15j * h, 1e-13)
    assert near is not None and np.isrealobj(near)  # the rounding dropped, real
    np.testing.assert_allclose(near, h, atol=1e-14)
    assert eigen.hermitian_to_rounding(h + 1e-10 * skew, 1e-13) is None
    complex_h = h + 1j * skew  # Hermitian, genuinely complex: kept complex
    near = eigen.hermitian_to_rounding(complex_h, 1e-13)
    assert near is not None and np.iscomplexobj(near)
    np.testing.assert_array_equal(near, complex_h)
    assert eigen.hermitian_to_rounding(rng.standard_normal((1, 4, 2, 3)), 1.0) is None


def _circular_layer(symmetric: bool, spatial=(24, 20)):
    t = np.arange(-2, 3)
    g = np.exp(-(t**2) / 2.0)
    kernel = np.outer(g, g if symmetric else np.roll(g, 1) * np.linspace(1, 2, 5))
    mixing = np.array([[0.8, 0.1, 0.05], [0.1, 0.7, 0.1], [0.05, 0.1, 0.9]])
    if not symmetric:
        mixing = mixing + np.triu(mixing, 1)
    weight = mixing[:, :, None, None] * kernel / kernel.sum()
    return tc.Conv(weight, (3, *spatial), padding=2, padding_mode="circular")


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("rule", ["gcv", "discrepancy"])
def test_choose_damp_on_circular_layers_agrees_with_the_svd(symmetric, rule, monkeypatch):
    """Symmetric mixing of symmetric kernels: FFT symbols Hermitian to rounding, taken by
    the eigendecomposition of their Hermitian part; the damp is the SVD path's. Other
    layers keep the SVD (their symbols are far from Hermitian)."""
    from toeplitz_conv.solve import fourier

    op = _circular_layer(symmetric)
    rng = np.random.default_rng(12)
    b = op @ rng.random(op.shape[1]) + 0.01 * rng.standard_normal(op.shape[0])
    calls = []
    monkeypatch.setattr(eigen, "symmetric_eigen", counted(eigen.symmetric_eigen, calls))
    chosen = tc.choose_damp(op, b, rule=rule, noise_std=0.01)
    assert bool(calls) == symmetric
    hermitian_to_rounding = eigen.hermitian_to_rounding
    monkeypatch.setattr(eigen, "hermitian_to_rounding", lambda symbols, relative: None)
    by_svd = tc.choose_damp(op, b, rule=rule, noise_std=0.01)
    assert chosen == pytest.approx(by_svd, rel=1e-6)
    # and the singular values themselves: within the FFT's rounding of the SVD's
    form = fourier.frequency_form(op)
    near = hermitian_to_rounding(
        form.symbols, eigen.fft_rounding(form.symbols.shape[1])
    )
    if symmetric:
        ours = np.sort(np.abs(np.linalg.eigvalsh(near)), axis=-1)
        svd = np.sort(np.linalg.svd(form.symbols, compute_uv=False), axis=-1)
        assert np.abs(ours - svd).max() <= 1e-13 * svd.max()
    else:
        assert near is None
