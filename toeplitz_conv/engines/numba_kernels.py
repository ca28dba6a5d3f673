"""The compiled loops of the ``"numba"`` engine (imported only when numba is installed).

Every layer runs as a 3-D one, ``(B, C, n0, n1, n2)``. A kernel runs the jobs
``first <= job < last`` of one product, so the engine can split a product over
threads; no two jobs write the same sample. Reads outside the source are
zeros (a negative ``pads`` entry crops), so zero padding costs no copy of the
input.

An output is a sum of *terms*, one per (input channel, tap). With stride 1
(:func:`wide_correlate`) a job copies the rows it reads into a zero-padded
scratch grid in cache, on which every term is one shift of one long run of
samples; a vectorised pass over the run adds four terms to four outputs at
once (each read serves four sums), or up to eight terms to a lone output. Other strides
(:func:`rows_forward`, :func:`rows_adjoint`) go row by row, terms four at a
time where every read is inside the row, term by term with a bounds test at
the row's ends. Each contiguous run is sliced so that its loop index counts
from zero, which lets numba drop its negative-index test (that test stops
LLVM's vectoriser).

Compiled once per value type on first use and cached on disk (``cache=True``);
the helpers are inlined into the kernels (``inline="always"``), so each kernel
is one unit of compilation.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["JIT_OPTIONS", "fill_zero", "wide_correlate"]

# "contract": a * b + c may run as one fused multiply-add (one rounding instead of two)
JIT_OPTIONS = dict(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})


@njit(**JIT_OPTIONS)
def wide_correlate(
    source, weight, dilation, pads, out, rows_per_job, outs_per_job, first, last
):  # pragma: no cover
    """Stride 1: for each job ``(b, g, r0, piece, block)``, the outputs ``o`` of one
    block of ``outs_per_job`` channels of group ``g``, in the rows ``r1`` of one
    piece of ``rows_per_job`` rows of plane ``r0``,

    ``out[b, o, r, m] = sum_{i, t} weight[o, i, t] * source[b, g C_in/G + i, r + t d - pads]``,

    zero outside ``source``. A job first copies the rows its piece reads,
    zero-padded, into a scratch grid of ``m2 + (k2 - 1) d2`` columns, one slot per
    (input channel, tap plane). On that *wide grid* a tap is one shift of the
    whole piece: every sum runs over one long run of samples, those past a row's
    end included, and the outputs are copied out of the run at the end.
    ``weight`` is ``(C_out, C_in / G, k0, k1, k2)``.
    """
    batch, in_channels, n0, n1, n2 = source.shape
    out_channels, in_per_group, k0, k1, k2 = weight.shape
    m0, m1, m2 = out.shape[2], out.shape[3], out.shape[4]
    d0, d1, d2 = dilation[0], dilation[1], dilation[2]
    p0, p1, p2 = pads[0], pads[1], pads[2]
    groups = in_channels // in_per_group
    out_per_group = out_channels // groups
    width = m2 + (k2 - 1) * d2
    height = rows_per_job + (k1 - 1) * d1
    scratch = np.empty((in_per_group * k0, height * width), dtype=out.dtype)
    slot_channel = np.empty(in_per_group * k0, dtype=np.int64)
    slot_plane = np.empty(in_per_group * k0, dtype=np.int64)
    runs = np.empty((4, (rows_per_job - 1) * width + m2), dtype=out.dtype)
    terms = in_per_group * k0 * k1 * k2
    term_weight = np.empty((4, terms), dtype=out.dtype)
    term_slot = np.empty(terms, dtype=np.int64)
    term_shift = np.empty(terms, dtype=np.int64)
    pieces = -(-m1 // rows_per_job)
    blocks = -(-out_per_group // outs_per_job)
    for job in range(first, last):
        block = job % blocks
        piece = (job // blocks) % pieces
        r0 = (job // (blocks * pieces)) % m0
        g = (job // (blocks * pieces * m0)) % groups
        b = job // (blocks * pieces * m0 * groups)
        lo, hi = piece * rows_per_job, min(m1, (piece + 1) * rows_per_job)
        rows = hi - lo + (k1 - 1) * d1
        slots = 0
        for i in range(in_per_group):
            for t0 in range(k0):
                q0 = r0 + t0 * d0 - p0
                if 0 <= q0 < n0:
                    plane = source[b, g * in_per_group + i, q0]
                    _copy_padded(plane, lo - p1, -p2, rows, width, scratch[slots])
                    slot_channel[slots], slot_plane[slots] = i, t0
                    slots += 1
        length = (hi - lo - 1) * width + m2
        first_output = g * out_per_group + block * outs_per_job
        last_output = min((g + 1) * out_per_group, first_output + outs_per_job)
        o = first_output
        while o < last_output:
            outputs = 4 if last_output - o >= 4 else 1  # four at a time share their reads
            count = 0
            for slot in range(slots):
                i, t0 = slot_channel[slot], slot_plane[slot]
                for t1 in range(k1):
                    for t2 in range(k2):
                        for a in range(outputs):
                            term_weight[a, count] = weight[o + a, i, t0, t1, t2]
                        term_slot[count] = slot
                        term_shift[count] = t1 * d1 * width + t2 * d2
                        count += 1
            if outputs == 4:
                _sum_runs_four(scratch, term_weight, term_slot, term_shift, count, runs, length)
            else:
                _sum_runs(scratch, term_weight[0], term_slot, term_shift, count, runs[0, :length])
            for a in range(outputs):
                for r1 in range(lo, hi):
                    target, values = out[b, o + a, r0, r1], runs[a, (r1 - lo) * width :]
                    for j in range(m2):
                        target[j] = values[j]
            o += outputs


@njit(**JIT_OPTIONS, inline="always")
def _sum_runs_four(flat, term_weight, term_slot, term_shift, count, runs, n):  # pragma: no cover
    """:func:`_sum_runs` for four outputs at once (``term_weight`` and ``runs`` have a
    row per output): each read of a term serves four sums, four terms per pass, so
    that the eight multiply-adds of a step stay in registers (a quarter faster than
    one output at a time on this machine)."""
    run_a, run_b, run_c, run_d = runs[0, :n], runs[1, :n], runs[2, :n], runs[3, :n]
    fill_zero(run_a)
    fill_zero(run_b)
    fill_zero(run_c)
    fill_zero(run_d)
    wa, wb, wc, wd = term_weight[0], term_weight[1], term_weight[2], term_weight[3]
    k = 0
    while count - k >= 4:
        x0 = flat[term_slot[k], term_shift[k] :]
        x1 = flat[term_slot[k + 1], term_shift[k + 1] :]
        x2 = flat[term_slot[k + 2], term_shift[k + 2] :]
        x3 = flat[term_slot[k + 3], term_shift[k + 3] :]
        a0, a1, a2, a3 = wa[k], wa[k + 1], wa[k + 2], wa[k + 3]
        b0, b1, b2, b3 = wb[k], wb[k + 1], wb[k + 2], wb[k + 3]
        c0, c1, c2, c3 = wc[k], wc[k + 1], wc[k + 2], wc[k + 3]
        e0, e1, e2, e3 = wd[k], wd[k + 1], wd[k + 2], wd[k + 3]
        for j in range(n):
            v0, v1, v2, v3 = x0[j], x1[j], x2[j], x3[j]
            run_a[j] += (a0 * v0 + a1 * v1) + (a2 * v2 + a3 * v3)
            run_b[j] += (b0 * v0 + b1 * v1) + (b2 * v2 + b3 * v3)
            run_c[j] += (c0 * v0 + c1 * v1) + (c2 * v2 + c3 * v3)
            run_d[j] += (e0 * v0 + e1 * v1) + (e2 * v2 + e3 * v3)
        k += 4
    while k < count:
        x0 = flat[term_slot[k], term_shift[k] :]
        a0, b0, c0, e0 = wa[k], wb[k], wc[k], wd[k]
        for j in range(n):
            v0 = x0[j]
            run_a[j] += a0 * v0
            run_b[j] += b0 * v0
            run_c[j] += c0 * v0
            run_d[j] += e0 * v0
        k += 1


@njit(**JIT_OPTIONS, inline="always")
def _copy_padded(plane, first_row, first_column, rows, width, slot):  # pragma: no cover
    """``slot[r * width + c] = plane[first_row + r, first_column + c]``, zero outside
    ``plane``, for ``r < rows`` and ``c < width``."""
    n1, n2 = plane.shape
    lo = min(width, max(0, -first_column))  # columns [lo, hi) lie inside the plane
    hi = max(lo, min(width, n2 - first_column))
    for r in range(rows):
        target = slot[r * width : (r + 1) * width]
        q1 = first_row + r
        if q1 < 0 or q1 >= n1:
            fill_zero(target)
            continue
        fill_zero(target[:lo])
        fill_zero(target[hi:])
        values = plane[q1, first_column + lo :]
        inner = target[lo:hi]
        for j in range(hi - lo):
            inner[j] = values[j]


@njit(**JIT_OPTIONS, inline="always")
def _sum_runs(flat, term_weight, term_slot, term_shift, count, run):  # pragma: no cover
    """``run[j] = sum_k term_weight[k] * flat[term_slot[k], term_shift[k] + j]``, up to
    eight terms per pass (an eighth of the accumulator's reads and writes; 7-16 %
    faster than four on this machine)."""
    n = run.shape[0]
    fill_zero(run)
    k = 0
    while count - k >= 8:
        x0 = flat[term_slot[k], term_shift[k] :]
        x1 = flat[term_slot[k + 1], term_shift[k + 1] :]
        x2 = flat[term_slot[k + 2], term_shift[k + 2] :]
        x3 = flat[term_slot[k + 3], term_shift[k + 3] :]
        x4 = flat[term_slot[k + 4], term_shift[k + 4] :]
        x5 = flat[term_slot[k + 5], term_shift[k + 5] :]
        x6 = flat[term_slot[k + 6], term_shift[k + 6] :]
        x7 = flat[term_slot[k + 7], term_shift[k + 7] :]
        w0, w1, w2, w3 = term_weight[k], term_weight[k + 1], term_weight[k + 2], term_weight[k + 3]
        w4, w5, w6, w7 = (
            term_weight[k + 4],
            term_weight[k + 5],
            term_weight[k + 6],
            term_weight[k + 7],
        )
        for j in range(n):
            run[j] += ((w0 * x0[j] + w1 * x1[j]) + (w2 * x2[j] + w3 * x3[j])) + (
                (w4 * x4[j] + w5 * x5[j]) + (w6 * x6[j] + w7 * x7[j])
            )
        k += 8
    if count - k >= 4:
        x0 = flat[term_slot[k], term_shift[k] :]
        x1 = flat[term_slot[k + 1], term_shift[k + 1] :]
        x2 = flat[term_slot[k + 2], term_shift[k + 2] :]
        x3 = flat[term_slot[k + 3], term_shift[k + 3] :]
        w0, w1, w2, w3 = term_weight[k], term_weight[k + 1], term_weight[k + 2], term_weight[k + 3]
        for j in range(n):
            run[j] += (w0 * x0[j] + w1 * x1[j]) + (w2 * x2[j] + w3 * x3[j])
        k += 4
    if count - k >= 2:
        x0 = flat[term_slot[k], term_shift[k] :]
        x1 = flat[term_slot[k + 1], term_shift[k + 1] :]
        w0, w1 = term_weight[k], term_weight[k + 1]
        for j in range(n):
            run[j] += w0 * x0[j] + w1 * x1[j]
        k += 2
    if count - k == 1:
        x0 = flat[term_slot[k], term_shift[k] :]
        w0 = term_weight[k]
        for j in range(n):
            run[j] += w0 * x0[j]


@njit(**JIT_OPTIONS, inline="always")
def fill_zero(array):  # pragma: no cover
    """``array[:] = 0`` as a plain loop (cheaper to compile than an array expression)."""
    for j in range(array.shape[0]):
        array[j] = 0
