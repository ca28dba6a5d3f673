"""solve_tv against a long run of a different algorithm (pyproximal's PrimalDual on the
dense matrices of PyTorch's layer and numpy's differences), and its contract."""

from __future__ import annotations

import numpy as np
import pylops
import pyproximal
import pytest
from oracles import operator_matrix
from test_penalized import difference_matrix, symmetric_mixing_layer

import toeplitz_conv as tc


def reference_tv(a, d, b, lam, *, regulariser, nonneg, iterations=6000):
    """Chambolle-Pock on [A; D] with a step from the dense norm (an independent method)."""
    k = pylops.MatrixMult(np.vstack([a, d]))
    g = pyproximal.VStack([pyproximal.L2(b=b), regulariser], nn=[a.shape[0], d.shape[0]])
    f = pyproximal.Box(lower=0.0) if nonneg else pyproximal.Box()
    step = 0.99 / np.linalg.norm(np.vstack([a, d]), 2)
    x = pyproximal.optimization.primaldual.PrimalDual(
        f, g, k, np.zeros(a.shape[1]), step, step, niter=iterations, show=False
    )
    return np.maximum(x, 0) if nonneg else x


def _problem(mode, size=(3, 6, 5), seed=0):
    op = symmetric_mixing_layer(mode, size=size, seed=seed)
    rng = np.random.default_rng(seed)
    truth = np.zeros(op.input_shape)
    truth[:, 1:4, 1:3] = 1.0
    b = op.matvec(truth.ravel()) + 0.05 * rng.standard_normal(op.shape[0])
    return op, b


CASES = [
    ("circular", dict()),
    ("replicate", dict()),
    ("reflect", dict()),
    ("zeros", dict()),
    ("circular", dict(isotropic=False)),
    ("replicate", dict(nonneg=True)),
    ("zeros", dict(nonneg=True, vectorial=True)),
]


@pytest.mark.parametrize("mode, options", CASES, ids=[f"{m}-{o}" for m, o in CASES])
def test_solve_tv_reaches_the_minimiser_of_another_method(mode, options):
    op, b = _problem(mode)
    lam = 0.05
    a = operator_matrix(op)
    boundary = "periodic" if mode == "circular" else "neumann"
    d = difference_matrix(op.input_shape, boundary)
    axes = len(op.input_shape) - 1
    if options.get("isotropic", True) is False:
        regulariser = pyproximal.L1(sigma=lam)
    else:
        channels = op.input_shape[0] if options.get("vectorial") else 1
        regulariser = pyproximal.L21(ndim=axes * channels, sigma=lam)
    expected = reference_tv(
        a, d, b, lam, regulariser=regulariser, nonneg=options.get("nonneg", False)
    )
    b_before = b.copy()
    result = tc.solve_tv(op, b, lam, rtol=1e-9, maxiter=20000, **options)
    np.testing.assert_array_equal(b, b_before)
    assert result.converged
    assert result.method == {"circular": "fourier", "replicate": "cosine"}.get(mode, "pcg")

    def objective(x):
        return 0.5 * np.sum((a @ x - b) ** 2) + regulariser(d @ x)

    assert objective(result.x) <= objective(expected) * (1 + 1e-7)
    np.testing.assert_allclose(result.x, expected, atol=2e-4 * np.abs(expected).max())
    history = result.objective
    assert history[-1] == pytest.approx(objective(result.x), rel=1e-12)
    assert history[-1] <= history.min() + 1e-9 * history.min()
    assert len(result.primal_residuals) == len(result.dual_residuals) == result.iterations
    if options.get("nonneg"):
        assert result.x.min() >= 0.0
    isotropic, vectorial = options.get("isotropic", True), options.get("vectorial", False)
    tv = tc.total_variation(
        result.x.reshape(op.input_shape), boundary, isotropic=isotropic, vectorial=vectorial
    )
    assert lam * tv == pytest.approx(regulariser(d @ result.x), rel=1e-12)


def test_a_batch_is_each_items_own_solve_and_keeps_its_layout():
    op, b = _problem("circular")
    rng = np.random.default_rng(3)
    batch = np.stack([b.reshape(op.output_shape), rng.standard_normal(op.output_shape)])
    result = tc.solve_tv(op, batch, 0.05, rtol=1e-8, maxiter=5000)
    assert result.x.shape == (2, *op.input_shape)
    for item, data in zip(result.x, batch):
        np.testing.assert_allclose(item, tc.solve_tv(op, data, 0.05, rtol=1e-8, maxiter=5000).x)
    flat = tc.solve_tv(op, batch.reshape(2, -1), 0.05, rtol=1e-8, maxiter=5000)
    assert flat.x.shape == (2, op.shape[1])
    single = tc.solve_tv(op, batch[0], 0.05, rtol=1e-8, maxiter=5000)
    assert single.x.shape == op.input_shape


def test_solve_tv_refuses_bad_input_in_one_line():
    op, b = _problem("zeros")
    cases = [
        (dict(lam=-0.1), "lam"),
        (dict(b=np.full_like(b, np.nan)), "b must be finite"),
        (dict(b=np.ones((2, 2, 6, 4))), "b must be flat"),
        (dict(b=b + 1j), "real"),
        (dict(rho=-1.0), "rho"),
        (dict(callback=3), "callback"),
        (dict(x0=np.ones(5)), "x0"),
    ]
    for change, name in cases:
        arguments = dict(b=b, lam=0.1) | change
        with pytest.raises((ValueError, TypeError), match=name) as error:
            tc.solve_tv(op, arguments.pop("b"), arguments.pop("lam"), **arguments)
        assert "\n" not in str(error.value)


def test_the_callback_sees_every_iterate():
    op, b = _problem("replicate")
    seen = []
    result = tc.solve_tv(op, b, 0.05, maxiter=7, rtol=1e-12, callback=seen.append)
    assert len(seen) == result.iterations == 7
    np.testing.assert_array_equal(seen[-1], result.x)
