"""Command line: ``toeplitz-conv demo | show | check | export``.

Bad flags or shapes end with a one-line message naming the flag and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import demo as demo_module
from .errors import ParameterError, ParameterTypeError
from .memory import MatrixTooLargeError
from .operators import Conv, ConvTranspose
from .padding import PADDING_MODES
from .weights import SUPPORTED_DTYPES

PROG = "toeplitz-conv"
EXPORT_SUFFIXES = (".npz", ".mtx")
# parameter names in the library's messages, and the flags that set them
PARAMETER_FLAGS = {
    "output_padding": "--output-padding",
    "padding_mode": "--padding-mode",
    "input_shape": "--input-shape",
    "padding": "--padding",
    "stride": "--stride",
    "dilation": "--dilation",
    "groups": "--groups",
    "dtype": "--dtype",
    "weight": "--weight/--random",
    "kernel": "--weight/--random",
}

__all__ = ["build_layer", "main", "make_parser"]


class UsageError(Exception):
    """A bad flag: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise UsageError(message)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    return values


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


def _add_layer_flags(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--weight",
        type=Path,
        metavar="FILE.npy",
        help="weight array: (C_out, C_in/groups, *kernel), or "
        "(C_in, C_out/groups, *kernel) with --transpose",
    )
    source.add_argument(
        "--random",
        type=_int_list,
        metavar="COUT,CIN_PER_GROUP,K[,K...]",
        help="a random weight of this shape (standard normal)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    parser.add_argument(
        "--input-shape",
        type=_int_list,
        required=True,
        metavar="C,N[,N...]",
        help="input of one sample: channels, then spatial sizes",
    )
    parser.add_argument("--stride", type=_int_list, default=(1,), metavar="S[,S...]")
    parser.add_argument(
        "--padding", type=_padding, default=0, metavar="P[,P...]|B:A[,B:A...]|same|valid"
    )
    parser.add_argument("--dilation", type=_int_list, default=(1,), metavar="D[,D...]")
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--padding-mode", choices=tuple(PADDING_MODES), default="zeros")
    parser.add_argument(
        "--transpose", action="store_true", help="a conv-transpose layer (the adjoint of the conv)"
    )
    parser.add_argument(
        "--output-padding",
        type=_int_list,
        default=(0,),
        metavar="P[,P...]",
        help="with --transpose",
    )
    parser.add_argument(
        "--dtype", choices=[np.dtype(t).name for t in SUPPORTED_DTYPES], default="float64"
    )


def build_layer(args: argparse.Namespace) -> Conv | ConvTranspose:
    """The operator described by the layer flags."""
    if args.weight is not None:
        try:
            weight = np.load(args.weight, allow_pickle=False)
        except (OSError, ValueError) as error:
            message = f"argument --weight: cannot read {str(args.weight)!r}: {error}"
            raise UsageError(message) from error
    else:
        if any(v < 1 for v in args.random) or len(args.random) < 3:
            raise UsageError("argument --random: needs COUT,CIN_PER_GROUP,K[,K...] all >= 1")
        weight = np.random.default_rng(args.seed).standard_normal(args.random)
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
    try:
        if args.transpose:
            return ConvTranspose(
                weight,
                args.input_shape,
                output_padding=_scalar_or_tuple(args.output_padding),
                **common,
            )
        return Conv(weight, args.input_shape, **common)
    except (ParameterError, ParameterTypeError) as error:
        flag = PARAMETER_FLAGS.get(error.parameter)
        raise UsageError(f"argument {flag}: {error}" if flag else str(error)) from error


def _command_demo(args: argparse.Namespace) -> int:
    result = demo_module.run_demo(args.out, iterations=args.iterations)
    return 0 if result.adjoint_passed else 1


def _command_show(args: argparse.Namespace) -> int:
    op = build_layer(args)
    print(op.summary())
    if args.output is None:
        return 0
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot import plot_block_pattern, plot_matrix

    fig, axes = plt.subplots(1, 2, figsize=(11, 5), width_ratios=(1, 1.6))
    plot_block_pattern(op, axes[0])
    plot_matrix(op, axes[1])
    fig.savefig(args.output, dpi=110, bbox_inches="tight")
    print(f"wrote {args.output}")
    return 0


def _command_check(args: argparse.Namespace) -> int:
    from .adjoint import check_adjoint

    op = build_layer(args)
    report = check_adjoint(op, seed=args.seed)
    print(report)
    return 0 if report.passed else 1


def _command_export(args: argparse.Namespace) -> int:
    import scipy.io
    import scipy.sparse

    suffix = args.output.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise UsageError(
            f"argument -o/--output: the file must end in {' or '.join(EXPORT_SUFFIXES)}"
            f" (.npz: scipy.sparse.save_npz, .mtx: Matrix Market); got {suffix!r}"
        )
    op = build_layer(args)
    matrix = op.tosparse()
    if suffix == ".npz":
        scipy.sparse.save_npz(args.output, matrix)
    else:
        scipy.io.mmwrite(args.output, matrix, comment=repr(op))
    print(f"wrote {args.output}: {matrix.shape[0]} x {matrix.shape[1]}, {matrix.nnz:,} nonzeros")
    return 0


def make_parser() -> argparse.ArgumentParser:
    """The ``toeplitz-conv`` argument parser."""
    parser = _Parser(prog=PROG, description="Conv layers as explicit sparse matrices.")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = commands.add_parser(
        "demo",
        help="the main job: see a layer's matrix, invert a blur",
        description=demo_module.__doc__.strip().splitlines()[0],
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("toeplitz_conv_demo"),
        help="folder for the pictures (default toeplitz_conv_demo)",
    )
    demo.add_argument("--iterations", type=int, default=60, help="LSQR iterations (default 60)")
    demo.set_defaults(run=_command_demo)

    show = commands.add_parser("show", help="summary and a PNG of the block structure")
    _add_layer_flags(show)
    show.add_argument("-o", "--output", type=Path, help="write the picture to this PNG")
    show.set_defaults(run=_command_show)

    check = commands.add_parser("check", help="adjoint check, engine agreement, PyTorch parity")
    _add_layer_flags(check)
    check.set_defaults(run=_command_check)

    export = commands.add_parser("export", help="write the matrix to .npz or .mtx")
    _add_layer_flags(export)
    export.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.npz|FILE.mtx")
    export.set_defaults(run=_command_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``toeplitz-conv`` console script."""
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
        if args.quiet:
            from .progress import set_progress

            set_progress(False)
        return args.run(args)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except MatrixTooLargeError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(
            f"{PROG}: error: {error.name or error} is needed for this command: "
            f"pip install 'toeplitz-conv[plot]'",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
