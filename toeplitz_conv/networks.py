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

import math
import time
from dataclasses import dataclass, field

from .certified import NormBounds, norm_bounds
from .errors import ParameterTypeError
from .operators import ConvOperator
from .torch_interop import from_torch

__all__ = ["LayerBounds", "LipschitzReport", "conv_layers", "lipschitz_report"]

CONV_MODULES = (
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
)


def conv_layers(model, example_input) -> list[tuple[str, ConvOperator]]:
    """Every conv and conv-transpose module of a model, as operators at the input it sees.

    One forward pass of ``example_input`` through ``model`` (with forward hooks,
    no gradients) records the input shape of each call; a module called more
    than once appears once per call (``name#2``, ...).

    Parameters
    ----------
    model : torch.nn.Module
    example_input : torch.Tensor
        A batch (its first axis is the batch axis); one sample's shape is used.

    Returns
    -------
    list of (str, Conv or ConvTranspose)
        In the order the layers run.
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ParameterTypeError(
            "model", f"model must be a torch.nn.Module; got {type(model).__name__}"
        )
    calls: list[tuple[str, object, tuple[int, ...]]] = []
    seen: dict[str, int] = {}

    def record(name: str):
        def hook(module, inputs, output):
            seen[name] = seen.get(name, 0) + 1
            label = name if seen[name] == 1 else f"{name}#{seen[name]}"
            calls.append((label, module, tuple(inputs[0].shape[1:])))

        return hook

    handles = [
        module.register_forward_hook(record(name or type(module).__name__))
        for name, module in model.named_modules()
        if type(module).__name__ in CONV_MODULES
    ]
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return [(label, from_torch(module, shape, name=label)) for label, module, shape in calls]


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
