"""Geometry, transpose_geometry, PADDING_MODES and Layer, tested directly against PyTorch
and brute force."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from oracles import TORCH_PAD_MODE, torch_pad_arg
from strategies import examples, layer_cases, transpose_cases

import toeplitz_conv as tc

CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _geometry(case):
    return tc.conv_geometry(
        case.weight.shape,
        case.input_shape,
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        groups=case.groups,
        padding_mode=case.mode,
    )


@settings(max_examples=examples(60), deadline=None)
@given(case=layer_cases(dtypes=(np.float64,)))
def test_conv_geometry_shapes_equal_pytorchs(case):
    g = _geometry(case)
    assert g.pads == case.pads  # resolved independently by the strategy (ONNX SAME_UPPER)
    x = torch.zeros((1, *case.input_shape), dtype=torch.float64)
    padded = (
        F.pad(x, torch_pad_arg(case.pads))
        if case.mode != "reflect"
        else F.pad(x, torch_pad_arg(case.pads), mode="reflect")
    )
    y = CONV[g.ndim](
        padded,
        torch.as_tensor(case.weight),
        stride=case.stride,
        dilation=case.dilation,
        groups=case.groups,
    )
    assert g.output_shape == tuple(y.shape[1:])
    assert g.matrix_shape == (math.prod(g.output_shape), math.prod(g.input_shape))
    assert g.weight_shape == case.weight.shape and g.taps == math.prod(case.weight.shape[2:])
    assert (
        g.in_per_group * g.groups == g.in_channels and g.out_per_group * g.groups == g.out_channels
    )


@settings(max_examples=examples(60), deadline=None)
@given(case=layer_cases(dtypes=(np.float64,)))
def test_axis_index_maps_equal_the_padded_positions_pytorch_reads(case):
    """Per axis, the sample PyTorch's F.pad puts at each padded position read by a tap."""
    g = _geometry(case)
    for axis in range(g.ndim):
        n = g.input_spatial[axis]
        pads = case.pads[axis]
        marks = torch.arange(1.0, n + 1, dtype=torch.float64).reshape(1, 1, n)
        mode = TORCH_PAD_MODE[case.mode]
        if case.mode == "circular" and max(pads) > n:  # F.pad wraps once: numpy's wrap
            padded = np.pad(marks.numpy()[0, 0], pads, mode="wrap")
        else:
            padded = F.pad(marks, pads, mode=mode).numpy()[0, 0]
        index = g.axis_index_map(axis)
        positions = (
            np.arange(g.output_spatial[axis])[:, None] * g.stride[axis]
            + np.arange(g.kernel[axis])[None, :] * g.dilation[axis]
        )
        expected = padded[positions].astype(int) - 1  # -1: a zero pad
        np.testing.assert_array_equal(index, expected)


@settings(max_examples=examples(60), deadline=None)
@given(case=transpose_cases(modes=("zeros",), dtypes=(np.float64,)))
def test_transpose_geometry_output_equals_pytorchs_conv_transpose(case):
    g = tc.transpose_geometry(
        case.weight.shape,
        case.input_shape,
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        groups=case.groups,
        output_padding=case.output_padding,
    )
    if all(pb == pa for pb, pa in case.pads):
        y = CONV_T[len(case.stride)](
            torch.zeros((1, *case.input_shape), dtype=torch.float64),
            torch.as_tensor(case.weight),
            stride=case.stride,
            padding=[p for p, _ in case.pads],
            output_padding=case.output_padding,
            dilation=case.dilation,
            groups=case.groups,
        )
        assert g.input_shape == tuple(y.shape[1:])  # the conv's input: the transpose's output
    assert g.output_spatial == tuple(case.input_shape[1:])
    assert g.transpose_output_padding == tuple(case.output_padding) or any(
        o >= s for o, s in zip(case.output_padding, case.stride)
    )


@pytest.mark.parametrize("name", ["zeros", "circular", "reflect", "replicate"])
def test_padding_modes_fold_as_pytorchs_pad(name):
    mode = tc.PADDING_MODES[name]
    n = 5
    pads = (4, 3) if name == "reflect" else (7, 6)
    q = np.arange(-pads[0], n + pads[1])
    folded = mode.fold(q, n)
    marks = torch.arange(1.0, n + 1, dtype=torch.float64).reshape(1, 1, n)
    if name == "circular":  # wraps more than once: numpy's "wrap" is the periodic extension
        expected = np.pad(marks.numpy()[0, 0], pads, mode="wrap")
    else:
        expected = F.pad(marks, pads, mode=TORCH_PAD_MODE[name]).numpy()[0, 0]
    np.testing.assert_array_equal(folded, expected.astype(int) - 1)
    assert mode.drops_reads == (name == "zeros")
    if name == "reflect":
        with pytest.raises(tc.ParameterError, match="pad < input size"):
            mode.check_pads([(n, 0)], [n])


def test_layer_owns_its_state_and_caches():
    rng = np.random.default_rng(0)
    op = tc.Conv(rng.standard_normal((4, 2, 3, 3)), (2, 6, 5), padding=1, engine="sparse")
    layer = op.layer
    assert isinstance(layer, tc.Layer)
    assert layer.nnz == op.nnz == layer.geometry.nnz
    assert not layer.weight.flags.writeable and layer.dtype == np.float64
    assert op.H.layer is layer and op.with_engine("direct").layer is layer
    matrix = layer.assemble()
    np.testing.assert_array_equal(matrix.toarray(), op.todense())
    np.testing.assert_array_equal(layer.assemble(transposed=True).toarray(), op.todense().T)
    assert not layer.has_engine("sparse")
    op.matvec(np.ones(op.shape[1]))
    assert layer.has_engine("sparse")
    assert layer.engine("sparse") is layer.engine("sparse")  # built once, cached
    copy = pickle.loads(pickle.dumps(op))
    assert not copy.layer.has_engine("sparse")  # caches are not pickled, rebuilt on use
    np.testing.assert_array_equal(copy.todense(), op.todense())
