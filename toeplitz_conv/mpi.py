"""Conv operators distributed over MPI ranks with pylops-mpi (the ``mpi`` extra).

The layout follows the block matrix. With ``groups = G >= ranks`` the matrix
is block-diagonal over groups, so each rank takes a contiguous run of groups:
its output and input channels are contiguous slices of the NCHW vectors, and
``pylops_mpi.MPIBlockDiag`` applies it with no communication. Otherwise the
output channels (block rows) are split over ranks: ``pylops_mpi.MPIVStack``
broadcasts the input, and the adjoint sums the ranks' contributions
(one allreduce). Each rank builds only its own part (lazily, as any operator),
so memory per rank is about the total divided by the number of ranks.

.. math::

    A = \\operatorname{blockdiag}(A_0, \\dots, A_{R-1})
    \\quad\\text{or}\\quad
    A = \\begin{bmatrix} A_0 \\\\ \\vdots \\\\ A_{R-1} \\end{bmatrix},
    \\qquad A^H y = \\sum_r A_r^H y_r .

Run with one thread per rank, ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mpiexec -n R
python script.py``: with more, the ranks' BLAS threads and MPI's busy-polling fight
over the cores (measured: 10 CGLS iterations 3.05 s instead of 0.35 s on 2 cores).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .operators import Conv, ConvTranspose, _ConvOperator

LAYOUTS = ("groups", "output_channels")


def _split(total: int, parts: int, index: int) -> tuple[int, int]:
    """Contiguous, balanced share ``[lo, hi)`` of ``total`` items for part ``index``."""
    base, extra = divmod(total, parts)
    lo = index * base + min(index, extra)
    return lo, lo + base + (index < extra)


def _local_conv(op: Conv, rank: int, size: int, layout: str) -> Conv:
    g, weight = op.geometry, op._layer.weight
    common = {**g.layer_kwargs(), "dtype": op.dtype, "engine": op.engine}
    if layout == "groups":
        lo, hi = _split(g.groups, size, rank)
        rows = slice(lo * g.out_per_group, hi * g.out_per_group)
        local_input = ((hi - lo) * g.in_per_group, *g.input_spatial)
        return Conv(weight[rows], local_input, **{**common, "groups": hi - lo})
    lo, hi = _split(g.out_channels, size, rank)
    # fewer groups than ranks: this rank's output channels read the whole input, with
    # the other groups' kernels as zero blocks
    dense = np.zeros((g.out_channels, g.in_channels, *g.kernel), dtype=weight.dtype)
    for group in range(g.groups):
        out = slice(group * g.out_per_group, (group + 1) * g.out_per_group)
        dense[out, group * g.in_per_group : (group + 1) * g.in_per_group] = weight[out]
    return Conv(dense[lo:hi], g.input_shape, **{**common, "groups": 1})


def distribute(
    op: Conv,
    comm=None,
    *,
    layout: Literal["auto", "groups", "output_channels"] = "auto",
):
    """A ``pylops_mpi.MPILinearOperator`` whose matvec/rmatvec equal ``op``'s.

    Parameters
    ----------
    op : Conv
        The layer (every rank passes the same one; nothing of it is assembled).
    comm : mpi4py.MPI.Comm, optional
        Default ``MPI.COMM_WORLD``.
    layout : {"auto", "groups", "output_channels"}
        ``"groups"``: each rank a contiguous run of groups (``MPIBlockDiag``,
        needs ``groups >= ranks``); ``"output_channels"``: each rank a run of
        output channels (``MPIVStack``); ``"auto"``: groups when there are at
        least as many as ranks.

    Returns
    -------
    pylops_mpi.MPIBlockDiag or pylops_mpi.MPIVStack
        With attributes ``layout`` and ``local_operator`` (this rank's ``Conv``);
        use :func:`scatter` for its vectors.
    """
    from mpi4py import MPI
    from pylops_mpi import MPIBlockDiag, MPIVStack

    if isinstance(op, ConvTranspose) or not isinstance(op, _ConvOperator):
        raise TypeError(
            f"op must be a toeplitz_conv Conv; got {type(op).__name__} "
            "(distribute a conv-transpose as distribute(conv).H)"
        )
    comm = MPI.COMM_WORLD if comm is None else comm
    size, rank = comm.Get_size(), comm.Get_rank()
    groups = op.geometry.groups
    if layout == "auto":
        layout = "groups" if groups >= size else "output_channels"
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'auto' or one of {LAYOUTS}; got {layout!r}")
    if layout == "groups" and groups < size:
        raise ValueError(
            f"layout='groups' needs groups >= ranks; got groups={groups} on "
            f"{size} ranks (use layout='output_channels')"
        )
    if layout == "output_channels" and op.geometry.out_channels < size:
        raise ValueError(
            f"layout='output_channels' needs C_out >= ranks; got "
            f"{op.geometry.out_channels} output channels on {size} ranks"
        )
    local = _local_conv(op, rank, size, layout)
    stack = MPIBlockDiag if layout == "groups" else MPIVStack
    distributed = stack([local], base_comm=comm, dtype=op.dtype)
    distributed.layout = layout
    distributed.local_operator = local
    return distributed


def scatter(D, v: np.ndarray, side: Literal["input", "output"] = "input"):
    """The ``pylops_mpi.DistributedArray`` holding global ``v`` in the layout ``D`` expects.

    Parameters
    ----------
    D : result of :func:`distribute`
    v : numpy.ndarray
        The whole vector, the same on every rank (length ``D.shape[1]`` for
        ``side="input"``, ``D.shape[0]`` for ``side="output"``).
    side : {"input", "output"}
        ``"input"`` for ``D.matvec``, ``"output"`` for ``D.rmatvec``.

    Returns
    -------
    pylops_mpi.DistributedArray
        ``D.matvec(scatter(D, x, "input")).asarray()`` equals ``op.matvec(x)``.
    """
    from pylops_mpi import DistributedArray, Partition

    if side not in ("input", "output"):
        raise ValueError(f"side must be 'input' or 'output'; got {side!r}")
    if not hasattr(D, "layout"):
        raise TypeError("D must come from toeplitz_conv.mpi.distribute")
    v = np.asarray(v)
    length = D.shape[1] if side == "input" else D.shape[0]
    if v.shape != (length,):
        raise ValueError(
            f"v must be a flat vector of length {length} for side={side!r}; got shape {v.shape}"
        )
    comm = D.base_comm
    if D.layout == "output_channels" and side == "input":
        array = DistributedArray(
            global_shape=length, base_comm=comm, partition=Partition.BROADCAST, dtype=D.dtype
        )
        array[:] = v
        return array
    local = D.local_operator.shape[1 if side == "input" else 0]
    shapes = comm.allgather((local,))
    start = sum(s[0] for s in shapes[: comm.Get_rank()])
    array = DistributedArray(
        global_shape=length, base_comm=comm, local_shapes=shapes, dtype=D.dtype
    )
    array[:] = v[start : start + local]
    return array
