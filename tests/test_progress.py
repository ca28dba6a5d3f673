"""Progress bars: shown on long assemblies when enabled, silent otherwise."""

import numpy as np
import pytest

import toeplitz_conv as tc
import toeplitz_conv.core.block_matrix as bm
from toeplitz_conv.core.progress import progress_enabled, set_progress


@pytest.fixture
def tiny_threshold(monkeypatch):
    monkeypatch.setattr(bm, "PROGRESS_NNZ", 10)
    monkeypatch.setattr(bm, "CHUNK_NNZ", 100)  # several chunks
    yield
    set_progress(None)


def test_long_assembly_shows_progress_when_enabled(tiny_threshold, capsys):
    set_progress(True)
    A = tc.Conv(np.ones((6, 2, 3)), (2, 40), padding=1).tosparse()
    err = capsys.readouterr().err
    assert "assembling" in err
    set_progress(False)
    B = tc.Conv(np.ones((6, 2, 3)), (2, 40), padding=1).tosparse()
    assert capsys.readouterr().err == ""
    assert (A != B).nnz == 0


def test_default_is_silent_when_not_a_terminal(tiny_threshold, capsys):
    set_progress(None)
    assert not progress_enabled()  # pytest's stderr is not a terminal
    tc.Conv(np.ones((6, 2, 3)), (2, 40), padding=1).tosparse()
    assert capsys.readouterr().err == ""


def test_chunked_assembly_equals_one_chunk(tiny_threshold):
    w = np.random.default_rng(0).standard_normal((5, 3, 3, 2))
    for mode in ("zeros", "reflect"):
        chunked = tc.Conv(w, (3, 6, 5), padding=1, padding_mode=mode).todense()
        bm.CHUNK_NNZ = 1 << 30
        whole = tc.Conv(w, (3, 6, 5), padding=1, padding_mode=mode).todense()
        bm.CHUNK_NNZ = 100
        np.testing.assert_array_equal(chunked, whole)


def test_set_progress_rejects_other_values():
    with pytest.raises(ValueError, match="enabled must be True, False or None"):
        set_progress("yes")
