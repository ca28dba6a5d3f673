"""Whole networks: every conv layer of a PyTorch model as an operator, and a Lipschitz
report with proven brackets.

A network's Lipschitz constant (in the 2-norm) is at most the product of its
layers' constants when the activations are 1-Lipschitz (ReLU, tanh, ...):

.. math::

    \\operatorname{Lip}(f_L \\circ \\dots \\circ f_1) \\le \\prod_{l} \\|A_l\\|_2
    \\le \\prod_l u_l,

with :math:`u_l` the proven upper bound of layer :math:`l`. Normalisation,
pooling and residual connections need their own factors; the report covers
the conv and conv-transpose layers, each at the input size it sees.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field

from ..core.errors import ParameterError, ParameterTypeError
from ..core.weights import as_numeric
from ..layers.conv import ConvOperator
from ..spectra.brackets import NormBounds
from ..spectra.certified import norm_bounds
from .torch_interop import checked_module, is_torch_conv, operator_of

__all__ = ["LayerBounds", "LipschitzReport", "conv_layers", "lipschitz_report"]


@dataclass(frozen=True)
class _Call:
    label: str
    module: object
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weight: object
    bias: object


def conv_layers(model, example_input) -> list[tuple[str, ConvOperator]]:
    """Every conv and conv-transpose module of a model, as operators at the input it sees.

    One forward pass of ``example_input`` through ``model`` (with forward hooks,
    no gradients) records, for each call of a ``torch.nn`` conv module (any
    subclass, parametrized ones such as ``spectral_norm`` and ``weight_norm``
    included), the weight it used, its input shape and its output shape (so a
    conv-transpose called with ``output_size`` is rebuilt with that size). A
    module called more than once appears once per call (``name#2``, ...).

    The model is left exactly as it was: its training flags, parameters,
    buffers (BatchNorm's running statistics, spectral norm's power-iteration
    vectors) and gradients are restored after the pass.

    Parameters
    ----------
    model : torch.nn.Module
    example_input : torch.Tensor
        A batch: its first axis is the batch axis (one sample's shape is used).

    Returns
    -------
    list of (str, Conv or ConvTranspose)
        In the order the layers run; empty, with a warning, when no conv runs.
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ParameterTypeError(
            "model", f"model must be a torch.nn.Module; got {type(model).__name__}"
        )
    convs = [(name, m) for name, m in model.named_modules() if is_torch_conv(m)]
    for _, module in convs:
        checked_module(module)  # lazy modules not yet initialised are refused
    calls = _record_calls(model, example_input, convs)
    if not calls:
        warnings.warn(
            f"no conv or conv-transpose layer of {type(model).__name__} ran on this input",
            stacklevel=2,
        )
    return [
        (
            call.label,
            operator_of(
                call.module,
                call.input_shape,
                call.weight,
                call.bias,
                name=call.label,
                output_size=call.output_shape[1:],
            ),
        )
        for call in calls
    ]


def _record_calls(model, example_input, convs) -> list[_Call]:
    """One pass with hooks, under a snapshot of the model that is restored afterwards."""
    import torch
    from torch.nn.utils import parametrize

    calls: list[_Call] = []
    seen: dict[str, int] = {}

    def record(name: str):
        def hook(module, inputs, output):
            spatial_axes = len(module.kernel_size)
            if inputs[0].dim() != spatial_axes + 2:
                raise ParameterError(
                    "example_input",
                    f"example_input must be a batch (N, C, *spatial): {name} got an input of "
                    f"shape {tuple(inputs[0].shape)}; add a batch axis (x[None])",
                )
            seen[name] = seen.get(name, 0) + 1
            label = name if seen[name] == 1 else f"{name}#{seen[name]}"
            weight = as_numeric(module.weight, "weight").copy()  # the weight of this call
            bias = None if module.bias is None else as_numeric(module.bias, "bias").copy()
            shapes = tuple(inputs[0].shape[1:]), tuple(output.shape[1:])
            calls.append(_Call(label, module, *shapes, weight, bias))

        return hook

    snapshot = _Snapshot(model)
    handles = [m.register_forward_hook(record(name or type(m).__name__)) for name, m in convs]
    try:
        with torch.no_grad(), parametrize.cached():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
        snapshot.restore()
    return calls


class _Snapshot:
    """A model's training flags, parameters, buffers and gradients, to put back."""

    def __init__(self, model) -> None:
        self.model = model
        self.training = [(m, m.training) for m in model.modules()]
        self.state = copy.deepcopy(model.state_dict())
        self.grads = [(p, None if p.grad is None else p.grad.clone()) for p in model.parameters()]

    def restore(self) -> None:
        import torch

        with torch.no_grad():
            self.model.load_state_dict(self.state)
        for module, flag in self.training:
            module.training = flag
        for parameter, grad in self.grads:
            parameter.grad = grad


@dataclass(frozen=True)
class LayerBounds:
    """One row of a :class:`LipschitzReport`."""

    name: str
    layer: str
    padding: str
    bounds: NormBounds
    seconds: float


@dataclass
class LipschitzReport:
    """Proven norm brackets of a network's conv layers, and their product.

    Attributes
    ----------
    rows : list of LayerBounds
    """

    rows: list[LayerBounds] = field(default_factory=list)

    @property
    def product_upper(self) -> float:
        """:math:`\\prod_l u_l`: an upper bound of the conv layers' composition."""
        return math.prod(row.bounds.upper for row in self.rows)

    @property
    def product_lower(self) -> float:
        return math.prod(row.bounds.lower for row in self.rows)

    def __str__(self) -> str:
        header = f"{'name':<28}{'layer':<34}{'padding':<10}{'lower':>14}{'upper':>14}{'seconds':>9}"
        lines = [header, "-" * len(header)]
        for row in self.rows:
            lines.append(
                f"{row.name[:27]:<28}{row.layer[:33]:<34}{row.padding:<10}"
                f"{row.bounds.lower:>14.6f}{row.bounds.upper:>14.6f}{row.seconds:>9.2f}"
            )
        lines.append("-" * len(header))
        lines.append(
            f"product of the upper bounds: {self.product_upper:.6g} "
            f"(of the lower bounds: {self.product_lower:.6g}) over {len(self.rows)} layers"
        )
        return "\n".join(lines)


def lipschitz_report(
    model, example_input, *, rtol: float = 1e-6, max_bytes: int | None = None, echo=print
) -> LipschitzReport:
    """Bracket every conv layer of a model (:func:`norm_bounds`) and print a table.

    Parameters
    ----------
    model : torch.nn.Module
    example_input : torch.Tensor
    rtol : float
        Target relative width per layer.
    max_bytes : int, optional
        Memory budget per layer.
    echo : callable or None
        Where the table goes (``None``: nowhere).

    Returns
    -------
    LipschitzReport
    """
    report = LipschitzReport()
    for name, op in conv_layers(model, example_input):
        start = time.perf_counter()
        bounds = norm_bounds(op, rtol=rtol, max_bytes=max_bytes)
        report.rows.append(
            LayerBounds(
                name, _describe(op), op.geometry.padding_mode, bounds, time.perf_counter() - start
            )
        )
    if echo is not None:
        echo(str(report))
    return report


def _describe(op: ConvOperator) -> str:
    g = op.geometry
    kind = "T" if op.transposed else ""
    kernel = "x".join(map(str, g.kernel))
    spatial = "x".join(map(str, op.input_shape[1:]))
    extras = f" s{g.stride[0]}" if any(s > 1 for s in g.stride) else ""
    return f"{op.input_shape[0]}->{op.output_shape[0]} {kernel}{kind} on {spatial}{extras}"
