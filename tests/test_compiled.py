"""The optional numba: the compiled engine writes every output and is safe under threads
and fork, the compiled assembly writes the numpy assembly's matrix, and without numba
"auto" falls back to the numpy engines.

Its products against PyTorch and the matrix run in test_engines.py (every installed
engine, hypothesis layers of every kind).
"""

import multiprocessing
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from oracles import assert_close, conv
from strategies import examples, layer_cases, random_array

import toeplitz_conv as tc
from toeplitz_conv import engines
from toeplitz_conv.cli import main, precompile
from toeplitz_conv.core import block_matrix, jit

WITHOUT_NUMBA = os.environ.get("TOEPLITZ_CONV_WITHOUT_NUMBA") == "1"  # CI's second run
needs_numba = pytest.mark.skipif(WITHOUT_NUMBA, reason="the run without the numba extra")


def test_the_test_run_has_numba_exactly_when_it_should():
    """The test extra installs numba; CI's second run removes it and says so."""
    assert ("numba" in tc.installed_engines()) != WITHOUT_NUMBA


def _nan_empty(real_empty):
    def empty(shape, dtype=float, **kwargs):
        array = real_empty(shape, dtype=dtype, **kwargs)
        if np.dtype(dtype).kind in "fc":
            array.fill(np.nan)
        return array

    return empty


@needs_numba
@settings(max_examples=examples(120), deadline=None)
@given(case=layer_cases())
def test_every_output_sample_is_written(case, monkeypatch_module):
    """Outputs and workspaces start as NaN: a sample the loops skip would stay NaN."""
    op = tc.Conv(case.weight, case.input_shape, **case.kwargs(), engine="numba")
    matrix = tc.Conv(case.weight, case.input_shape, **case.kwargs(), engine="sparse").tosparse()
    rng = np.random.default_rng(0)
    x = random_array(rng, op.shape[1], case.dtype)
    y = random_array(rng, op.shape[0], case.dtype)
    scale = float(np.abs(case.weight).sum())
    # compile the loops first (numba reads np.empty when it compiles) on a twin operator,
    # so that this operator's workspaces are made below, NaN-filled
    twin = tc.Conv(case.weight, case.input_shape, **case.kwargs(), engine="numba")
    twin.rmatvec(twin.matvec(x))
    with monkeypatch_module.context() as patch:
        patch.setattr(np, "empty", _nan_empty(np.empty))
        forward, adjoint = op.layer.engine("numba").forward, op.layer.engine("numba").adjoint
        ax = forward(x.reshape(1, *op.input_shape)).ravel()
        ahy = adjoint(y.reshape(1, *op.output_shape)).ravel()
    assert_close(ax, matrix @ x, case.dtype, scale)
    assert_close(ahy, matrix.conj().T @ y, case.dtype, scale)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@needs_numba
@settings(max_examples=examples(150), deadline=None)
@given(case=layer_cases())
def test_compiled_assembly_equals_the_numpy_assembly(case, monkeypatch_module):
    """Zero padding assembles by compiled loops: the same CSR arrays, entry for entry."""
    kwargs = {**case.kwargs(), "padding_mode": "zeros"}
    layer = tc.Conv(case.weight, case.input_shape, **kwargs).layer
    compiled = layer.assemble()
    with monkeypatch_module.context() as patch:
        patch.setattr(block_matrix, "numba_installed", lambda: False)
        reference = layer.assemble()
    assert compiled.has_canonical_format and compiled.shape == reference.shape
    for name in ("indptr", "indices", "data"):
        ours, theirs = getattr(compiled, name), getattr(reference, name)
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)


@needs_numba
def test_a_first_call_that_compiles_says_so(tmp_path):
    """In a new process with an empty numba cache, the first product compiles (seconds)
    and, with progress shown, one line on stderr says so; the second is silent."""
    code = (
        "import numpy as np, toeplitz_conv as tc, toeplitz_conv.core.progress; "
        "toeplitz_conv.core.progress.set_progress(True); "
        "op = tc.Conv(np.ones((2, 2, 3)), (2, 30), padding=1, engine='numba'); "
        "op.matvec(np.ones(60)); print('second', flush=True, file=__import__('sys').stderr); "
        "op.matvec(np.ones(60))"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    first, second = run.stderr.split("second")
    assert "numba is compiling its wide_correlate loops" in first
    assert "compiling" not in second


LATER_PRODUCTS = """
import numpy as np, toeplitz_conv as tc
from toeplitz_conv.core import _assembly_numba
from toeplitz_conv.engines import _conv_numba, _rows_numba
layers = [
    tc.Conv(np.ones((6, 1, 5, 5)), (6, 40, 30), padding=2, groups=6),  # depthwise
    tc.Conv(np.ones((8, 8, 3, 3)), (8, 64, 64), padding=1, padding_mode="reflect"),
    tc.Conv(np.ones((3, 3, 3, 3, 3)), (3, 9, 9, 9), padding=1),  # 3-D
    tc.Conv(np.ones((4, 2, 3)), (4, 50), stride=2, groups=2, engine="numba"),
]
for op in layers:
    assert op.engine_in_use == "numba", op
    for dtype in (np.float32, np.float64):
        op.rmatvec(op.matvec(np.ones(op.shape[1], dtype=dtype)))
layers[0].tosparse()
kernels = (_conv_numba.wide_correlate, _conv_numba.wide_correlate_four,
           _rows_numba.rows_forward, _rows_numba.rows_adjoint, _assembly_numba.fill_zero_padded)
print(sum(len(k.stats.cache_misses) for k in kernels),
      sum(len(k.stats.cache_hits) for k in kernels))
"""


@needs_numba
def test_compile_command_leaves_nothing_for_later_products_to_compile(tmp_path):
    """``toeplitz-conv compile`` in one process; in the next, products of layers of
    every kind (depthwise, four at a time, 3-D, strided, the assembly) in both real
    types load every loop from numba's cache and compile none."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "toeplitz_conv.cli", "compile"]
    run = subprocess.run(command, env=env, capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 2 * len(precompile.LOOPS) + 1 and "ready" in lines[-1]
    later = [sys.executable, "-c", LATER_PRODUCTS]
    run = subprocess.run(later, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    misses, hits = map(int, run.stdout.split())
    assert misses == 0 and hits >= 5


WITHOUT_A_CACHE = """
import numba.core.caching
numba.core.caching.CacheImpl._locator_classes = []  # numba: nowhere to cache
import numpy as np, toeplitz_conv as tc
from toeplitz_conv.core import jit
from toeplitz_conv.cli import main
assert not jit.numba_can_cache()
weight = np.random.default_rng(0).standard_normal((4, 4, 3, 3))
ops = [tc.Conv(weight, (4, 9, 9), padding=1, engine=e) for e in ("numba", "sparse")]
x = np.random.default_rng(1).standard_normal(ops[0].shape[1])
np.testing.assert_allclose(ops[0].matvec(x), ops[1].matvec(x), rtol=1e-12, atol=1e-12)
ops[0].tosparse()  # the compiled assembly too
print("status", main(["compile", "--dtype", "float64"]))
"""


@needs_numba
def test_without_a_place_for_numba_s_cache_the_loops_compile_per_process():
    """A read-only installation with no writable cache folder: numba refuses
    cache=True when a loop is defined. The loops are defined uncached and still
    compute; ``toeplitz-conv compile`` says in one line why it cannot help."""
    run = subprocess.run([sys.executable, "-c", WITHOUT_A_CACHE], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "status 1"
    assert run.stderr.count("\n") == 1 and "NUMBA_CACHE_DIR" in run.stderr


def test_compile_without_numba_is_one_line_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setattr(precompile, "numba_installed", lambda: False)
    monkeypatch.setattr(precompile, "numba_import_error", lambda: "No module named 'numba'")
    assert main(["compile", "--dtype", "float64"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "numba is needed" in err and "toeplitz-conv[fast]" in err


@needs_numba
def test_scratch_memory_is_checked_before_it_is_spent():
    """A job copies the rows it reads from every input channel of its group: past
    SCRATCH_ITEMS for a single row block, that copy is checked against the budget."""
    from toeplitz_conv.core.memory import using_memory_budget
    from toeplitz_conv.engines.compiled import SCRATCH_ITEMS

    rng = np.random.default_rng(4)
    weight = rng.standard_normal((4, 1024, 3, 3)).astype(np.float32)
    op = tc.Conv(weight, (1024, 4, 398), padding=1, engine="numba")
    assert 1024 * 3 * 400 > SCRATCH_ITEMS  # input channels x (1 row + halo) x padded width
    x = rng.standard_normal(op.shape[1]).astype(np.float32)
    with using_memory_budget(10**6), pytest.raises(tc.MatrixTooLargeError, match="scratch"):
        op.matvec(x)
    y = op.matvec(x).reshape(op.output_shape)
    window = x.reshape(op.input_shape)[:, 1:4, 99:102].astype(np.float64)
    assert y[1, 2, 100] == pytest.approx(np.einsum("ckl,ckl->", weight[1], window), rel=1e-4)


@needs_numba
@pytest.mark.parametrize("seconds", [1.0, 0.0])
def test_run_jobs_runs_every_job_once_and_passes_errors_on(seconds):
    """Jobs handed out in chunks to the pool and the caller: each job exactly once,
    whichever thread takes it; a chunk's error reaches the caller."""
    done, lock = [], threading.Lock()

    def kernel(tag, lo, hi):
        with lock:
            done.extend(range(lo, hi))

    jit.run_jobs(kernel, ("tag",), jobs=37, seconds=seconds, first=5)
    assert sorted(done) == list(range(5, 42))

    def failing(lo, hi):
        if lo <= 20 < hi:
            raise RuntimeError("chunk 20")

    with pytest.raises(RuntimeError, match="chunk 20"):
        jit.run_jobs(failing, (), jobs=37, seconds=seconds)


@needs_numba
@pytest.mark.parametrize("stride", [1, 2])
def test_threads_share_one_operator(stride, monkeypatch):
    """Eight threads at once on one layer, each sharing its product with the pool:
    each gets what a lone call gets."""
    monkeypatch.setattr(jit, "SERIAL_SECONDS", 0.0)  # small products use the pool too
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((8, 2, 3, 3))
    op = tc.Conv(weight, (8, 40, 36), stride=stride, padding=1, groups=4, engine="numba")
    xs = [rng.standard_normal(op.shape[1]) for _ in range(8)]
    expected = [(op.matvec(x), op.rmatvec(op.matvec(x))) for x in xs]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda x: (op.matvec(x), op.rmatvec(op.matvec(x))), xs * 4))
    for (ax, ahax), (want_ax, want_ahax) in zip(results, expected * 4):
        np.testing.assert_array_equal(ax, want_ax)
        np.testing.assert_array_equal(ahax, want_ahax)


def _child_product(args):
    weight, x = args
    return tc.Conv(weight, (4, 64, 64), padding=1, engine="numba").matvec(x)


@needs_numba
def test_a_forked_child_computes_after_the_parent_used_its_threads(monkeypatch):
    monkeypatch.setattr(jit, "SERIAL_SECONDS", 0.0)  # the product uses the pool
    rng = np.random.default_rng(2)
    weight, x = rng.standard_normal((4, 4, 3, 3)), rng.standard_normal(4 * 64 * 64)
    here = _child_product((weight, x))  # starts this process's thread pool
    with multiprocessing.get_context("fork").Pool(1) as pool:
        there = pool.apply_async(_child_product, ((weight, x),)).get(timeout=120)
    np.testing.assert_array_equal(there, here)


@needs_numba
def test_thread_count_follows_numba_num_threads(monkeypatch):
    import numba

    from toeplitz_conv.core.jit import compiled_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 1)
    assert compiled_threads() == 1
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 64)
    assert compiled_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as under MPI: one thread per rank
    assert compiled_threads() == 1


@needs_numba
@pytest.mark.parametrize("mode", ["zeros", "circular"])
def test_an_infinite_input_reaches_only_the_outputs_that_read_it(mode):
    """7 outputs and 3 x 3 x 3 = 27 terms: the four-at-a-time loops pad both with zero
    weights, which must never meet the input's infinity (0 * inf is NaN)."""
    rng = np.random.default_rng(3)
    weight = rng.uniform(0.5, 1.5, (7, 3, 3, 3))
    x = rng.standard_normal((1, 3, 12, 12))
    x[0, 0, 5, 6] = np.inf  # channel 0: the one a padding term would point at
    op = tc.Conv(weight, (3, 12, 12), padding=1, padding_mode=mode, engine="numba")
    pads = ((1, 1), (1, 1))
    expected = conv(x, weight, stride=(1, 1), pads=pads, dilation=(1, 1), groups=1, mode=mode)
    y = op.apply(x)
    assert np.isinf(expected).sum() == 7 * 9 and not np.isnan(expected).any()
    assert_close(np.nan_to_num(y, posinf=0), np.nan_to_num(expected, posinf=0), np.float64, 10.0)
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(expected))


@needs_numba
def test_auto_compiles_layers_of_few_channels_per_group():
    """The rule of engines.resolve_engine with numba: channels per group and size decide."""
    depthwise = tc.Conv(np.ones((8, 1, 3, 3)), (8, 128, 128), padding=1, groups=8)
    tiny_groups = tc.Conv(np.ones((64, 1, 3, 3)), (64, 4, 4), padding=1, groups=64)
    few = tc.Conv(np.ones((4, 4, 3, 3)), (4, 9, 9), padding=1)
    sixteen = tc.Conv(np.ones((16, 16, 3, 3)), (16, 16, 16), padding=1)
    many = tc.Conv(np.ones((32, 32, 3, 3)), (32, 64, 64), padding=1)
    wide_small = tc.Conv(np.ones((64, 64, 3, 3)), (64, 64, 64), padding=1)
    wide_large = tc.Conv(np.ones((64, 64, 3, 3)), (64, 512, 512), padding=1)
    assert engines.AUTO_NUMBA_TIERS == ((256, 1), (4096, 512 * 512))
    compiled = (depthwise, tiny_groups, few, sixteen, wide_large)
    assert {op.engine_in_use for op in compiled} == {"numba"}
    assert many.engine_in_use == wide_small.engine_in_use == "direct"
    assert "engine auto (numba)" in few.summary()


def test_without_numba_auto_uses_the_numpy_engines_and_numba_is_refused(monkeypatch):
    monkeypatch.setattr(engines, "numba_installed", lambda: False)
    monkeypatch.setattr(engines, "numba_import_error", lambda: "No module named 'numba'")
    assert "numba" not in engines.installed_engines()
    depthwise = tc.Conv(np.ones((8, 1, 3, 3)), (8, 128, 128), padding=1, groups=8)
    small = tc.Conv(np.ones((4, 4, 3, 3)), (4, 9, 9), padding=1)
    assert depthwise.engine_in_use == "direct" and small.engine_in_use == "sparse"
    with pytest.raises(ImportError, match=r'pip install "toeplitz-conv\[fast\]"'):
        tc.Conv(np.ones((1, 1, 3)), (1, 9), engine="numba")
    assert tc.check_adjoint(small).engine_agreement < 1e-12  # sparse against direct alone
