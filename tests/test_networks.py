"""conv_layers and lipschitz_report cover the network that runs, and leave it as it was.

The oracle of each layer is PyTorch itself: the dense Jacobian of the module as it
runs (on a deep copy of the model that took the same pass), and its SVD.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import torch
from torch.nn.utils import parametrizations

import toeplitz_conv as tc


class TwiceAsLoud(torch.nn.Conv2d):
    """A subclass of Conv2d (as libraries define their own convs)."""


def _jacobian_norm(module, input_shape) -> float:
    """sigma_max of the module's linear part at one sample, from autograd's Jacobian."""
    zero = torch.zeros((1, *input_shape), dtype=torch.float64)
    with torch.no_grad():
        offset = module(zero)
    jacobian = torch.autograd.functional.jacobian(lambda t: module(t) - offset, zero)
    matrix = jacobian.reshape(offset.numel(), zero.numel()).numpy()
    return float(np.linalg.svd(matrix, compute_uv=False)[0])


def _state(model):
    return (
        [m.training for m in model.modules()],
        {k: v.clone() for k, v in model.state_dict().items()},
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
    )


def _assert_same_state(before, after):
    assert before[0] == after[0]
    assert before[1].keys() == after[1].keys()
    for key in before[1]:
        assert torch.equal(before[1][key], after[1][key]), key
    for a, b in zip(before[2], after[2]):
        assert (a is None and b is None) or torch.equal(a, b)


def _model():
    torch.manual_seed(0)
    first = torch.nn.Conv2d(2, 4, 3, padding=1)
    with torch.no_grad():
        first.weight *= 10  # far from norm 1, so that reading W instead would show
    model = torch.nn.Sequential(
        parametrizations.spectral_norm(first),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        parametrizations.weight_norm(torch.nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")),
        TwiceAsLoud(4, 3, 3, stride=2, padding=1),
    ).double()
    model.train()
    for p in model.parameters():  # gradients that must survive the report
        p.grad = torch.full_like(p, 0.5)
    return model


def test_parametrized_and_subclassed_convs_are_reported_with_the_weights_that_run():
    model = _model()
    x = torch.randn(3, 2, 8, 8, dtype=torch.float64)
    before = _state(model)
    report = tc.lipschitz_report(model, x, echo=None)
    _assert_same_state(before, _state(model))
    assert [row.name for row in report.rows] == ["0", "3", "4"]
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin(x)  # the same pass: spectral norm's power step, BatchNorm's batch statistics
    twin.eval()  # spectral norm now uses the vectors of that step, as the pass did
    shapes = [(2, 8, 8), (4, 8, 8), (4, 8, 8)]
    for row, module, shape in zip(report.rows, (twin[0], twin[3], twin[4]), shapes):
        top = _jacobian_norm(module, shape)
        assert row.bounds.lower <= top * (1 + 1e-12) and top <= row.bounds.upper * (1 + 1e-12)
    raw = model[0].parametrizations.weight.original.detach().numpy()
    raw_norm = tc.norm_bounds(tc.Conv(raw, (2, 8, 8), padding=1))
    assert raw_norm.lower > 3 * report.rows[0].bounds.upper  # the normalised weight, not W
    assert report.product_lower <= math.prod(r.bounds.upper for r in report.rows)
    assert report.product_lower == pytest.approx(math.prod(r.bounds.lower for r in report.rows))
    assert report.product_lower > 0


def test_conv_transpose_called_with_output_size_is_rebuilt_at_that_size():
    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.up = torch.nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1).double()

        def forward(self, x):
            return self.up(x, output_size=(2 * x.shape[-2], 2 * x.shape[-1]))

    model = Decoder()
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    ((_, op),) = tc.conv_layers(model, x)
    assert op.output_shape == (2, 10, 10)
    with torch.no_grad():
        np.testing.assert_allclose(op.apply(x.numpy()), model(x).numpy(), atol=1e-12)
    bounds = tc.norm_bounds(op)
    top = float(np.linalg.svd(op.todense(), compute_uv=False)[0])
    jacobian_top = _jacobian_norm(model, (2, 5, 5))
    assert top == pytest.approx(jacobian_top, rel=1e-12)
    assert bounds.lower <= jacobian_top * (1 + 1e-12) <= bounds.upper * (1 + 2e-12)


def test_lazy_convs_are_reported_after_their_first_forward_and_refused_before():
    model = torch.nn.Sequential(torch.nn.LazyConv2d(3, 3, padding=1)).double()
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    with pytest.raises(TypeError, match="lazy module not yet initialised"):
        tc.conv_layers(model, x)
    model(x)
    ((name, op),) = tc.conv_layers(model, x)
    assert name == "0" and op.input_shape == (2, 6, 6)


def test_unbatched_input_is_refused_and_the_model_left_as_it_was():
    model = _model()
    before = _state(model)
    with pytest.raises(ValueError, match="example_input must be a batch"):
        tc.conv_layers(model, torch.randn(2, 8, 8, dtype=torch.float64))
    _assert_same_state(before, _state(model))


def test_a_model_without_convs_warns():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.warns(UserWarning, match="no conv or conv-transpose layer"):
        assert tc.conv_layers(model, torch.randn(1, 4)) == []


def test_from_torch_reads_a_parametrized_weight_without_touching_its_buffers():
    module = parametrizations.spectral_norm(torch.nn.Conv2d(2, 2, 3)).double().train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    op = tc.from_torch(module, (2, 6, 6))
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]), key
    module.eval()
    with torch.no_grad():
        np.testing.assert_allclose(op.weight, module.weight.numpy(), rtol=0, atol=0)


@pytest.mark.parametrize("shape", [16, "2,8,8", None])
def test_from_torch_input_shape_must_be_a_tuple(shape):
    with pytest.raises(TypeError, match="input_shape must be a tuple"):
        tc.from_torch(torch.nn.Conv2d(2, 2, 3), shape)


def test_report_warns_nothing_on_an_ordinary_model():
    model = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3)).double()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tc.lipschitz_report(model, torch.randn(1, 1, 9, dtype=torch.float64), echo=None)


class _SameConvTwice(torch.nn.Module):
    """One conv module called on two inputs of different sizes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.c = torch.nn.Conv2d(2, 2, 3, padding=1, bias=False)
        self.pool = torch.nn.AvgPool2d(2)

    def forward(self, x):
        return self.c(self.pool(self.c(x)))


def test_a_module_called_twice_is_reported_once_per_call_numbered():
    model = _SameConvTwice().double()
    layers = tc.conv_layers(model, torch.zeros(1, 2, 8, 8, dtype=torch.float64))
    assert [name for name, _ in layers] == ["c", "c#2"]
    assert [op.input_shape for _, op in layers] == [(2, 8, 8), (2, 4, 4)]
    for (_, op), size in zip(layers, (8, 4)):
        expected = _jacobian_norm(model.c, (2, size, size))
        bounds = tc.norm_bounds(op)
        assert bounds.lower <= expected * (1 + 1e-9) and expected <= bounds.upper * (1 + 1e-9)


def test_lipschitz_report_brackets_each_layer_to_the_rtol_asked():
    """A zero-padded layer's bracket narrows with rtol: the report must pass it on (a loose
    rtol gives a wider bracket than a tight one, each within its rtol)."""
    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1)).double()
    example = torch.zeros(1, 3, 12, 12, dtype=torch.float64)
    widths = {}
    for rtol in (0.2, 1e-6):
        report = tc.lipschitz_report(model, example, rtol=rtol, echo=None)
        (row,) = report.rows
        assert row.bounds.relative_width <= rtol
        expected = _jacobian_norm(model[0], (3, 12, 12))
        assert row.bounds.lower <= expected * (1 + 1e-9) and expected <= row.bounds.upper
        widths[rtol] = row.bounds.relative_width
    assert widths[0.2] > 10 * widths[1e-6]
