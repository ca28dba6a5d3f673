"""The compiled engine (``"numba"``): the sum over taps as compiled loops, no im2col.

.. math::

    (A x)_{b,o}[r] = \\sum_{i \\in g(o)} \\sum_t w_{o,i,t}\\,
    (P x)_{b,i}[r s + t \\delta],

computed by compiled loops straight from the input and into the output
(:mod:`~toeplitz_conv.engines._conv_numba` for stride 1, on a wide grid of
long runs; :mod:`~toeplitz_conv.engines._rows_numba` row by row for other
strides): zero padding is a bounds test in the
loop, so only reflect/replicate/circular layers copy their input through the
padding operator :math:`P` (:class:`~toeplitz_conv.engines.padded.Padding`)
and fold the adjoint back with :math:`P^T`. The adjoint is the same loop
with the flipped, conjugated kernel when every stride is 1, and otherwise a
loop that gathers, for each input row, the output rows that read it.

It is fastest where im2col's copy costs more than the GEMM saves: depthwise
layers and layers of few channels. A product is split into jobs
``(sample, group, piece of rows, block of channels)`` run by
:func:`toeplitz_conv.core.jit.run_jobs` on :func:`~toeplitz_conv.core.jit.compiled_threads`
threads (the loops release the GIL). Requires the optional ``numba`` package
(``pip install "toeplitz-conv[fast]"``); the loops compile once per value
type, on first use, and are cached on disk.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..core.geometry import Geometry
from ..core.jit import compiled_threads, run_jobs
from ..core.memory import check_budget
from .padded import Padding, Workspaces

__all__ = ["NumbaEngine"]

ROW_CHUNK_SAMPLES = 4096  # outputs per job, about: one job's rows stay in the L1/L2 cache
SPLIT_SAMPLES = 1024  # outputs per job, at least, when rows are split to feed the threads
FMA_SECONDS = 1e-10  # a multiply-add in the loops, about (order of magnitude: bench_engines.py)
# a job's padded copy of the rows it reads, at most (when one row block is more, its memory
# is checked against the budget before it is spent)
SCRATCH_ITEMS = 2**20


class NumbaEngine:
    """Products of one layer by compiled loops (see the module docstring).

    Parameters
    ----------
    geometry : Geometry
    weight : numpy.ndarray
        ``geometry.weight_shape`` (read, never written).
    dtype : numpy.dtype, optional
        The layer's value type (products run in the batch's own type).

    Raises
    ------
    ImportError
        When numba is not installed.
    """

    name = "numba"

    def __init__(self, geometry: Geometry, weight: np.ndarray, dtype=None) -> None:
        from . import _conv_numba, _rows_numba  # an ImportError naming numba when missing

        self._kernels, self._rows = _conv_numba, _rows_numba
        self.geometry = g = geometry
        self._workspaces = Workspaces()
        self._padding = Padding(g, self._workspaces)
        lift = (1,) * (3 - g.ndim)  # every layer runs as a 3-D one
        self._weight = weight.reshape(g.out_channels, g.in_per_group, *lift, *g.kernel)
        self._stride = np.array(lift + g.stride, dtype=np.int64)
        self._dilation = np.array(lift + g.dilation, dtype=np.int64)
        pads_before = np.array((0,) * len(lift) + tuple(p for p, _ in g.pads), dtype=np.int64)
        reach = (self._dilation * (np.array(self._weight.shape[2:]) - 1)).astype(np.int64)
        self._zero_padding = g.mode.drops_reads
        # reads start at -pads; zero padding is read in place, other modes from P x
        self._pads = pads_before if self._zero_padding else np.zeros(3, dtype=np.int64)
        # stride 1: A^H y is a correlation of y with the flipped kernel, reads from
        # -(reach - pads) (onto x) or -reach (onto P's grid, then folded by P^T)
        self._adjoint_pads = reach - self._pads
        self._by_type: dict[tuple, np.ndarray] = {}
        self._plans: dict[tuple, _WidePlan] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        """:math:`A x` for a batch ``x`` of shape ``(B, C_in, *input_spatial)``."""
        g = self.geometry
        source = x if self._zero_padding else self._padding.pad(x)
        y = np.empty((x.shape[0], g.out_channels, *g.output_spatial), dtype=x.dtype)
        self._correlate(source, self._weight_as(x.dtype), self._stride, self._pads, y)
        return y

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """:math:`A^H y` for a batch ``y`` of shape ``(B, C_out, *output_spatial)``."""
        g = self.geometry
        batch = y.shape[0]
        if self._zero_padding:
            out = np.empty((batch, g.in_channels, *g.input_spatial), dtype=y.dtype)
        else:  # every sample is written
            shape = (batch, g.in_channels, *self._padding.spatial)
            out = self._workspaces.get("padded", shape, y.dtype)
        if all(s == 1 for s in g.stride):
            flipped = self._weight_as(y.dtype, adjoint=True)
            self._correlate(y, flipped, self._stride, self._adjoint_pads, out)
        else:
            self._scatter(y, out)
        return out if self._zero_padding else self._padding.unpad(out)

    def _correlate(self, source, weight, stride, pads, out) -> None:
        """``out[o, r] = sum_{i, t} weight[o, i, t] * source[i, r stride + t dilation - pads]``,
        zero outside ``source``; with stride 1 on the wide grid, else row by row."""
        source = _lifted(_writable(source))
        if all(s == 1 for s in stride):
            self._correlate_wide(source, weight, pads, out)
        else:
            work = out.size * weight[0].size
            self._run_rows(self._rows.rows_forward, (source, weight, stride), pads, out, work)

    def _correlate_wide(self, source, weight, pads, out) -> None:
        """Stride 1: the wide-grid loops (:func:`~._conv_numba.wide_correlate`)."""
        out = _lifted(out)
        threads = compiled_threads()
        key = (out.shape, weight.shape, out.itemsize, threads)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._wide_plan(out.shape, weight.shape, out.itemsize, threads)
            self._plans = {**self._plans, key: plan}  # a new dict: other threads read it
        if plan.scratch_bytes > SCRATCH_ITEMS * out.itemsize:  # one row block is already more
            check_budget(
                plan.scratch_bytes * threads, f"numba engine's scratch rows ({threads} threads)"
            )
        args = (source, weight, self._dilation, pads, out, plan.rows_per_job, plan.outs_per_job)
        run_jobs(plan.kernel, args, jobs=plan.jobs, seconds=plan.seconds)

    def _wide_plan(self, out_shape, weight_shape, itemsize: int, threads: int) -> _WidePlan:
        """How a stride-1 product of these shapes runs (made once per shapes and threads)."""
        batch, channels, planes, rows, columns = out_shape
        out_per_group = channels // self.geometry.groups
        halo = int(self._dilation[1]) * (weight_shape[3] - 1)
        width = columns + int(self._dilation[2]) * (weight_shape[4] - 1)
        slot_rows = weight_shape[1] * weight_shape[2]  # scratch rows per row of a job
        most_rows = min(rows, _rows_per_job(width))
        most_rows = max(1, min(most_rows, SCRATCH_ITEMS // (slot_rows * width) - halo))
        four = _four_at_a_time(out_per_group)
        # a piece of rows worth its own copy: a long run, and the halo copied twice a small part
        fewest = max(4 * halo, -(-SPLIT_SAMPLES // width))
        rows_per_job, outs_per_job, jobs = _wide_jobs(
            batch * self.geometry.groups * planes,
            rows,
            out_per_group,
            most_rows,
            fewest,
            four,
            threads,
        )
        return _WidePlan(
            kernel=self._kernels.wide_correlate_four if four else self._kernels.wide_correlate,
            rows_per_job=rows_per_job,
            outs_per_job=outs_per_job,
            jobs=jobs,
            seconds=math.prod(out_shape) * math.prod(weight_shape[1:]) * FMA_SECONDS,
            scratch_bytes=slot_rows * (most_rows + halo) * width * itemsize,
        )

    def _scatter(self, y, out) -> None:
        """Strided :math:`A^H y` onto ``out`` (:func:`~._rows_numba.rows_adjoint`)."""
        y = _lifted(_writable(y))
        weight_h = self._weight_as(y.dtype, conjugate=True)
        work = y.size * weight_h[0].size
        operands = (y, weight_h, self._stride)
        self._run_rows(self._rows.rows_adjoint, operands, self._pads, out, work)

    def _run_rows(self, kernel, operands: tuple, pads, out, work: int) -> None:
        """A row-by-row kernel, ``operands`` its (source, weight, stride), over jobs
        ``(b, channel of out, piece of rows of out)``; ``work``: its multiply-adds."""
        out = _lifted(out)
        chunk = _rows_per_job(out.shape[-1])
        jobs = out.shape[0] * out.shape[1] * -(-math.prod(out.shape[2:4]) // chunk)
        operands = (*operands, self._dilation, pads, out, chunk)
        run_jobs(kernel, operands, jobs=jobs, seconds=work * FMA_SECONDS)

    def _weight_as(self, dtype, conjugate: bool = False, adjoint: bool = False) -> np.ndarray:
        """The lifted weight in the batch's type; ``conjugate``: conjugated; ``adjoint``:
        the stride-1 adjoint's kernel (conjugated, flipped, channel roles swapped)."""
        key = (np.dtype(dtype), conjugate, adjoint)
        weight = self._by_type.get(key)
        if weight is None:
            weight = self._weight.conj() if conjugate or adjoint else self._weight
            if adjoint:
                g = self.geometry
                weight = np.flip(weight, axis=(2, 3, 4)).reshape(
                    g.groups, g.out_per_group, g.in_per_group, *weight.shape[2:]
                )
                weight = np.swapaxes(weight, 1, 2).reshape(
                    g.in_channels, g.out_per_group, *weight.shape[3:]
                )
            weight = np.array(weight, dtype=dtype, order="C")  # a writable copy
            self._by_type = {**self._by_type, key: weight}  # a new dict: other threads read it
        return weight


def _writable(array: np.ndarray) -> np.ndarray:
    """``array``, C-contiguous and writable (a copy only when it is not).

    Numba compiles one version of a loop per argument type, and a read-only
    array is a type of its own: every array reaching the loops is writable, so
    each value type compiles once (the loops never write their inputs).
    """
    if array.flags.c_contiguous and array.flags.writeable:
        return array
    return np.array(array, order="C")


def _lifted(array: np.ndarray) -> np.ndarray:
    """``(B, C, *spatial)`` as ``(B, C, n0, n1, n2)``, leading size-1 axes added (a view)."""
    return array.reshape(*array.shape[:2], *(1,) * (5 - array.ndim), *array.shape[2:])


def _four_at_a_time(out_per_group: int) -> bool:
    """Whether the outputs of a group run four at a time
    (:func:`~._conv_numba.wide_correlate_four`): when padding them to a multiple of
    four adds at most a quarter (``5, 6, 9`` channels run one at a time)."""
    return out_per_group >= 4 and 4 * (-(-out_per_group // 4)) * 4 <= 5 * out_per_group


class _WidePlan(NamedTuple):
    """A stride-1 product's kernel, its job split, its time on one thread (estimated)
    and a job's scratch bytes."""

    kernel: Callable
    rows_per_job: int
    outs_per_job: int
    jobs: int
    seconds: float
    scratch_bytes: int


def _wide_jobs(
    planes: int,
    rows: int,
    out_per_group: int,
    most_rows: int,
    fewest_rows: int,
    four: bool,
    threads: int,
) -> tuple[int, int, int]:
    """``(rows_per_job, outs_per_job, jobs)`` for :func:`~._conv_numba.wide_correlate`.

    A job takes at most ``most_rows`` rows (its run and scratch stay in cache);
    there are at least two jobs per thread, so that a slow thread is waited for
    briefly. A job copies the rows it reads once for all the outputs of its
    block, so the rows are split first, down to pieces of ``fewest_rows`` rows,
    then the output channels of a group (each block copies the same inputs
    again), and then the rows further if the jobs are still too few (rows first
    is the faster order: ``benchmarks/run.py``'s layers show it). The number of
    jobs is a multiple of the threads where the rows allow.
    """
    wanted = 2 * threads
    pieces = -(-rows // most_rows)
    if planes * pieces < wanted:
        pieces = max(pieces, min(-(-wanted // planes), rows // fewest_rows))
    blocks = 1
    if planes * pieces < wanted:
        blocks = min(out_per_group, -(-wanted // (planes * pieces)))
    outs_per_job = -(-out_per_group // blocks)
    if four:  # blocks of whole fours
        outs_per_job = 4 * -(-outs_per_job // 4)
    blocks = -(-out_per_group // outs_per_job)
    if planes * blocks * pieces < wanted:  # too few outputs as well: shorter pieces
        pieces = max(pieces, min(rows, -(-wanted // (planes * blocks))))
    while (planes * blocks * pieces) % threads and pieces < rows:  # even shares per thread
        pieces += 1
    rows_per_job = -(-rows // pieces)
    return rows_per_job, outs_per_job, planes * -(-rows // rows_per_job) * blocks


def _rows_per_job(row_length: int) -> int:
    """Rows of ``row_length`` outputs in about ``ROW_CHUNK_SAMPLES`` (at least one)."""
    return max(1, ROW_CHUNK_SAMPLES // max(1, row_length))
