"""Conv operators distributed over MPI ranks with pylops-mpi (the ``mpi`` extra).

The layout follows the block matrix. With ``groups = G >= ranks`` the matrix
is block-diagonal over groups, so each rank takes a contiguous run of groups:
its output and input channels are contiguous slices of the NCHW vectors, and
``pylops_mpi.MPIBlockDiag`` applies it with no communication. Otherwise the
output channels (block rows) are split over ranks: ``pylops_mpi.MPIVStack``
broadcasts the input, and the adjoint sums the ranks' contributions
(one allreduce); a rank's output channels may cut through groups, so its part
is a stack of per-group layers, each reading only its group's input channels.
Each rank builds only its own part (lazily, as any operator), with no zero
blocks, so the ranks' nonzeros add up to the layer's and memory per rank is
about the total divided by the number of ranks.

.. math::

    A = \\operatorname{blockdiag}(A_0, \\dots, A_{R-1})
    \\quad\\text{or}\\quad
    A = \\begin{bmatrix} A_0 \\\\ \\vdots \\\\ A_{R-1} \\end{bmatrix},
    \\qquad A^H y = \\sum_r A_r^H y_r .

Run with one thread per rank, ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mpiexec -n R
python script.py``: with more, the ranks' BLAS threads and MPI's busy-polling fight
over the cores (the docs' MPI page and ``examples/mpi_deconvolution.py`` show it).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pylops import LinearOperator

from ..core.errors import ParameterError, ParameterTypeError
from ..layers.conv import Conv, ConvOperator

__all__ = ["GroupSlices", "distribute", "scatter"]

LAYOUTS = ("groups", "output_channels")


def _split(total: int, parts: int, index: int) -> tuple[int, int]:
    """Contiguous, balanced share ``[lo, hi)`` of ``total`` items for part ``index``."""
    base, extra = divmod(total, parts)
    lo = index * base + min(index, extra)
    return lo, lo + base + (index < extra)


class GroupSlices(LinearOperator):
    """Output channels ``[lo, hi)`` of a grouped conv: one :class:`Conv` per group touched.

    .. math::

        A_r x = \\begin{bmatrix} A_{g_0} x_{g_0} \\\\ \\vdots \\\\ A_{g_1} x_{g_1}
        \\end{bmatrix}, \\qquad
        A_r^H y = \\sum_g E_g A_g^H y_g,

    with :math:`x_g` the input channels of group :math:`g` and :math:`E_g` their
    embedding in the whole input. Each piece holds only its own kernels.

    Attributes
    ----------
    pieces : list of (slice, Conv)
        The input slice each piece reads, and the piece.
    """

    def __init__(self, pieces: list[tuple[slice, Conv]], n_inputs: int, dtype) -> None:
        self.pieces = pieces
        rows = sum(piece.shape[0] for _, piece in pieces)
        super().__init__(dtype=np.dtype(dtype), shape=(rows, n_inputs), name="GroupSlices")

    @property
    def nnz(self) -> int:
        """Nonzeros of this rank's part (the pieces' sum)."""
        return sum(piece.nnz for _, piece in self.pieces)

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([piece.matvec(x[cols]) for cols, piece in self.pieces])

    def _rmatvec(self, y: np.ndarray) -> np.ndarray:
        out = np.zeros(self.shape[1], dtype=np.result_type(self.dtype, y.dtype))
        start = 0
        for cols, piece in self.pieces:
            out[cols] += piece.rmatvec(y[start : start + piece.shape[0]])
            start += piece.shape[0]
        return out


def _local_conv(op: Conv, rank: int, size: int, layout: str) -> Conv | GroupSlices:
    g, weight = op.geometry, op.weight
    common = {**g.layer_kwargs(), "dtype": op.dtype, "engine": op.engine}
    if layout == "groups":
        lo, hi = _split(g.groups, size, rank)
        rows = slice(lo * g.out_per_group, hi * g.out_per_group)
        local_input = ((hi - lo) * g.in_per_group, *g.input_spatial)
        return Conv(weight[rows], local_input, **{**common, "groups": hi - lo})
    lo, hi = _split(g.out_channels, size, rank)
    pixels = g.input_pixels * g.in_per_group  # input entries of one group
    pieces = []
    for group in range(lo // g.out_per_group, (hi - 1) // g.out_per_group + 1):
        first = max(lo, group * g.out_per_group)
        last = min(hi, (group + 1) * g.out_per_group)
        local = Conv(
            weight[first:last], (g.in_per_group, *g.input_spatial), **{**common, "groups": 1}
        )
        pieces.append((slice(group * pixels, (group + 1) * pixels), local))
    if len(pieces) == 1 and g.groups == 1:
        return pieces[0][1]
    return GroupSlices(pieces, op.shape[1], op.dtype)


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
        With attributes ``layout`` and ``local_operator`` (this rank's ``Conv``, or
        a :class:`GroupSlices` when its output channels span several groups);
        use :func:`scatter` for its vectors.
    """
    from mpi4py import MPI
    from pylops_mpi import MPIBlockDiag, MPIVStack

    if not isinstance(op, ConvOperator) or op.transposed:
        raise ParameterTypeError(
            "op",
            f"op must be a toeplitz_conv Conv; got {type(op).__name__} "
            "(distribute a conv-transpose as distribute(conv).H)",
        )
    comm = MPI.COMM_WORLD if comm is None else comm
    size, rank = comm.Get_size(), comm.Get_rank()
    groups = op.geometry.groups
    if layout == "auto":
        layout = "groups" if groups >= size else "output_channels"
    if layout not in LAYOUTS:
        raise ParameterError("layout", f"layout must be 'auto' or one of {LAYOUTS}; got {layout!r}")
    if layout == "groups" and groups < size:
        raise ParameterError(
            "layout",
            f"layout='groups' needs groups >= ranks; got groups={groups} on "
            f"{size} ranks (use layout='output_channels')",
        )
    if layout == "output_channels" and op.geometry.out_channels < size:
        raise ParameterError(
            "layout",
            f"layout='output_channels' needs C_out >= ranks; got "
            f"{op.geometry.out_channels} output channels on {size} ranks",
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
        raise TypeError("D must come from toeplitz_conv.interop.mpi.distribute")
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
