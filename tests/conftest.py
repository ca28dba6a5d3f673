"""Helpers shared by the tests: memory measurement and a small zoo of layers."""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import settings
from strategies import THOROUGH

import toeplitz_conv as tc

# hypothesis profiles: "ci" (HYPOTHESIS_PROFILE=ci, set by .ci/run) draws every random test's
# full count, the default a fifth (strategies.examples); tests without a count get 100 or 20
settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("fast", max_examples=20, deadline=None)
settings.load_profile("ci" if THOROUGH else "fast")


def checked_bytes(call: Callable[..., object]) -> int:
    """The bytes a memory-guarded call checks: what it reports when refused at 1 byte."""
    with pytest.raises(tc.MatrixTooLargeError) as info:
        call(max_bytes=1)
    return int(re.search(r"\((\d+) bytes\)", str(info.value)).group(1))


def traced_peak(call: Callable[[], object]) -> int:
    """Peak bytes allocated (numpy and Python) while ``call`` runs, its result dropped."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def zoo() -> list[tc.ConvOperator]:
    """A conv and a conv-transpose per padding mode, real and complex, strided and grouped."""
    rng = np.random.default_rng(7)
    ops = []
    for mode, dtype in [
        ("zeros", np.float64),
        ("circular", np.complex128),
        ("reflect", np.float32),
        ("replicate", np.complex64),
    ]:
        w = rng.standard_normal((4, 2, 3, 2))
        if np.dtype(dtype).kind == "c":
            w = w + 1j * rng.standard_normal(w.shape)
        w = w.astype(dtype)
        kwargs = dict(padding=1, padding_mode=mode, groups=2, dtype=dtype)
        ops.append(tc.Conv(w, (4, 9, 7), stride=(2, 1), **kwargs))
        ops.append(tc.ConvTranspose(w, (4, 6, 5), **kwargs))
    return ops


@pytest.fixture(
    params=range(8),
    ids=lambda i: ["zeros", "circular", "reflect", "replicate"][i // 2] + ("-T" if i % 2 else ""),
)
def any_op(request) -> tc.ConvOperator:
    """One operator of :func:`zoo`."""
    return zoo()[request.param]


def random_vector(rng: np.random.Generator, n: int, dtype) -> np.ndarray:
    """Standard normal (complex when ``dtype`` is)."""
    v = rng.standard_normal(n)
    if np.dtype(dtype).kind == "c":
        v = v + 1j * rng.standard_normal(n)
    return v.astype(dtype)


def pytest_ignore_collect(collection_path, config):
    """The MPI tests (all slow, run under mpiexec by .ci/run) import mpi4py and pylops-mpi,
    the [mpi] extra, when collected: a run that leaves out the slow tests, README's default,
    does not collect them at all (rather than skipping them where the extra is missing)."""
    excluding_slow = (config.getoption("markexpr") or "").replace(" ", "") == "notslow"
    return True if excluding_slow and collection_path.name == "mpi" else None
