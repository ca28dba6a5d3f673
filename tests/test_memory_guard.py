"""The memory guard bounds real memory: sizes in closed form, every explicit path checked
before it allocates, and its traced peak within 1.5x of what it checked."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import checked_bytes, traced_peak
from hypothesis import given, settings
from strategies import examples, layer_cases

import toeplitz_conv as tc

PEAK_RATIO = 1.5


@settings(max_examples=examples(150), deadline=None)
@given(case=layer_cases())
def test_closed_form_nnz_equals_the_assembled_matrix(case):
    op = tc.Conv(case.weight, case.input_shape, **case.kwargs())
    matrix = op.tosparse()
    assert op.nnz == matrix.nnz
    for fmt in ("csr", "csc", "coo"):
        sparse = op.tosparse(fmt)
        arrays = [sparse.data] + (
            list(sparse.coords) if fmt == "coo" else [sparse.indices, sparse.indptr]
        )
        assert op.sparse_nbytes(fmt) == sum(a.nbytes for a in arrays)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_edge_heavy_axes_count_exactly(mode):
    """Pads as wide as the input, dilation and stride: most rows touch the boundary."""
    padding = (4, 5) if mode != "circular" else (13, 17)
    for n, k, s, dil in [(5, 3, 1, 2), (6, 4, 2, 1), (7, 3, 3, 3), (5, 5, 1, 1)]:
        op = (
            tc.Conv(
                np.ones((1, 1, k)),
                (1, n),
                padding=(padding,),
                stride=s,
                dilation=dil,
                padding_mode=mode,
            )
            if mode != "reflect"
            else tc.Conv(
                np.ones((1, 1, k)),
                (1, n),
                padding=((n - 1, n - 2),),
                stride=s,
                dilation=1,
                padding_mode=mode,
            )
        )
        assert op.nnz == op.tosparse().nnz


def test_nnz_of_a_long_1d_layer_is_closed_form():
    """n = 10^7, k = 31, 'same': the index maps alone would take gigabytes."""
    op = tc.Conv(np.ones((1, 1, 31)), (1, 10**7), padding="same")
    peak = traced_peak(lambda: op.nnz)
    assert op.nnz == 31 * 10**7 - 2 * sum(range(1, 16))
    assert peak < 10**6
    with pytest.raises(tc.MatrixTooLargeError):
        op.tosparse(max_bytes=10**6)
    assert (
        traced_peak(lambda: pytest.raises(tc.MatrixTooLargeError, op.tosparse, max_bytes=10**6))
        < 10**6
    )


def _layers():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 4, 3, 3))
    few = rng.standard_normal((1, 1, 5, 5))
    return {
        "conv zeros": tc.Conv(w, (8, 48, 48), padding=1, groups=2),
        "conv reflect": tc.Conv(w, (8, 48, 48), padding=1, groups=2, padding_mode="reflect"),
        "conv-T stride": tc.ConvTranspose(w, (8, 40, 40), stride=2, padding=1, groups=2),
        "conv-T complex": tc.ConvTranspose(w.astype(np.complex128), (8, 40, 40), padding=1),
        "1->1 channel": tc.Conv(few, (1, 300, 300), padding=2, padding_mode="replicate"),
    }


@pytest.mark.parametrize("name", list(_layers()))
@pytest.mark.parametrize("path", ["csr", "csc", "coo", "bsr", "dense"])
def test_explicit_paths_peak_within_1_5x_of_what_they_check(name, path):
    op = _layers()[name]
    if path == "dense":
        op = tc.Conv(op.weight[:2, :1], (1, 24, 24), padding=1) if not op.transposed else op
        if op.transposed:
            op = tc.ConvTranspose(op.weight[:2, :1], (2, 20, 20), padding=1, groups=2)

        def call(max_bytes=None):
            return op.todense(max_bytes=max_bytes)
    else:

        def call(max_bytes=None):
            return op.tosparse(path, max_bytes=max_bytes)

    checked = checked_bytes(call)
    peak = traced_peak(lambda: call(max_bytes=checked))
    assert peak <= PEAK_RATIO * checked, f"peak {peak} vs checked {checked}"
    with pytest.raises(tc.MatrixTooLargeError):
        call(max_bytes=checked - 1)


@pytest.mark.parametrize("name", ["conv zeros", "conv-T stride", "conv-T complex"])
def test_check_adjoint_peaks_within_1_5x_of_what_it_checks(name):
    op = _layers()[name]
    report = tc.check_adjoint(op, seed=0, max_bytes=10**9)
    assert report.passed
    # the budget the matrix identity needs, read from its refusal note
    vectors = 12 * (op.shape[0] + op.shape[1]) * 16
    squeezed = tc.check_adjoint(op, seed=0, max_bytes=vectors + 1)
    note = next(n for n in squeezed.notes if "matrix identity" in n)
    checked = int(re.search(r"\((\d+) bytes\)", note).group(1))
    peak = traced_peak(lambda: tc.check_adjoint(op, seed=0, max_bytes=checked))
    assert peak <= PEAK_RATIO * checked, f"peak {peak} vs checked {checked}"


def test_check_adjoint_refuses_test_vectors_over_budget():
    op = tc.Conv(np.ones((1, 1, 3, 3)), (1, 100_000, 100_000), padding=1)
    with pytest.raises(tc.MatrixTooLargeError, match="test vectors"):
        tc.check_adjoint(op, max_bytes=10**9)


def test_fft_path_respects_the_budget():
    op = tc.Conv(np.ones((64, 64, 3, 3)), (64, 64, 64), padding=1, padding_mode="circular")
    with pytest.raises(tc.MatrixTooLargeError, match="per-frequency channel matrices"):
        tc.spectral_norm(op, max_bytes=10**6)
    huge = tc.Conv(np.ones((512, 512, 3, 3)), (512, 1024, 1024), padding=1, padding_mode="circular")
    with pytest.raises(tc.MatrixTooLargeError):
        tc.singular_values(huge)
    small = tc.Conv(np.ones((4, 4, 3, 3)), (4, 16, 16), padding=1, padding_mode="circular")
    checked = checked_bytes(lambda max_bytes: tc.singular_values(small, max_bytes=max_bytes))
    peak = traced_peak(lambda: tc.singular_values(small, max_bytes=checked))
    assert peak <= PEAK_RATIO * checked


def test_summary_of_a_huge_layer_allocates_nothing():
    op = tc.Conv(np.ones((64, 64, 3, 3, 3), dtype=np.float32), (64, 256, 256, 256), padding=1)
    assert traced_peak(op.summary) < 10**6
