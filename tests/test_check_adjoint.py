"""check_adjoint: the report, its PyTorch comparisons, and failure detection."""

import numpy as np
import pytest
from hypothesis import given, settings
from oracles import assert_close, conv, conv_transpose, conv_vjp
from strategies import examples, layer_cases, random_array, transpose_cases

import toeplitz_conv as tc
from toeplitz_conv.interop.torch_interop import torch_conv, torch_conv_transpose, torch_conv_vjp


@settings(max_examples=examples(60), deadline=None)
@given(case=layer_cases())
def test_check_adjoint_passes_for_random_convs(case):
    op = tc.Conv(case.weight, case.input_shape, **case.kwargs())
    report = tc.check_adjoint(op, seed=0)
    assert report.passed, report
    assert report.matrix_identity == 0.0
    assert report.engine_agreement is not None
    assert report.torch_forward is not None and report.torch_autograd is not None
    assert (report.torch_conv_transpose is not None) == (case.mode == "zeros")


@settings(max_examples=examples(60), deadline=None)
@given(case=transpose_cases())
def test_check_adjoint_passes_for_random_conv_transposes(case):
    op = tc.ConvTranspose(case.weight, case.input_shape, **case.kwargs())
    report = tc.check_adjoint(op, seed=1, raise_on_failure=True)
    assert report.matrix_identity == 0.0


@settings(max_examples=examples(40), deadline=None)
@given(case=layer_cases())
def test_library_torch_references_equal_the_test_oracles(case):
    op = tc.Conv(case.weight, case.input_shape, **case.kwargs())
    rng = np.random.default_rng(5)
    x = random_array(rng, (1, *case.input_shape), case.dtype)
    v = random_array(rng, (1, *op.output_shape), case.dtype)
    g, w = op.geometry, case.weight
    # both sides are PyTorch: they agree to the precision's rounding, relative to the output
    assert_close(torch_conv(g, w, x), conv(x, w, **case.oracle_kwargs()), case.dtype)
    assert_close(
        torch_conv_vjp(g, w, v), conv_vjp(v, x.shape, w, **case.oracle_kwargs()), case.dtype
    )
    if case.mode == "zeros":
        op_pad = tc.Conv(w, case.input_shape, **case.kwargs()).H.output_padding
        expected = conv_transpose(
            v,
            w,
            stride=case.stride,
            pads=case.pads,
            output_padding=op_pad,
            dilation=case.dilation,
            groups=case.groups,
        )
        assert_close(torch_conv_transpose(g, w, v), expected, case.dtype)


def test_report_repr_and_failure_detection():
    rng = np.random.default_rng(0)
    op = tc.Conv(rng.standard_normal((2, 2, 3, 3)), (2, 6, 6), padding=1)
    report = tc.check_adjoint(op, seed=0)
    text = repr(report)
    assert text.startswith("AdjointCheck(PASSED") and "dot_test" in text and "torch_forward" in text
    assert "engine_agreement" in text

    class Broken(tc.Conv):
        def _rmatvec(self, x):
            return 1.01 * super()._rmatvec(x)

    broken = Broken(op.weight, op.input_shape, padding=1)
    bad = tc.check_adjoint(broken, seed=0)
    assert not bad.passed and "FAIL" in repr(bad)
    with pytest.raises(AssertionError, match="FAILED"):
        tc.check_adjoint(broken, seed=0, raise_on_failure=True)


def test_matrix_identity_is_skipped_over_budget_with_a_note():
    op = tc.Conv(np.ones((2, 2, 3)), (2, 40), padding=1)
    vectors = 12 * (op.shape[0] + op.shape[1]) * 16  # the check's vectors fit, two matrices not
    report = tc.check_adjoint(op, seed=0, max_bytes=vectors + op.nbytes)
    assert report.matrix_identity is None and report.engine_agreement is None
    assert any("matrix identity and engine agreement skipped" in note for note in report.notes)


def test_check_adjoint_runs_the_dot_test_on_any_linear_operator():
    import pylops
    import scipy.sparse.linalg as spla

    op = tc.Conv(np.random.default_rng(0).standard_normal((4, 2, 3, 3)), (2, 9, 8), padding=1)
    for linear in (2 * op, pylops.MatrixMult(np.arange(12.0).reshape(3, 4)) * 3, op.H @ op):
        report = tc.check_adjoint(linear, seed=1)
        assert report.passed and report.dot_test < 1e-12
        assert report.matrix_identity is None and report.torch_forward is None
        assert any(note.startswith("dot test only") for note in report.notes)
    # an operator whose rmatvec is not its adjoint fails the dot test
    matrix = np.random.default_rng(2).standard_normal((5, 7))
    wrong = spla.LinearOperator(
        matrix.shape, matvec=lambda x: matrix @ x, rmatvec=lambda y: 1.01 * matrix.T @ y
    )
    assert not tc.check_adjoint(wrong, seed=0).passed


def test_check_adjoint_rejects_what_is_not_a_linear_operator():
    with pytest.raises(TypeError, match="op must be a linear operator") as raised:
        tc.check_adjoint("conv")
    assert raised.value.parameter == "op"


def test_dot_test_survives_cancellation_and_still_catches_a_wrong_adjoint():
    # a float32 layer whose <y, Ax> cancels to 5e-5 of ||y|| ||Ax|| for this seed: the
    # products' own rounding is not a failure
    weight = np.random.default_rng(7).standard_normal((4, 1, 2, 3, 2)).astype(np.float32)
    op = tc.Conv(
        weight,
        (2, 3, 9, 2),
        dilation=(2, 2, 1),
        groups=2,
        padding=(0, 3, 0),
        padding_mode="reflect",
    )
    for seed in range(20):
        assert tc.check_adjoint(op, seed=seed).dot_test < 1e-5
    import scipy.sparse.linalg as spla

    matrix = np.random.default_rng(2).standard_normal((400, 300)).astype(np.float32)
    wrong = spla.LinearOperator(
        matrix.shape,
        matvec=lambda x: matrix @ x,
        rmatvec=lambda y: 1.01 * (matrix.T @ y),
        dtype=np.float32,
    )
    assert not tc.check_adjoint(wrong, seed=0).passed


def _with_direct_engine(monkeypatch, engine_class: str) -> None:
    """Register a deliberately wrong engine (tests/perturbed_engine.py) as "direct"."""
    from toeplitz_conv import engines

    monkeypatch.setitem(engines._REGISTRY, "direct", ("perturbed_engine", engine_class))


def _layer(transposed=False, mode="zeros", engine="direct"):
    rng = np.random.default_rng(3)
    cls = tc.ConvTranspose if transposed else tc.Conv
    return cls(
        rng.standard_normal((3, 2, 3, 3)),
        (3 if transposed else 2, 7, 6),
        padding=1,
        stride=2,
        padding_mode=mode,
        engine=engine,
    )


def _failed(report) -> set[str]:
    return {name for name, error in report.errors().items() if error > report.rtol}


@pytest.mark.parametrize("transposed", [False, True])
def test_each_pytorch_comparison_fails_for_a_scaled_layer(monkeypatch, transposed):
    _with_direct_engine(monkeypatch, "ScaledEngine")
    report = tc.check_adjoint(_layer(transposed), seed=0)
    # a consistent adjoint: the dot test and the matrices pass; every value comparison fails
    assert _failed(report) == {
        "engine_agreement",
        "torch_forward",
        "torch_autograd",
        "torch_conv_transpose",
    }, report
    assert report.dot_test <= report.rtol and report.matrix_identity == 0.0


def test_engine_agreement_alone_fails_when_only_a_matrix_free_engine_is_wrong(monkeypatch):
    _with_direct_engine(monkeypatch, "ScaledEngine")
    report = tc.check_adjoint(_layer(engine="sparse", mode="reflect"), seed=0)
    assert _failed(report) == {"engine_agreement"}, report


@pytest.mark.parametrize("transposed", [False, True])
def test_the_dot_test_fails_for_an_adjoint_that_is_not_one(monkeypatch, transposed):
    _with_direct_engine(monkeypatch, "WrongAdjointEngine")
    report = tc.check_adjoint(_layer(transposed), seed=0)
    assert "dot_test" in _failed(report), report
    # the direction whose product is wrong is caught against PyTorch too
    assert {"torch_autograd", "torch_forward"} & _failed(report), report
    assert not report.passed


def test_the_matrix_identity_fails_for_a_matrix_that_is_not_the_partner_transposed():
    class OffByOne(tc.Conv):
        """A layer whose assembled matrix has one wrong entry."""

        def tosparse(self, *args, **kwargs):
            matrix = super().tosparse(*args, **kwargs)
            matrix.data[len(matrix.data) // 2] += 1e-6
            return matrix

    rng = np.random.default_rng(4)
    op = OffByOne(rng.standard_normal((3, 2, 3, 3)), (2, 7, 6), padding=1, engine="direct")
    report = tc.check_adjoint(op, seed=0)
    assert _failed(report) == {"matrix_identity"}, report
    assert report.matrix_identity == pytest.approx(1e-6, rel=1e-3)
