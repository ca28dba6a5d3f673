"""The layer flags of ``toeplitz-conv``: parsing them, and the layer they describe.

Shared by every subcommand that builds a layer (``show``, ``check``, ``norm``,
``export``),
with the parser class whose errors are one line, and the map from the library's
parameter names (:attr:`ParameterError.parameter`) to the flags that set them.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import ParameterError
from ..core.files import read_weight_file
from ..core.memory import check_budget, parse_size
from ..core.padding import PADDING_MODES, check_int
from ..core.weights import SUPPORTED_DTYPES

if TYPE_CHECKING:
    from ..layers.conv_operator import ConvOperator

__all__ = [
    "PARAMETER_FLAGS",
    "CommandParser",
    "UsageError",
    "add_layer_flags",
    "add_memory_flag",
    "build_layer",
    "integer_at_least",
]

PARAMETER_FLAGS = {
    "output_padding": "--output-padding",
    "padding_mode": "--padding-mode",
    "input_shape": "--input-shape",
    "padding": "--padding",
    "stride": "--stride",
    "dilation": "--dilation",
    "groups": "--groups",
    "dtype": "--dtype",
    "dtypes": "--dtype",  # toeplitz-conv compile's value types
    "weight": "--weight/--random",
    "kernel": "--weight/--random",
    "weight_file": "--weight",
    "random": "--random",
    "output": "-o/--output",
    "out": "--out",
}


class UsageError(Exception):
    """A bad flag: reported on one line, exit status 2."""


class _Formatter(argparse.HelpFormatter):
    """Wraps prose; keeps blocks with indented lines (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            if "\n  " in block:
                blocks.append(textwrap.indent(block, indent))
            else:
                blocks.append(super()._fill_text(block, width, indent))
        return "\n\n".join(blocks)


class CommandParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # one line, no usage dump
        raise UsageError(message)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def integer_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _padding(text: str):
    if text in ("same", "valid"):
        return text
    if ":" in text:  # (before, after) pairs: "1:2,0:1"
        try:
            return tuple(tuple(int(v) for v in pair.split(":")) for pair in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected pairs like 1:2,0:1, got {text!r}") from None
    values = _int_list(text)
    return values[0] if len(values) == 1 else values


def _scalar_or_tuple(values: tuple[int, ...]):
    return values[0] if len(values) == 1 else values


def add_memory_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-memory",
        type=_size,
        metavar="SIZE",
        help="memory budget for matrices, test vectors and weights, e.g. 500M or 8G "
        "(K, M, G, T are powers of 1000; default: half of the memory available)",
    )


def add_layer_flags(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--weight",
        type=Path,
        metavar="FILE.npy",
        help="the weight, saved with numpy.save: (C_out, C_in/groups, *kernel), "
        "or (C_in, C_out/groups, *kernel) with --transpose (PyTorch's layouts)",
    )
    source.add_argument(
        "--random",
        type=_int_list,
        metavar="N0,N1,K[,K...]",
        help="a random (standard normal) weight of this shape: C_out,C_in/groups,K... "
        "for a conv, C_in,C_out/groups,K... with --transpose",
    )
    parser.add_argument(
        "--seed", type=integer_at_least(0), default=0, help="seed of --random (default: 0)"
    )
    parser.add_argument(
        "--input-shape",
        type=_int_list,
        required=True,
        metavar="C,N[,N...]",
        help="the input of one sample: channels, then 1 to 3 spatial sizes",
    )
    parser.add_argument(
        "--stride",
        type=_int_list,
        default=(1,),
        metavar="S[,S...]",
        help="stride, one value or one per spatial axis (default: 1)",
    )
    parser.add_argument(
        "--padding",
        type=_padding,
        default=0,
        metavar="P[,P...]|B:A[,B:A...]|same|valid",
        help="padding per axis, (before, after) pairs as B:A, or same/valid (default: 0)",
    )
    parser.add_argument(
        "--dilation",
        type=_int_list,
        default=(1,),
        metavar="D[,D...]",
        help="dilation, one value or one per spatial axis (default: 1)",
    )
    parser.add_argument(
        "--groups",
        type=int,
        default=1,
        help="channel groups; C_in and C_out must be divisible by it (default: 1)",
    )
    parser.add_argument(
        "--padding-mode",
        choices=tuple(PADDING_MODES),
        default="zeros",
        help="how the border is filled (default: zeros)",
    )
    parser.add_argument(
        "--transpose",
        action="store_true",
        help="a conv-transpose layer (the adjoint of the conv) instead of a conv",
    )
    parser.add_argument(
        "--output-padding",
        type=_int_list,
        default=(0,),
        metavar="P[,P...]",
        help="extra output size of a conv-transpose, only with --transpose (default: 0)",
    )
    parser.add_argument(
        "--dtype",
        choices=[np.dtype(t).name for t in SUPPORTED_DTYPES],
        default="float64",
        help="number type of the matrix (default: float64)",
    )
    add_memory_flag(parser)


def build_layer(args: argparse.Namespace) -> ConvOperator:
    """The operator described by the layer flags."""
    from ..layers.conv import Conv, ConvTranspose  # on use: --help needs no operators

    weight = _read_weight(args)
    if not args.transpose and args.output_padding != (0,):
        raise UsageError("argument --output-padding: only with --transpose")
    common = dict(
        stride=_scalar_or_tuple(args.stride),
        padding=args.padding,
        dilation=_scalar_or_tuple(args.dilation),
        groups=args.groups,
        padding_mode=args.padding_mode,
        dtype=args.dtype,
    )
    if args.transpose:
        output_padding = _scalar_or_tuple(args.output_padding)
        return ConvTranspose(weight, args.input_shape, output_padding=output_padding, **common)
    return Conv(weight, args.input_shape, **common)


def _read_weight(args: argparse.Namespace) -> np.ndarray:
    if args.weight is not None:
        return read_weight_file(args.weight)
    shape = args.random
    layout = "C_in,C_out/groups,K[,K...]" if args.transpose else "C_out,C_in/groups,K[,K...]"
    if not 3 <= len(shape) <= 5:
        raise ParameterError("random", f"needs {layout} (1 to 3 kernel sizes); got {shape}")
    for size in shape:
        check_int(size, "random", minimum=1)
    nbytes = 2 * 8 * int(np.prod(shape, dtype=object))  # the weight and the layer's copy
    check_budget(nbytes, f"random weight of shape {shape}")
    return np.random.default_rng(args.seed).standard_normal(shape)
