"""One owner per layer: the operator's numbers never change behind it, and what it hands out
belongs to the caller (issue: immutable state, one engine seam, user-owned matrices)."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import threading

import numpy as np
import pytest
import torch
from conftest import random_vector, zoo

import toeplitz_conv as tc
import toeplitz_conv.engines.sparse as sparse_module


# --- 1. the weight is the layer's own ---------------------------------------------------
@pytest.mark.parametrize("engine", ["sparse", "direct", "auto"])
def test_editing_the_callers_weight_changes_nothing(engine):
    w = np.ones((1, 1, 3))
    op = tc.Conv(w, (1, 5), padding=1, engine=engine)
    x = np.arange(5.0)
    before = op.matvec(x)
    w *= 10
    np.testing.assert_array_equal(op.matvec(x), before)
    np.testing.assert_array_equal(op.with_engine("direct").matvec(x), before)
    np.testing.assert_array_equal(op.tosparse() @ x, before)
    assert not op.weight.flags.writeable and not np.shares_memory(op.weight, w)
    with pytest.raises(ValueError, match="read-only"):
        op.weight[0, 0, 0] = 5.0


def test_from_torch_copies_the_module_weight():
    torch.manual_seed(0)
    module = torch.nn.Conv2d(2, 3, 3, padding=1)
    op = tc.from_torch(module, (2, 6, 6))
    x = np.random.default_rng(0).standard_normal((2, 6, 6)).astype(np.float32)
    before = op.apply(x)
    with torch.no_grad():  # what an optimizer step does
        module.weight.mul_(3.0)
        module.bias.add_(1.0)
    np.testing.assert_array_equal(op.apply(x), before)


def test_bias_is_copied_and_read_only():
    bias = np.ones(2)
    op = tc.Conv(np.ones((2, 1, 3)), (1, 5), bias=bias)
    bias[:] = 7
    np.testing.assert_array_equal(op.bias, [1.0, 1.0])
    assert not op.bias.flags.writeable


# --- 2. one engine seam -------------------------------------------------------------------
def test_concurrent_first_products_assemble_once(monkeypatch):
    calls = []
    real = sparse_module.assemble_csr

    def slow_assembly(*args, **kwargs):
        calls.append(1)
        threading.Event().wait(0.05)  # widen the race
        return real(*args, **kwargs)

    monkeypatch.setattr(sparse_module, "assemble_csr", slow_assembly)
    op = tc.Conv(np.ones((3, 2, 3, 3)), (2, 8, 8), padding=1, engine="sparse")
    start = threading.Barrier(4)
    results = [None] * 4

    def work(i):
        start.wait()
        results[i] = op.matvec(np.ones(op.shape[1]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


@pytest.mark.parametrize(
    "make",
    [
        lambda e: tc.Conv(np.ones((1, 1, 3)), (1, 5), engine=e),
        lambda e: tc.ConvTranspose(np.ones((1, 1, 3)), (1, 5), engine=e),
        lambda e: tc.Conv(np.ones((1, 1, 3)), (1, 5)).with_engine(e),
        lambda e: tc.from_torch(torch.nn.Conv1d(1, 1, 3), (1, 5), engine=e),
    ],
)
def test_unknown_engine_is_refused_wherever_it_can_be_set(make):
    with pytest.raises(tc.ParameterError, match="engine must be one of") as info:
        make("gpu")
    assert info.value.parameter == "engine"


def test_every_product_goes_through_one_batch_entry_point(any_op, monkeypatch):
    seen = []
    real = type(any_op)._apply_batch

    def spy(self, batch, adjoint):
        seen.append((batch.shape, adjoint))
        return real(self, batch, adjoint)

    monkeypatch.setattr(type(any_op), "_apply_batch", spy)
    rows, cols = any_op.shape
    any_op.matvec(np.ones(cols))
    any_op.rmatvec(np.ones(rows))
    any_op.matmat(np.ones((cols, 2)))
    any_op.rmatmat(np.ones((rows, 3)))
    any_op.apply(np.ones((2, *any_op.input_shape)))
    assert [adjoint for _, adjoint in seen] == [False, True, False, True, False]
    assert [shape[0] for shape, _ in seen] == [1, 1, 2, 3, 2]


# --- 3. transposition and conjugation, every view equal to the matrix ---------------------
def test_every_view_and_format_equals_the_dense_matrix(any_op):
    dense = any_op.todense()
    for view, expected in [
        (any_op, dense),
        (any_op.H, dense.conj().T),
        (any_op.T, dense.T),
        (any_op.H.T, dense.conj()),
        (any_op.H.H, dense),
    ]:
        for fmt in ("csr", "csc", "coo", "bsr"):
            matrix = view.tosparse(fmt)
            assert matrix.format == fmt
            np.testing.assert_array_equal(matrix.toarray(), expected)
        rng = np.random.default_rng(0)
        x = random_vector(rng, view.shape[1], np.complex128)
        y = random_vector(rng, view.shape[0], np.complex128)
        # rounding bounds entry by entry: a few units of the precision times |A| |x|
        single = any_op.dtype in (np.float32, np.complex64)
        units = 64 * np.finfo(np.float32 if single else np.float64).eps
        for engine in ("sparse", "direct"):
            engine_view = view.with_engine(engine)
            for product, matrix, v in (
                (engine_view.matvec, expected, x),
                (engine_view.rmatvec, expected.conj().T, y),
            ):
                bound = units * (np.abs(matrix) @ np.abs(v)) + np.finfo(float).tiny
                assert np.all(np.abs(product(v) - matrix @ v) <= bound), (engine, view)


# --- 5. matrices handed out are the caller's ----------------------------------------------
MUTATIONS = {
    "resize larger": lambda A: A.resize((A.shape[0] + 30, A.shape[1] + 20)),
    "resize smaller": lambda A: A.resize((10, 10)),
    "setdiag": lambda A: A.setdiag(5.0, k=6),
    "rebind data": lambda A: setattr(A, "data", np.zeros_like(A.data)),
    "write data": lambda A: A.data.__setitem__(slice(None), 0),
    "write indices": lambda A: A.indices.__setitem__(slice(None), 0),
    "in-place multiply": lambda A: A.__imul__(3.0),
    "eliminate_zeros": lambda A: (A.data.__setitem__(slice(None, None, 2), 0), A.eliminate_zeros()),
    "sort_indices": lambda A: (setattr(A, "has_sorted_indices", False), A.sort_indices()),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
@pytest.mark.parametrize("fmt", ["csr", "csc", "bsr"])
def test_mutating_a_returned_matrix_never_reaches_the_operator(mutation, fmt):
    for op in zoo()[:4]:
        for view in (op, op.with_engine("sparse")):
            x = random_vector(np.random.default_rng(1), view.shape[1], view.dtype)
            before, dense = view.matvec(x), view.todense()
            matrix = view.tosparse(fmt)
            try:
                MUTATIONS[mutation](matrix)
            except (ValueError, NotImplementedError, AttributeError):
                pass  # scipy refuses some mutations on some formats; none may crash
            np.testing.assert_array_equal(view.matvec(x), before)
            np.testing.assert_array_equal(view.todense(), dense)


def test_mutating_todense_and_coo_results_never_reaches_the_operator():
    op = zoo()[0]
    before = op.todense()
    dense = op.todense()
    dense[:] = 1.0
    coo = op.tosparse("coo")
    coo.data[:] = 0
    coo.coords[0][:] = 0
    np.testing.assert_array_equal(op.todense(), before)
    np.testing.assert_array_equal(op.tosparse().toarray(), before)


# --- 6. pickle, deepcopy and processes ------------------------------------------------------
@pytest.mark.parametrize("when", ["new", "after products", "after .H", "assembled"])
def test_pickle_and_deepcopy_at_any_time(any_op, when):
    rng = np.random.default_rng(2)
    x = random_vector(rng, any_op.shape[1], any_op.dtype)
    op = any_op
    if when != "new":
        op.matvec(x)
        op.rmatvec(random_vector(rng, op.shape[0], op.dtype))
    if when == "after .H":
        op = op.H.H
        op.H.matvec(random_vector(rng, op.shape[0], op.dtype))
    if when == "assembled":
        op = op.with_engine("sparse")
        op.matvec(x)
    expected = op.matvec(x)
    for clone in (pickle.loads(pickle.dumps(op)), copy.deepcopy(op)):
        assert type(clone) is type(op) and clone.shape == op.shape
        np.testing.assert_array_equal(clone.matvec(x), expected)
        np.testing.assert_array_equal(clone.todense(), op.todense())
        assert not clone.weight.flags.writeable
        assert clone.layer is not op.layer


def test_a_spawn_pool_maps_matvec():
    op = zoo()[2]  # reflect, float32, direct after a product
    rng = np.random.default_rng(3)
    xs = [random_vector(rng, op.shape[1], op.dtype) for _ in range(3)]
    op.matvec(xs[0])
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(op.matvec, xs)
    for x, y in zip(xs, results):
        np.testing.assert_array_equal(y, op.matvec(x))


# --- 8. inputs like scipy's -----------------------------------------------------------------
def test_products_accept_lists_and_array_likes():
    op = tc.Conv(np.array([[[1.0, 2.0, 3.0]]]), (1, 4), padding=1)
    expected = op.matvec(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(op.matvec([1.0, 2.0, 3.0, 4.0]), expected)
    np.testing.assert_array_equal(op @ [1, 2, 3, 4], expected)
    np.testing.assert_array_equal(op.dot((1, 2, 3, 4)), expected)
    np.testing.assert_array_equal(op.rmatvec([1, 0, 0, 0]), op.todense()[0])
    np.testing.assert_array_equal(op.matmat([[1], [2], [3], [4]])[:, 0], expected)
    np.testing.assert_array_equal(op.rmatmat([[1], [0], [0], [0]])[:, 0], op.todense()[0])
    np.testing.assert_array_equal(op.apply([[1, 2, 3, 4]]), expected[None])


@pytest.mark.parametrize(
    "bad",
    [
        ["a", "b", "c", "d"],
        np.array(["2020-01-01"] * 4, dtype="datetime64[D]"),
        np.array([1.0, None, 2.0, 3.0], dtype=object),
    ],
    ids=["strings", "datetimes", "objects"],
)
@pytest.mark.parametrize("method", ["matvec", "rmatvec", "dot", "apply"])
def test_non_numeric_inputs_are_refused_naming_the_argument(bad, method):
    op = tc.Conv(np.ones((1, 1, 3)), (1, 4), padding=1)
    argument = bad if method != "apply" else [bad]
    with pytest.raises(TypeError, match=r"^x must hold numbers") as info:
        getattr(op, method)(argument)
    assert info.value.parameter == "x"


# --- 9. non-finite weights --------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_weights_and_biases_are_refused(value):
    w = np.ones((1, 1, 3))
    w[0, 0, 2] = value
    with pytest.raises(tc.ParameterError, match="weight must be finite") as info:
        tc.Conv(w, (1, 5), padding=1)
    assert info.value.parameter == "weight"
    with pytest.raises(tc.ParameterError, match="weight must be finite"):
        tc.ConvTranspose(w, (1, 5), padding=1)
    with pytest.raises(tc.ParameterError, match="bias must be finite"):
        tc.Conv(np.ones((1, 1, 3)), (1, 5), bias=[value])
