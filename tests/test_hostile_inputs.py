"""Inputs that used to crash or break a promise: each gets its clear error, or the
behaviour a user expects."""

from __future__ import annotations

import concurrent.futures.thread
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse
import torch
from oracles import conv

import toeplitz_conv as tc
from toeplitz_conv.cli import main

SCRIPT = str(Path(sys.executable).parent / "toeplitz-conv")
SMALL = ["--random", "2,2,3,3", "--input-shape", "2,8,8", "--padding", "1"]


@pytest.mark.parametrize("engine", ["sparse", "direct", "numba"])
def test_non_native_byte_order_computes_as_native(engine):
    if engine not in tc.installed_engines():
        pytest.skip("numba is not installed")  # the other engines still run
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((3, 2, 3, 3)).astype(">f8")
    x = rng.standard_normal((2, 2, 6, 7)).astype(">f8")
    op = tc.Conv(weight, (2, 6, 7), padding=1, dtype=">f8", engine=engine)
    assert op.dtype == np.float64 and op.dtype.isnative
    expected = conv(
        x.astype(np.float64),
        weight.astype(np.float64),
        stride=(1, 1),
        pads=((1, 1), (1, 1)),
        dilation=(1, 1),
        groups=1,
        mode="zeros",
    )
    np.testing.assert_allclose(op.apply(x), expected, rtol=1e-12, atol=1e-12)
    y = rng.standard_normal(op.shape[0]).astype(">f8")
    np.testing.assert_allclose(
        op.rmatvec(y), op.tosparse().T @ y.astype(np.float64), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("name", ["y.NPZ", "y.MTX", "y.Npz", "y.mTx"])
def test_export_suffix_in_any_case_writes_that_file_and_nothing_else(tmp_path, capsys, name):
    target = tmp_path / name
    assert main(["export", *SMALL, "-o", str(target)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no hidden leftovers
    op = tc.Conv(np.zeros((2, 2, 3, 3)), (2, 8, 8), padding=1)
    if name.lower().endswith(".npz"):
        with open(target, "rb") as handle:
            matrix = scipy.sparse.load_npz(handle)
    else:
        with open(target, "rb") as handle:
            matrix = scipy.io.mmread(handle)
    assert matrix.shape == op.shape
    assert f"wrote {target}" in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly():
    process = subprocess.Popen(
        [SCRIPT, "check", *SMALL], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # the reader goes away before anything is written
    _, err = process.communicate(timeout=300)
    assert err == b"", err.decode()
    assert process.returncode == 141


@pytest.mark.parametrize("delay", [0.15, 0.3, 0.6, 1.0, 2.0])
def test_ctrl_c_at_any_moment_is_one_line(delay):
    process = subprocess.Popen(
        [SCRIPT, "norm", "--random", "16,16,3,3", "--input-shape", "16,48,48", "--padding", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    text = err.decode()
    if process.returncode == 0:  # it had finished already
        return
    if "Fatal Python error: init_import_site" in text:
        # the signal landed while Python was still importing `site` (the editable
        # install's .pth among it), before the entry point runs any code of ours: Python
        # reports that itself, and README says so (#34)
        return
    assert process.returncode == 130, text
    assert text == "toeplitz-conv: error: interrupted\n", text


def test_help_and_version_import_no_heavy_library():
    code = (
        "import sys; from toeplitz_conv.cli.main import make_parser; make_parser().format_help();"
        "heavy = [m for m in ('scipy', 'pylops', 'torch', 'numba') if m in sys.modules];"
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
    version = subprocess.run([SCRIPT, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip() == f"toeplitz-conv {tc.__version__}"


def test_a_padding_whose_output_no_index_reaches_is_refused_by_name():
    with pytest.raises(tc.ParameterError, match="padding") as error:
        tc.Conv(np.ones((1, 1, 3, 3, 3)), (1, 4, 4, 4), padding=10**9)
    assert error.value.parameter == "padding"
    with pytest.raises(tc.ParameterError, match="input_shape"):
        tc.Conv(np.ones((1, 1, 1, 1, 1)), (1, 2**21, 2**21, 2**21))


@pytest.mark.parametrize(
    "max_bytes, error",
    [("1G", TypeError), (1.5, TypeError), (True, TypeError), (-1, ValueError), (0, ValueError)],
)
def test_max_bytes_must_be_a_whole_positive_number(max_bytes, error):
    op = tc.Conv(np.ones((1, 1, 3)), (1, 4), padding=1)
    for call in (op.tosparse, op.todense, lambda **k: tc.norm_bounds(op, **k)):
        with pytest.raises(error, match="max_bytes"):
            call(max_bytes=max_bytes)
    with pytest.raises(error, match="max_bytes"):
        tc.set_memory_budget(max_bytes)


def test_numpy_integers_are_budgets():
    op = tc.Conv(np.ones((1, 1, 3)), (1, 4), padding=1)
    assert op.tosparse(max_bytes=np.int64(10**6)).nnz == op.nnz
    try:
        tc.set_memory_budget(np.int64(10**9))
        assert tc.memory_budget() == 10**9 and type(tc.memory_budget()) is int
    finally:
        tc.set_memory_budget(None)


def test_from_torch_with_an_int_shape_is_a_clear_type_error():
    with pytest.raises(tc.ParameterTypeError, match="input_shape"):
        tc.from_torch(torch.nn.Conv2d(2, 2, 3), 16)


def test_a_product_whose_output_cannot_fit_is_refused_before_anything_is_allocated():
    op = tc.Conv(np.ones((1, 1, 3, 3)), (1, 4, 4), padding=10**9)  # 4e18 outputs
    with pytest.raises(tc.MatrixTooLargeError, match="input and output"):
        op @ np.ones(16)
    with pytest.raises(tc.MatrixTooLargeError, match="input and output"):
        op.apply(np.ones((2, 1, 4, 4)))


def test_ctrl_c_inside_an_import_is_put_off_until_the_import_is_done(tmp_path):
    # a KeyboardInterrupt inside a compiled module's initialisation aborts the process
    # (seen with torch, imported by pylops: SIGABRT instead of "interrupted")
    (tmp_path / "slow_module.py").write_text("import signal\nsignal.raise_signal(signal.SIGINT)\n")
    program = (
        "import signal, sys, time\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "from toeplitz_conv.cli.interrupts import install_handlers\n"
        "install_handlers()\n"
        "try:\n"
        "    import slow_module\n"
        "    print('imported', flush=True)\n"
        "    time.sleep(5)\n"
        "    print('never interrupted')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["imported", "interrupted"], result.stdout + result.stderr


def _frame_of(file: str, name: str):
    """The frame of a function ``name`` defined in ``file`` (as a traceback names it)."""
    namespace: dict = {}
    exec(
        compile(f"import sys\ndef {name}():\n    return sys._getframe()\n", file, "exec"), namespace
    )
    return namespace[name]()


@pytest.mark.parametrize(
    "file, name, unsafe",
    [
        (os.path.join("site-packages", "numba", "core", "caching.py"), "load", True),
        (os.path.join("site-packages", "llvmlite", "binding", "ffi.py"), "close", True),
        ("ours.py", "__del__", True),  # a finaliser: the exception is printed and lost
        (threading.__file__, "start", True),  # a pool's thread started, not yet recorded
        (concurrent.futures.thread.__file__, "_adjust_thread_count", True),
        (threading.__file__, "wait", False),  # waiting for a result stays interruptible
        ("ours.py", "run", False),
    ],
)
def test_ctrl_c_is_put_off_where_raising_is_unsafe(file, name, unsafe):
    # raised there it crashed the process (llvmlite: SIGSEGV), was lost (__del__), or
    # left a pool's worker that the interpreter waited for at exit (a hang)
    from toeplitz_conv.cli.interrupts import _unsafe_to_raise

    assert _unsafe_to_raise(_frame_of(file, name)) is unsafe


def test_a_put_off_interrupt_is_raised_a_moment_later():
    from toeplitz_conv.cli.interrupts import Interrupts, install_handlers, restore_handlers

    previous = install_handlers()
    try:
        Interrupts.handler(signal.SIGINT, _frame_of(threading.__file__, "start"))
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= Interrupts.RETRY_SECONDS
        with pytest.raises(KeyboardInterrupt):
            time.sleep(2)  # the timer signal raises it here, outside the unsafe region
    finally:
        restore_handlers(previous)
    assert signal.getsignal(signal.SIGINT) is previous[signal.SIGINT]
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
