"""The memory guard: matrices over budget are refused with their size; huge layers are lazy."""

import tracemalloc

import numpy as np
import pytest

import toeplitz_conv as tc


def test_huge_layer_constructs_without_allocating():
    w = np.zeros((64, 64, 3, 3, 3), dtype=np.float32)  # 442 kB
    tracemalloc.start()
    op = tc.Conv(w, (64, 256, 256, 256), padding=1)
    nnz = op.nnz
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert op.shape == (64 * 256**3, 64 * 256**3)
    assert nnz > 10**12
    assert peak < 20e6  # bytes: nothing of the matrix's size was allocated
    with pytest.raises(tc.MatrixTooLargeError) as info:
        op.tosparse()
    message = str(info.value)
    assert f"{nnz} nonzeros" in message and "TB" in message
    with pytest.raises(tc.MatrixTooLargeError, match="dense matrix"):
        op.todense()


def test_budget_can_be_set_and_overridden_per_call():
    op = tc.Conv(np.ones((2, 2, 3)), (2, 50), padding=1)
    try:
        tc.set_memory_budget(1000)
        with pytest.raises(tc.MatrixTooLargeError, match="budget is 1.0 kB"):
            op.tosparse()
        assert op.tosparse(max_bytes=10**6).nnz == op.nnz
    finally:
        tc.set_memory_budget(None)
    with pytest.raises(tc.MatrixTooLargeError, match="CSR matrix"):
        tc.Conv(np.ones((2, 2, 3)), (2, 50), padding=1).tosparse(max_bytes=100)
    with pytest.raises(ValueError, match="max_bytes must be at least 1 byte"):
        tc.set_memory_budget(-5)


def test_default_budget_is_a_fraction_of_available_memory():
    from toeplitz_conv.core.memory import DEFAULT_FRACTION, available_memory

    expected = DEFAULT_FRACTION * available_memory()  # read again: memory moves a little
    assert 0.8 * expected <= tc.memory_budget() <= 1.2 * expected
    assert expected > 10**8  # the machine has memory, so a 1-byte budget would fail above
