"""Block assembly: canonical CSR, index types, the groups pattern, laziness."""

import numpy as np
import pytest

import toeplitz_conv as tc
import toeplitz_conv.core.block_matrix as bm


def _layer(groups=2, mode="zeros", dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 4 // groups, 3, 3)).astype(dtype)
    return w, tc.Conv(w, (4, 6, 5), padding=1, groups=groups, padding_mode=mode)


@pytest.mark.parametrize("mode", ["zeros", "circular", "reflect", "replicate"])
def test_csr_is_canonical_and_nnz_is_known_before_assembly(mode):
    _, op = _layer(mode=mode)
    expected_nnz = op.nnz  # from the geometry alone
    A = op.tosparse()
    assert A.nnz == expected_nnz
    assert A.indices.dtype == np.int32 and A.indptr.dtype == np.int32
    for row in range(A.shape[0]):
        cols = A.indices[A.indptr[row] : A.indptr[row + 1]]
        assert np.all(np.diff(cols) > 0), "sorted and without duplicates"
    summed = A.copy()
    summed.sum_duplicates()
    assert summed.nnz == A.nnz


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_groups_make_the_block_pattern_block_diagonal(groups):
    w, op = _layer(groups=groups)
    dense = op.todense()
    n_out, n_in = 6 * 5, 6 * 5
    per_out, per_in = 4 // groups, 4 // groups
    for i in range(4):
        for j in range(4):
            block = dense[i * n_out : (i + 1) * n_out, j * n_in : (j + 1) * n_in]
            if i // per_out == j // per_in:
                expected = tc.kernel_block(w[i, j % per_in], (6, 5), padding=1).toarray()
                np.testing.assert_allclose(block, expected)
            else:
                assert not block.any()


def test_channel_multiplier_depthwise_layout():
    """groups = C_in with C_out = 2 C_in: output channel i reads input channel i // 2."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 1, 3))
    dense = tc.Conv(w, (3, 7), padding=1, groups=3).todense()
    for i in range(6):
        for j in range(3):
            block = dense[i * 7 : (i + 1) * 7, j * 7 : (j + 1) * 7]
            assert block.any() == (i // 2 == j)


def test_int64_indices_when_int32_does_not_fit(monkeypatch):
    w, op = _layer()
    reference = op.tosparse().toarray()
    monkeypatch.setattr(bm, "INT32_MAX", 100)
    big = tc.Conv(w, (4, 6, 5), padding=1, groups=2).tosparse()
    assert big.indices.dtype == np.int64 and big.indptr.dtype == np.int64
    np.testing.assert_array_equal(big.toarray(), reference)


def test_index_type_of_a_huge_layer_is_int64_without_assembly():
    g = tc.conv_geometry((64, 64, 3, 3, 3), (64, 256, 256, 256), padding=1)
    assert g.nnz == 64 * 64 * 254**3 * 27 + 64 * 64 * _boundary_correction()
    assert bm.index_dtype(g, g.nnz) == np.int64


def _boundary_correction():
    # per axis: 256 rows x 3 taps minus the 2 taps that fall on zero pads
    return (256 * 3 - 2) ** 3 - 254**3 * 27


def test_sparse_engine_assembles_once_and_tosparse_hands_out_new_matrices():
    _, op = _layer()
    sparse = op.with_engine("sparse")
    assert not op.layer.has_engine("sparse")
    sparse.matvec(np.ones(op.shape[1]))
    assert op.layer.has_engine("sparse") and sparse.layer is op.layer
    assert op.H.layer is op.layer  # the adjoint is a view of the same layer
    A, B = op.tosparse(), op.tosparse()
    assert A is not B and not np.shares_memory(A.data, B.data)
    assert A.data.flags.writeable and A.indices.flags.writeable


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr"])
def test_tosparse_formats(fmt):
    _, op = _layer()
    A = op.tosparse(fmt)
    assert A.format == fmt
    np.testing.assert_array_equal(A.toarray(), op.todense())
    At = op.H.tosparse(fmt)
    assert At.format == fmt
    np.testing.assert_array_equal(At.toarray(), op.todense().T)
