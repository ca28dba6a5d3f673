"""Engines: sparse and direct (matrix-free) agree with each other and with PyTorch."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from oracles import assert_close, conv, conv_vjp
from strategies import examples, layer_cases, random_array, transpose_cases

import toeplitz_conv as tc
from toeplitz_conv.engines import installed_engines

ENGINE_NAMES = installed_engines()  # "numba" too when it is installed (the test extra has it)
MATRIX_FREE = [name for name in ENGINE_NAMES if name != "sparse"]


@settings(max_examples=examples(200), deadline=None)
@given(case=layer_cases())
def test_engines_agree_on_conv_layers(case):
    _check_every_engine_against_torch(case)


@settings(max_examples=examples(60), deadline=None)
@given(case=layer_cases(channels=(4, 5, 7, 8, 10)))
def test_engines_agree_on_layers_of_more_channels(case):
    """Four or more channels per group (the compiled loops' four-at-a-time path, with
    the padded blocks of 7 and 10, in both directions)."""
    _check_every_engine_against_torch(case)


def _check_every_engine_against_torch(case) -> None:
    rng = np.random.default_rng(0)
    ops = {
        e: tc.Conv(case.weight, case.input_shape, **case.kwargs(), engine=e) for e in ENGINE_NAMES
    }
    x = random_array(rng, (3, *case.input_shape), case.dtype)
    v = random_array(rng, (1, *ops["sparse"].output_shape), case.dtype)
    forward = conv(x, case.weight, **case.oracle_kwargs())
    adjoint = conv_vjp(v, (1, *case.input_shape), case.weight, **case.oracle_kwargs())
    scale = float(np.abs(case.weight).sum())
    for op in ops.values():
        assert_close(op.matvec(x[0].ravel()), forward[0].ravel(), case.dtype, scale)
        assert_close(op.matmat(x.reshape(3, -1).T), forward.reshape(3, -1).T, case.dtype, scale)
        assert_close(op.rmatvec(v.ravel()), adjoint.ravel(), case.dtype, scale)
        assert_close(
            op.rmatmat(np.stack([v.ravel()] * 2, axis=1))[:, 1], adjoint.ravel(), case.dtype, scale
        )
        assert_close(op.H.matvec(v.ravel()), adjoint.ravel(), case.dtype, scale)
    for name in ENGINE_NAMES:
        assert ops[name].apply(x).dtype == case.dtype
        assert_close(ops[name].apply(x), ops["sparse"].apply(x), case.dtype, scale)


@settings(max_examples=examples(150), deadline=None)
@given(case=transpose_cases())
def test_engines_agree_on_conv_transpose_layers(case):
    rng = np.random.default_rng(1)
    sparse = tc.ConvTranspose(case.weight, case.input_shape, **case.kwargs(), engine="sparse")
    x = random_array(rng, (2, *case.input_shape), case.dtype)
    y = random_array(rng, (2, *sparse.output_shape), case.dtype)
    scale = float(np.abs(case.weight).sum())
    for name in MATRIX_FREE:
        op = tc.ConvTranspose(case.weight, case.input_shape, **case.kwargs(), engine=name)
        assert_close(op.apply(x), sparse.apply(x), case.dtype, scale)
        assert_close(op.rmatvec(y[0].ravel()), sparse.rmatvec(y[0].ravel()), case.dtype, scale)
        assert_close(op.T.matvec(y[1].ravel()), sparse.T.matvec(y[1].ravel()), case.dtype, scale)
        assert_close(op.H.matvec(y[1].ravel()), sparse.H.matvec(y[1].ravel()), case.dtype, scale)


@pytest.mark.parametrize(
    "input_shape, kernel, stride, padding, dilation, groups, mode, path",
    [
        ((16, 70, 40), (3, 3), 1, 1, 1, 1, "zeros", "wide, tiled"),
        ((4, 9, 11, 10), (3, 2, 3), 1, 2, (1, 2, 1), 2, "reflect", "wide"),
        ((4, 300), (5,), 1, 4, 3, 2, "circular", "wide"),
        ((6, 20, 30), (3, 3), 1, 1, 1, 6, "zeros", "wide"),  # depthwise, small image
        ((6, 40, 60), (3, 3), 1, 1, 1, 6, "zeros", "depthwise"),
        ((6, 6, 12, 14), (2, 3, 3), 1, 2, (1, 1, 2), 6, "replicate", "depthwise"),
        ((4, 3, 3), (5, 5), 1, 4, 1, 1, "replicate", "taps"),  # too wide a grid
        ((16, 140, 80), (3, 3), 2, 1, 1, 2, "zeros", "taps, tiled"),  # strided
    ],
)
def test_direct_im2col_paths_match_torch(
    input_shape, kernel, stride, padding, dilation, groups, mode, path
):
    """Each forward path (wide grid, depthwise, window per tap), pinned to its cases."""
    rng = np.random.default_rng(2)
    weight = rng.standard_normal((6, input_shape[0] // groups, *kernel))
    op = tc.Conv(
        weight,
        input_shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=mode,
        engine="direct",
    )
    engine = op.layer.engine("direct")
    assert engine.path == path.split(",")[0]
    if engine.path != "depthwise":  # which blocks channels, not im2col tiles
        assert (len(engine.tiles(2, np.float64)) > 1) == path.endswith("tiled")
    d = len(kernel)
    oracle = dict(
        stride=(stride,) * d,
        pads=op.geometry.pads,
        dilation=op.geometry.dilation,
        groups=groups,
        mode=mode,
    )
    x = rng.standard_normal((2, *input_shape))
    v = rng.standard_normal((1, *op.output_shape))
    scale = float(np.abs(weight).sum())
    assert_close(op.apply(x), conv(x, weight, **oracle), np.float64, scale)
    adjoint = conv_vjp(v, (1, *input_shape), weight, **oracle)
    assert_close(op.rmatvec(v.ravel()), adjoint.ravel(), np.float64, scale)


@pytest.mark.parametrize("dtype", [np.complex64, np.float32])
def test_depthwise_direct_equals_the_matrix(dtype):
    """The depthwise path (no GEMM) against the assembled matrix, both directions."""
    rng = np.random.default_rng(3)
    weight = random_array(rng, (5, 1, 3, 4), dtype)
    sparse, direct = (
        tc.Conv(weight, (5, 40, 60), padding="same", groups=5, engine=e)
        for e in ("sparse", "direct")
    )
    assert direct.layer.engine("direct").path == "depthwise"
    x = random_array(rng, (direct.shape[1],), dtype)
    y = random_array(rng, (direct.shape[0],), dtype)
    scale = float(np.abs(weight).sum())
    assert_close(direct.matvec(x), sparse.tosparse() @ x, dtype, scale)
    assert_close(direct.rmatvec(y), sparse.tosparse().conj().T @ y, dtype, scale)


def test_auto_uses_the_matrix_while_it_is_small_whatever_was_called_before(monkeypatch):
    """The rule without numba (with it, see test_compiled.py)."""
    from toeplitz_conv import engines
    from toeplitz_conv.engines import AUTO_SPARSE_NNZ, AUTO_SPARSE_NNZ_DEPTHWISE

    monkeypatch.setattr(engines, "numba_installed", lambda: False)

    op = tc.Conv(np.ones((2, 2, 3)), (2, 9), padding=1)
    assert op.engine == "auto" and op.engine_in_use == "sparse"
    assert "engine auto (sparse)" in op.summary()
    x = np.arange(18.0)
    before = op.matvec(x)
    op.tosparse()
    assert op.engine_in_use == "sparse"
    np.testing.assert_allclose(op.matvec(x), before)
    assert (
        op.H.engine == "auto"
        and tc.Conv(np.ones((1, 1, 1)), (1, 2), engine="direct").T.engine == "direct"
    )
    cases = [  # (weight shape, input shape, groups, nonzeros limit)
        ((4, 4, 3), (4, 4096), 1, AUTO_SPARSE_NNZ),
        ((8, 1, 3, 3), (8, 128, 128), 8, AUTO_SPARSE_NNZ_DEPTHWISE),
    ]
    for weight_shape, input_shape, groups, limit in cases:
        big = tc.Conv(np.ones(weight_shape), input_shape, padding=1, groups=groups)
        big.tosparse()  # past the thresholds the direct engine is faster, assembled or not
        assert big.nnz > limit and big.engine_in_use == "direct"
        big.matvec(np.ones(big.shape[1]))
        assert not big.layer.has_engine("sparse")
        small_shape = (input_shape[0], *(8 for _ in input_shape[1:]))
        small = tc.Conv(np.ones(weight_shape), small_shape, padding=1, groups=groups)
        assert small.nnz <= limit and small.engine_in_use == "sparse"


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_empty_batches(engine):
    weight, bias = np.ones((4, 2, 3, 3)), np.ones(4)
    op = tc.Conv(weight, (4, 9, 9), padding=1, stride=2, groups=2, bias=bias, engine=engine)
    assert op.apply(np.zeros((0, 4, 9, 9))).shape == (0, *op.output_shape)
    assert op.matmat(np.zeros((op.shape[1], 0))).shape == (op.shape[0], 0)
    assert op.rmatmat(np.zeros((op.shape[0], 0))).shape == (op.shape[1], 0)
    assert op.H.matmat(np.zeros((op.shape[0], 0))).shape == (op.shape[1], 0)


def test_unknown_engine():
    with pytest.raises(ValueError, match="engine must be one of"):
        tc.Conv(np.ones((1, 1, 3)), (1, 5), engine="gpu")


def test_big_layer_runs_matrix_free_under_1_gb_while_its_matrix_is_refused():
    """64->64, 3x3, float32 on 256x256: an explicit matrix of 2.4e9 nonzeros (~29 GB)."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((64, 64, 3, 3)) / 24).astype(np.float32)
    op = tc.Conv(w, (64, 256, 256), padding=1, engine="direct")
    assert op.nnz > 2.4e9
    x = rng.standard_normal(op.shape[1]).astype(np.float32)
    tracemalloc.start()
    y = op.matvec(x)
    z = op.rmatvec(y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert y.dtype == np.float32 and z.shape == x.shape
    assert peak < 1e9, f"peak {peak / 1e9:.2f} GB"
    with pytest.raises(tc.MatrixTooLargeError, match=f"{op.nnz} nonzeros"):
        op.tosparse(max_bytes=8 * 10**9)
    # spot-check one output pixel against the definition
    xi = x.reshape(64, 256, 256)
    expected = np.einsum("ckl,ckl->", w[5], xi[:, 99:102, 9:12])
    assert y.reshape(64, 256, 256)[5, 100, 10] == pytest.approx(expected, rel=1e-4)
