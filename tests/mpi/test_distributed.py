"""Distributed operators (pylops-mpi): `mpiexec -n 2 python -m pytest -m slow tests/mpi`.

Every rank checks the global results against the serial operator. CI sets
TOEPLITZ_CONV_REQUIRE_MPI=1 so that a missing MPI stack fails instead of skipping.
"""

import os

import numpy as np
import pylops
import pytest

if os.environ.get("TOEPLITZ_CONV_REQUIRE_MPI"):
    import pylops_mpi
else:
    pylops_mpi = pytest.importorskip("pylops_mpi")
from mpi4py import MPI  # noqa: E402
from pylops_mpi.utils.dottest import dottest  # noqa: E402

import toeplitz_conv as tc  # noqa: E402
from toeplitz_conv.interop import distribute, scatter  # noqa: E402

pytestmark = pytest.mark.slow  # under mpiexec, by .ci/run (README says how)

COMM = MPI.COMM_WORLD
SIZE = COMM.Get_size()

LAYERS = [
    # (weight shape, input shape, kwargs)
    ((4, 2, 3, 3), (4, 9, 8), dict(groups=2, padding=1)),
    ((8, 1, 3, 3), (4, 7, 7), dict(groups=4, stride=2, padding=1, padding_mode="reflect")),
    ((5, 3, 3), (3, 17), dict(padding="same", padding_mode="circular", dilation=2)),
    (
        (3, 2, 3, 3, 2),
        (2, 5, 4, 6),
        dict(padding=((1, 0), (1, 1), (0, 1)), padding_mode="replicate"),
    ),
    ((6, 2, 3, 3), (4, 8, 8), dict(groups=2, padding=1, stride=(1, 2))),
]


def _op(weight_shape, input_shape, kwargs, dtype=np.float64, engine="auto"):
    rng = np.random.default_rng(0)  # the same on every rank
    w = rng.standard_normal(weight_shape)
    if np.dtype(dtype).kind == "c":
        w = w + 1j * rng.standard_normal(weight_shape)
    return tc.Conv(w.astype(dtype), input_shape, dtype=dtype, engine=engine, **kwargs)


def _vectors(op, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(op.shape[1]).astype(op.dtype)
    y = rng.standard_normal(op.shape[0]).astype(op.dtype)
    if op.dtype.kind == "c":
        x = x + 1j * rng.standard_normal(op.shape[1])
        y = y + 1j * rng.standard_normal(op.shape[0])
    return x, y


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("engine", ["sparse", "direct"])
@pytest.mark.parametrize("layer", LAYERS)
def test_distributed_matvec_and_rmatvec_equal_the_serial_operator(layer, engine, dtype):
    op = _op(*layer, dtype=dtype, engine=engine)
    D = distribute(op)
    x, y = _vectors(op)
    np.testing.assert_allclose(D.matvec(scatter(D, x, "input")).asarray(), op.matvec(x), atol=1e-12)
    np.testing.assert_allclose(
        D.rmatvec(scatter(D, y, "output")).asarray(), op.rmatvec(y), atol=1e-12
    )
    expected_layout = "groups" if op.geometry.groups >= SIZE else "output_channels"
    assert D.layout == expected_layout


@pytest.mark.parametrize("groups", [1, 4])
@pytest.mark.parametrize("layout", ["groups", "output_channels"])
def test_both_layouts_and_each_rank_holds_its_share(layout, groups):
    if layout == "groups" and groups < SIZE:
        pytest.skip("the groups layout needs groups >= ranks (tested in test_errors)")
    op = _op((8, 8 // groups, 3, 3), (8, 10, 10), dict(groups=groups, padding=1))
    D = distribute(op, layout=layout)
    x, y = _vectors(op)
    np.testing.assert_allclose(D.matvec(scatter(D, x)).asarray(), op.matvec(x), atol=1e-12)
    np.testing.assert_allclose(
        D.rmatvec(scatter(D, y, "output")).asarray(), op.rmatvec(y), atol=1e-12
    )
    share = COMM.allgather(D.local_operator.nnz)
    # every layout stores each kernel once, on one rank: no zero blocks, total / ranks each
    assert sum(share) == op.nnz
    assert max(share) <= -(-op.geometry.out_channels // SIZE) * op.nnz // 8


def test_pylops_mpi_dottest():
    for layer in LAYERS:
        D = distribute(_op(*layer))
        x, y = _vectors(D.local_operator)
        u = scatter(D, np.random.default_rng(2).standard_normal(D.shape[1]), "input")
        v = scatter(D, np.random.default_rng(3).standard_normal(D.shape[0]), "output")
        assert dottest(D, u, v, rtol=1e-10)


def test_distributed_cgls_deconvolution_gives_the_serial_answer():
    op = _op((4, 2, 3, 3), (4, 12, 12), dict(groups=2, padding=1, padding_mode="reflect"))
    truth = np.random.default_rng(4).standard_normal(op.shape[1])
    data = op.matvec(truth)
    for layout in ("groups", "output_channels"):
        D = distribute(op, layout=layout)
        x0 = scatter(D, np.zeros(op.shape[1]), "input")
        y = scatter(D, data, "output")
        x = pylops_mpi.optimization.basic.cgls(D, y, x0=x0, niter=40, tol=0)[0].asarray()
        serial = pylops.optimization.basic.cgls(
            op, data, x0=np.zeros(op.shape[1]), niter=40, tol=0
        )[0]
        np.testing.assert_allclose(x, serial.ravel(), rtol=1e-7, atol=1e-9)


def test_errors():
    op = _op((4, 2, 3, 3), (4, 9, 8), dict(groups=2, padding=1))
    with pytest.raises(TypeError, match="op must be a toeplitz_conv Conv"):
        distribute(op.H)
    with pytest.raises(ValueError, match="layout must be"):
        distribute(op, layout="rows")
    D = distribute(op)
    with pytest.raises(ValueError, match="side must be"):
        scatter(D, np.zeros(D.shape[1]), "middle")
    with pytest.raises(ValueError, match="v must be a flat vector of length"):
        scatter(D, np.zeros(3))
    if SIZE > 1:
        single = _op((4, 4, 3, 3), (4, 9, 8), dict(padding=1))
        with pytest.raises(ValueError, match="needs groups >= ranks"):
            distribute(single, layout="groups")


def test_output_channels_cutting_through_groups_store_no_zero_blocks():
    """6 output channels in 3 groups on 2 ranks: each rank holds one and a half groups."""
    op = _op((6, 2, 3, 3), (6, 8, 8), dict(groups=3, padding=1, padding_mode="reflect"))
    D = distribute(op, layout="output_channels")
    x, y = _vectors(op)
    np.testing.assert_allclose(D.matvec(scatter(D, x)).asarray(), op.matvec(x), atol=1e-12)
    np.testing.assert_allclose(
        D.rmatvec(scatter(D, y, "output")).asarray(), op.rmatvec(y), atol=1e-12
    )
    assert sum(COMM.allgather(D.local_operator.nnz)) == op.nnz
    if SIZE == 2:
        assert len(D.local_operator.pieces) == 2  # a whole group and half of the next
