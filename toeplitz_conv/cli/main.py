"""Command line: ``toeplitz-conv demo | show | check | norm | export | compile``.

Every failure is one line on stderr, never a traceback, and an exit status:
0 done; 1 a failure while running (a check failed, a file could not be
written, a missing optional dependency); 2 bad input (a flag, a weight file, a
size over the memory budget); 130 interrupted (Ctrl-C); 141 the reader of the
output went away (``| head``), quietly. Outputs are written
to a temporary file, checked, then renamed into place, and reported only then.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from .interrupts import Interrupts, install_handlers, restore_handlers

# Only the standard library above: the package's own modules (numpy, scipy, ...) are
# imported inside main(), so that --version and --help answer at once and a Ctrl-C
# at any moment, imports included, is one line.

PROG = "toeplitz-conv"
EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool the pipe closed on
TRACEBACK_VARIABLE = "TOEPLITZ_CONV_TRACEBACK"
OPTIONAL_EXTRAS = {"numba": "fast", "llvmlite": "fast", "torch": "torch"}  # else "plot"
EPILOG = """\
exit status: 0 done, 1 failure while running (or a failed check), 2 bad input,
130 interrupted, 141 the output's reader went away (| head).

examples:
  toeplitz-conv demo
  toeplitz-conv show --random 8,4,3,3 --input-shape 8,32,32 --padding 1 --groups 2 -o layer.png
  toeplitz-conv check --random 8,4,3,3 --input-shape 4,32,32 --stride 2 --padding-mode reflect
  toeplitz-conv norm --random 16,16,3,3 --input-shape 16,32,32 --padding 1
  toeplitz-conv export --weight w.npy --input-shape 16,32,32 --padding same -o layer.mtx
  toeplitz-conv compile
"""

__all__ = ["main", "make_parser"]


def _command_demo(args: argparse.Namespace) -> int:
    from ..core.files import check_output_folder
    from . import demo

    out = check_output_folder(args.out, "out")
    result = demo.run_demo(out, iterations=args.iterations)
    return 0 if result.adjoint_passed else EXIT_FAILURE


def _command_show(args: argparse.Namespace) -> int:
    from ..core.files import check_output_file
    from ..pictures import figures
    from .flags import build_layer

    output = None
    if args.output is not None:
        output = check_output_file(args.output, figures.PICTURE_SUFFIXES, "output")
        figures.require_matplotlib()
    op = build_layer(args)
    print(op.summary())
    if output is not None:
        figures.save_figure(figures.layer_figure(op), output)
        print(f"wrote {output}")
    return 0


def _command_check(args: argparse.Namespace) -> int:
    from ..interop.adjoint import check_adjoint
    from .flags import build_layer

    op = build_layer(args)
    report = check_adjoint(op, seed=args.seed)
    print(report)
    return 0 if report.passed else EXIT_FAILURE


def _command_norm(args: argparse.Namespace) -> int:
    from ..spectra.brackets import CertifiedWidthWarning
    from ..spectra.certified import norm_bounds
    from .flags import build_layer

    op = build_layer(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CertifiedWidthWarning)
        bounds = norm_bounds(op, rtol=args.rtol)
    for warning in caught:  # a bracket wider than --rtol: one line, saying why
        print(f"{PROG}: warning: {warning.message}", file=sys.stderr)
    print(repr(op))
    print(
        f"spectral norm (Lipschitz constant) in [{bounds.lower:.12g}, {bounds.upper:.12g}]"
        f", relative width {bounds.relative_width:.1e}"
    )
    print(f"proof: {bounds.method}")
    return 0


def _command_export(args: argparse.Namespace) -> int:
    from ..core.files import EXPORT_SUFFIXES, check_output_file, export_matrix
    from .flags import build_layer

    output = check_output_file(args.output, EXPORT_SUFFIXES, "output")
    op = build_layer(args)
    shape, nnz = export_matrix(op, output)
    print(f"wrote {output}: {shape[0]} x {shape[1]}, {nnz:,} nonzeros")
    return 0


def _command_compile(args: argparse.Namespace) -> int:
    from ..core.progress import set_progress
    from .precompile import precompile

    set_progress(False)  # each loop gets its own line below, not a "compiling" notice too

    def report(done) -> None:
        print(f"{done.dtype:>10}: {done.loops}: {done.seconds:.1f} s", flush=True)

    # an unknown type is refused by precompile before anything compiles (a one-line error)
    results = precompile([name.strip() for name in args.dtype.split(",")], report=report)
    total = sum(done.seconds for done in results)
    print(f"the numba engine's loops are ready, in numba's cache ({total:.1f} s)")
    return 0


def make_parser() -> argparse.ArgumentParser:
    """The ``toeplitz-conv`` argument parser."""
    from .flags import CommandParser, add_memory_flag, integer_at_least

    parser = CommandParser(
        prog=PROG,
        description="Conv layers as explicit sparse matrices: see them, check them, export them.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=CommandParser, metavar="COMMAND"
    )

    demo = commands.add_parser(
        "demo",
        help="the main job: see a layer's matrix, then undo a blur through it",
        description="On matplotlib's sample photograph, a 3->3-channel layer blurs each colour "
        "and leaks some of it into the others. The demo prints the layer and its block "
        "pattern, checks that its conv-transpose is its adjoint, draws the matrix, one block "
        "and the images, and recovers the image through the operator with LSQR and with "
        "solve_tikhonov (damp by GCV), printing PSNR and time.",
        epilog="example:\n  toeplitz-conv demo --out pictures --iterations 30",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("toeplitz_conv_demo"),
        metavar="FOLDER",
        help="folder for the pictures, created if missing (default: toeplitz_conv_demo)",
    )
    demo.add_argument(
        "--iterations",
        type=integer_at_least(1),
        default=60,
        metavar="N",
        help="LSQR iterations (default: 60)",
    )
    add_memory_flag(demo)
    demo.set_defaults(run=_command_demo)

    show = _layer_command(
        commands,
        "show",
        "print a layer's summary; draw its block grid and matrix",
        "The summary: shapes, nonzeros, density, bytes, the block pattern, the boundary "
        "rule per axis. With -o, a picture of the grid of kernels and the matrix.",
        "toeplitz-conv show --random 8,4,3,3 --input-shape 8,32,32 --groups 2 -o layer.png",
    )
    show.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE.png",
        help="write the picture here (.png, .pdf, .svg, .jpg, ...)",
    )
    show.set_defaults(run=_command_show)

    check = _layer_command(
        commands,
        "check",
        "check the adjoint, the engines and the PyTorch parity",
        "Dot test, matrix identity (conv-transpose matrix = conv matrix transposed), "
        "sparse-vs-direct engine agreement, and PyTorch's conv, conv_transpose and autograd "
        "when PyTorch is installed. Exit status 1 when a check fails.",
        "toeplitz-conv check --random 8,4,3,3 --input-shape 4,32,32 --padding-mode reflect",
    )
    check.set_defaults(run=_command_check)

    norm = _layer_command(
        commands,
        "norm",
        "a proven bracket of the layer's spectral norm (Lipschitz constant)",
        "Lower and upper bounds of sigma_max proven in floating point: an explicit vector "
        "below; above, a per-frequency proof (circular padding), a verified banded Cholesky "
        "factorization when it fits --max-memory, else a symbol bound (wider).",
        "toeplitz-conv norm --random 16,16,3,3 --input-shape 16,32,32 --padding 1",
    )
    norm.add_argument(
        "--rtol",
        type=_relative_tolerance,
        default=1e-6,
        help="target relative width of the bracket (default: 1e-06)",
    )
    norm.set_defaults(run=_command_norm)

    export = _layer_command(
        commands,
        "export",
        "write the matrix to .npz (scipy) or .mtx (Matrix Market)",
        "The matrix, rows and columns in NCHW order: .npz for scipy.sparse.load_npz, "
        ".mtx for MATLAB, Julia and scipy.io.mmread.",
        "toeplitz-conv export --weight w.npy --input-shape 16,32,32 -o layer.mtx",
    )
    export.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="FILE.npz|FILE.mtx",
        help="the file to write",
    )
    export.set_defaults(run=_command_export)

    compile_ = commands.add_parser(
        "compile",
        help="compile the numba engine's loops now, not at a first product",
        description="numba compiles the compiled engine's loops the first time a product "
        "needs them (a few seconds per loop and value type) and caches them on disk. This "
        "compiles them all now, for example right after installing or in a container's "
        "build step; loops already in the cache load in well under a second.",
        epilog="example:\n  toeplitz-conv compile --dtype float32,float64,complex128",
    )
    compile_.add_argument(
        "--dtype",
        default="float32,float64",
        metavar="TYPES",
        help="comma-separated value types among float32, float64, complex64, complex128 "
        "(default: float32,float64)",
    )
    compile_.set_defaults(run=_command_compile, max_memory=None)
    return parser


def _layer_command(commands, name: str, summary: str, description: str, example: str):
    from .flags import add_layer_flags

    parser = commands.add_parser(
        name, help=summary, description=description, epilog=f"example:\n  {example}"
    )
    add_layer_flags(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``toeplitz-conv`` console script; returns the exit status."""
    Interrupts.seen = False
    try:
        previous = install_handlers()
    except ValueError:  # not the main thread: Python's own handler stays
        previous = None
    try:
        return _run(argv)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as cat does
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception:
        if Interrupts.seen:
            return _fail("interrupted", EXIT_INTERRUPTED)
        raise
    finally:
        if previous is not None:
            restore_handlers(previous)


def _run(argv: Sequence[str] | None) -> int:
    from ..core.errors import ParameterError, ParameterTypeError
    from ..core.memory import (
        BudgetAboveMemoryWarning,
        MatrixTooLargeError,
        budget_above_memory,
        using_memory_budget,
    )
    from .flags import PARAMETER_FLAGS, UsageError

    try:
        args = make_parser().parse_args(argv)
        if args.quiet:
            from ..core.progress import set_progress

            set_progress(False)
        beyond = "" if args.max_memory is None else budget_above_memory(args.max_memory)
        if beyond:
            print(f"{PROG}: warning: --max-memory: {beyond}", file=sys.stderr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BudgetAboveMemoryWarning)  # said above, once
            with using_memory_budget(args.max_memory):
                status = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers
        return status
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except UsageError as error:
        return _fail(str(error), EXIT_BAD_INPUT)
    except (ParameterError, ParameterTypeError) as error:
        flag = PARAMETER_FLAGS.get(error.parameter)
        return _fail(f"argument {flag}: {error}" if flag else str(error), EXIT_BAD_INPUT)
    except MatrixTooLargeError as error:
        hint = f"allow it with --max-memory {_size_flag(error.nbytes)}, or choose a smaller layer"
        return _fail(error.describe(hint), EXIT_BAD_INPUT)
    except ImportError as error:
        if Interrupts.seen or _caused_by_interrupt(error):  # Ctrl-C inside an import
            raise KeyboardInterrupt from error
        name = error.name or str(error)
        extra = OPTIONAL_EXTRAS.get(name, "plot")
        return _fail(f"{name} is needed for this command: pip install 'toeplitz-conv[{extra}]'")
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        return _fail(f"{error.strerror or error}{where}")
    except Exception as error:  # noqa: BLE001 - the promise is one line, never a traceback
        if Interrupts.seen:
            raise KeyboardInterrupt from error
        if os.environ.get(TRACEBACK_VARIABLE):
            raise
        return _fail(
            f"unexpected {type(error).__name__}: {error} "
            f"(set {TRACEBACK_VARIABLE}=1 to see the traceback)"
        )


def _caused_by_interrupt(error: BaseException) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush finds no closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _relative_tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def _size_flag(nbytes: int) -> str:
    """The smallest one-decimal ``--max-memory`` value that holds ``nbytes``, e.g. ``1.5G``."""
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if nbytes >= size:
            return f"{math.ceil(nbytes * 10 / size) / 10:g}{unit}"
    return str(nbytes)


def _fail(message: str, status: int = EXIT_FAILURE) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
