"""The compiled loops of the ``"numba"`` engine (imported only when numba is installed).

Every layer runs as a 3-D one, ``(B, C, n0, n1, n2)``. A kernel runs the jobs
``first <= job < last`` of one product, so the engine can split a product over
threads; no two jobs write the same sample. Reads outside the source are
zeros (a negative ``pads`` entry crops), so zero padding costs no copy of the
input.

An output is a sum of *terms*, one per (input channel, tap). With stride 1
a job copies the rows it reads into a zero-padded scratch grid in cache, on
which every term is one shift of one long run of samples; a vectorised pass
over the run adds eight terms to one output (:func:`wide_correlate`, for
depthwise layers and others of few outputs per group) or four terms to four
outputs at once, each read serving four sums (:func:`wide_correlate_four`).
They are two kernels so that a layer compiles only the one it runs (a
third less time than one kernel with both paths). Other strides
(:func:`rows_forward`, :func:`rows_adjoint`) go row by row, terms four at a
time where every read is inside the row, term by term with a bounds test at
the row's ends. Each contiguous run is sliced so that its loop index counts
from zero, which lets numba drop its negative-index test (that test stops
LLVM's vectoriser).

Compiled once per value type on first use and cached on disk (``cache=True``,
unless numba has nowhere to write: :func:`toeplitz_conv.core.jit.numba_can_cache`);
the helpers are inlined into the kernels (``inline="always"``), so each kernel
is one unit of compilation.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..core.jit import numba_can_cache

__all__ = ["JIT_OPTIONS", "fill_zero", "wide_correlate", "wide_correlate_four"]

# "contract": a * b + c may run as one fused multiply-add (one rounding instead of two);
# cached on disk where numba has a place for it (else compiled once per process)
JIT_OPTIONS = dict(nogil=True, cache=numba_can_cache(), error_model="numpy", fastmath={"contract"})


@njit(**JIT_OPTIONS)
def wide_correlate(
    source, weight, dilation, pads, out, rows_per_job, outs_per_job, first, last
):  # pragma: no cover
    """Stride 1, one output at a time: for each job ``(b, g, r0, piece, block)``, the
    outputs ``o`` of one block of ``outs_per_job`` channels of group ``g``, in the
    rows ``r1`` of one piece of ``rows_per_job`` rows of plane ``r0``,

    ``out[b, o, r, m] = sum_{i, t} weight[o, i, t] * source[b, g C_in/G + i, r + t d - pads]``,

    zero outside ``source``. A job first copies the rows its piece reads,
    zero-padded, into a scratch grid of ``m2 + (k2 - 1) d2`` columns, one slot per
    (input channel, tap plane). On that *wide grid* a tap is one shift of the
    whole piece: every sum runs over one long run of samples, those past a row's
    end included, and the outputs are copied out of the run at the end.
    ``weight`` is ``(C_out, C_in / G, k0, k1, k2)``.
    """
    width, scratch, slot_source, runs, terms, term_weight = _workspace(
        weight, dilation, out, rows_per_job, 1
    )
    split = (rows_per_job, outs_per_job, width)
    for job in range(first, last):
        b, r0, lo, hi, first_output, last_output, slots, length = _open_job(
            job, source, weight, dilation, pads, out, split, scratch, slot_source
        )
        for o in range(first_output, last_output):
            count = _gather_terms(
                weight, dilation, width, o, 1, slots, slot_source, terms, term_weight
            )
            _sum_runs(scratch, term_weight[0], terms, count, runs[0, :length])
            _copy_out(out, runs, b, o, 1, r0, lo, hi, width)


@njit(**JIT_OPTIONS)
def wide_correlate_four(
    source, weight, dilation, pads, out, rows_per_job, outs_per_job, first, last
):  # pragma: no cover
    """:func:`wide_correlate` four outputs at a time: each read of a term serves four
    sums, four terms per pass, so that the sixteen multiply-adds of a step stay in
    registers (faster than one output at a time: ``benchmarks/run.py``).

    The outputs of a block past its end are summed with zero weights and
    dropped, and the terms are padded to a multiple of four with zero weights
    on a slot of zeros (``0 * 0``: an input's infinities never reach them).
    """
    width, scratch, slot_source, runs, terms, term_weight = _workspace(
        weight, dilation, out, rows_per_job, 4
    )
    split = (rows_per_job, outs_per_job, width)
    zero_slot = scratch.shape[0] - 1
    fill_zero(scratch[zero_slot])
    for job in range(first, last):
        b, r0, lo, hi, first_output, last_output, slots, length = _open_job(
            job, source, weight, dilation, pads, out, split, scratch, slot_source
        )
        for o in range(first_output, last_output, 4):
            outputs = min(4, last_output - o)
            count = _gather_terms(
                weight, dilation, width, o, outputs, slots, slot_source, terms, term_weight
            )
            while count % 4:
                terms[count, 0], terms[count, 1] = zero_slot, 0
                for a in range(4):
                    term_weight[a, count] = 0
                count += 1
            _sum_runs_four(scratch, term_weight, terms, count, runs, length)
            _copy_out(out, runs, b, o, outputs, r0, lo, hi, width)


@njit(**JIT_OPTIONS, inline="always")
def _workspace(weight, dilation, out, rows_per_job, outputs):  # pragma: no cover
    """A job's scratch: the wide grid's ``width`` and slots (one per (input channel,
    tap plane), and a last one for zeros), each slot's ``(channel, plane)``,
    ``outputs`` runs, and each term's ``(slot, shift)`` and weights (with room
    for padding)."""
    _, in_per_group, k0, k1, k2 = weight.shape
    width = out.shape[4] + (k2 - 1) * dilation[2]
    height = rows_per_job + (k1 - 1) * dilation[1]
    scratch = np.empty((in_per_group * k0 + 1, height * width), dtype=out.dtype)
    slot_source = np.empty((in_per_group * k0, 2), dtype=np.int64)
    runs = np.empty((outputs, (rows_per_job - 1) * width + out.shape[4]), dtype=out.dtype)
    count = in_per_group * k0 * k1 * k2 + 4
    terms = np.empty((count, 2), dtype=np.int64)
    return width, scratch, slot_source, runs, terms, np.empty((outputs, count), dtype=out.dtype)


@njit(**JIT_OPTIONS, inline="always")
def _open_job(
    job, source, weight, dilation, pads, out, split, scratch, slot_source
):  # pragma: no cover
    """Start job ``job``: its sample ``b``, plane ``r0``, rows ``[lo, hi)`` and output
    channels ``[first_output, last_output)``, the rows it reads copied into the wide
    grid's ``slots``, and the ``length`` of its runs; ``split`` is ``(rows_per_job,
    outs_per_job, width)``."""
    rows_per_job, outs_per_job, width = split
    b, g, r0, lo, hi, first_output, last_output = _job(
        job, source, weight, out, rows_per_job, outs_per_job
    )
    slots = _fill_slots(
        source, weight, dilation, pads, b, g, r0, lo, hi, width, scratch, slot_source
    )
    length = (hi - lo - 1) * width + out.shape[4]
    return b, r0, lo, hi, first_output, last_output, slots, length


@njit(**JIT_OPTIONS, inline="always")
def _job(job, source, weight, out, rows_per_job, outs_per_job):  # pragma: no cover
    """Job ``job``'s sample ``b``, group ``g``, plane ``r0``, rows ``[lo, hi)`` and
    output channels ``[first_output, last_output)``."""
    groups = source.shape[1] // weight.shape[1]
    out_per_group = out.shape[1] // groups
    m0, m1 = out.shape[2], out.shape[3]
    pieces = -(-m1 // rows_per_job)
    blocks = -(-out_per_group // outs_per_job)
    block = job % blocks
    piece = (job // blocks) % pieces
    r0 = (job // (blocks * pieces)) % m0
    g = (job // (blocks * pieces * m0)) % groups
    b = job // (blocks * pieces * m0 * groups)
    first_output = g * out_per_group + block * outs_per_job
    last_output = min((g + 1) * out_per_group, first_output + outs_per_job)
    lo = piece * rows_per_job
    return b, g, r0, lo, min(m1, lo + rows_per_job), first_output, last_output


@njit(**JIT_OPTIONS, inline="always")
def _fill_slots(
    source, weight, dilation, pads, b, g, r0, lo, hi, width, scratch, slot_source
):  # pragma: no cover
    """Copy the rows ``[lo, hi)`` of plane ``r0`` read, zero-padded, into the slots
    of the wide grid; record each slot's ``(input channel, tap plane)``; return
    the number of slots (planes outside the source have none)."""
    _, in_per_group, k0, k1, _ = weight.shape
    n0 = source.shape[2]
    rows = hi - lo + (k1 - 1) * dilation[1]
    slots = 0
    for i in range(in_per_group):
        for t0 in range(k0):
            q0 = r0 + t0 * dilation[0] - pads[0]
            if 0 <= q0 < n0:
                plane = source[b, g * in_per_group + i, q0]
                _copy_padded(plane, lo - pads[1], -pads[2], rows, width, scratch[slots])
                slot_source[slots, 0], slot_source[slots, 1] = i, t0
                slots += 1
    return slots


@njit(**JIT_OPTIONS, inline="always")
def _gather_terms(
    weight, dilation, width, o, outputs, slots, slot_source, terms, term_weight
):  # pragma: no cover
    """The terms of outputs ``o .. o + outputs - 1``: each one's ``(slot, shift)`` on
    the wide grid in ``terms``, its weights in ``term_weight`` (a row per output,
    zero past ``outputs``); return their number."""
    _, _, _, k1, k2 = weight.shape
    count = 0
    for slot in range(slots):
        i, t0 = slot_source[slot, 0], slot_source[slot, 1]
        for t1 in range(k1):
            for t2 in range(k2):
                for a in range(term_weight.shape[0]):
                    term_weight[a, count] = weight[o + a, i, t0, t1, t2] if a < outputs else 0
                terms[count, 0], terms[count, 1] = slot, t1 * dilation[1] * width + t2 * dilation[2]
                count += 1
    return count


@njit(**JIT_OPTIONS, inline="always")
def _copy_out(out, runs, b, o, outputs, r0, lo, hi, width):  # pragma: no cover
    """Copy the rows ``[lo, hi)`` of outputs ``o .. o + outputs - 1`` out of their runs."""
    m2 = out.shape[4]
    for a in range(outputs):
        for r1 in range(lo, hi):
            target, values = out[b, o + a, r0, r1], runs[a, (r1 - lo) * width :]
            for j in range(m2):
                target[j] = values[j]


@njit(**JIT_OPTIONS, inline="always")
def _sum_runs_four(flat, term_weight, terms, count, runs, n):  # pragma: no cover
    """``runs[a, j] = sum_k term_weight[a, k] * flat[terms[k, 0], terms[k, 1] + j]`` for
    the four rows ``a``, four terms per pass (``count`` is a multiple of four).

    Each sum is one chain ``((r + a0 v0) + a1 v1) + ...``, which ``contract`` turns
    into four fused multiply-adds, fewer instructions than pairing the products
    first (six per sum; ``benchmarks/run.py``'s L1 and L3 compare them)."""
    run_a, run_b, run_c, run_d = runs[0, :n], runs[1, :n], runs[2, :n], runs[3, :n]
    fill_zero(run_a)
    fill_zero(run_b)
    fill_zero(run_c)
    fill_zero(run_d)
    wa, wb, wc, wd = term_weight[0], term_weight[1], term_weight[2], term_weight[3]
    for k in range(0, count, 4):
        x0 = flat[terms[k, 0], terms[k, 1] :]
        x1 = flat[terms[k + 1, 0], terms[k + 1, 1] :]
        x2 = flat[terms[k + 2, 0], terms[k + 2, 1] :]
        x3 = flat[terms[k + 3, 0], terms[k + 3, 1] :]
        a0, a1, a2, a3 = wa[k], wa[k + 1], wa[k + 2], wa[k + 3]
        b0, b1, b2, b3 = wb[k], wb[k + 1], wb[k + 2], wb[k + 3]
        c0, c1, c2, c3 = wc[k], wc[k + 1], wc[k + 2], wc[k + 3]
        e0, e1, e2, e3 = wd[k], wd[k + 1], wd[k + 2], wd[k + 3]
        for j in range(n):
            v0, v1, v2, v3 = x0[j], x1[j], x2[j], x3[j]
            run_a[j] = run_a[j] + a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3
            run_b[j] = run_b[j] + b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3
            run_c[j] = run_c[j] + c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3
            run_d[j] = run_d[j] + e0 * v0 + e1 * v1 + e2 * v2 + e3 * v3


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
def _sum_runs(flat, term_weight, terms, count, run):  # pragma: no cover
    """``run[j] = sum_k term_weight[k] * flat[terms[k, 0], terms[k, 1] + j]``, eight terms
    per pass (an eighth of the accumulator's reads and writes), the rest one by one
    (an odd square kernel has ``8 q + 1`` taps)."""
    n = run.shape[0]
    fill_zero(run)
    k = 0
    while count - k >= 8:
        x0 = flat[terms[k, 0], terms[k, 1] :]
        x1 = flat[terms[k + 1, 0], terms[k + 1, 1] :]
        x2 = flat[terms[k + 2, 0], terms[k + 2, 1] :]
        x3 = flat[terms[k + 3, 0], terms[k + 3, 1] :]
        x4 = flat[terms[k + 4, 0], terms[k + 4, 1] :]
        x5 = flat[terms[k + 5, 0], terms[k + 5, 1] :]
        x6 = flat[terms[k + 6, 0], terms[k + 6, 1] :]
        x7 = flat[terms[k + 7, 0], terms[k + 7, 1] :]
        w0, w1, w2, w3 = term_weight[k], term_weight[k + 1], term_weight[k + 2], term_weight[k + 3]
        w4, w5 = term_weight[k + 4], term_weight[k + 5]
        w6, w7 = term_weight[k + 6], term_weight[k + 7]
        for j in range(n):
            acc = run[j] + w0 * x0[j] + w1 * x1[j] + w2 * x2[j] + w3 * x3[j]
            run[j] = acc + w4 * x4[j] + w5 * x5[j] + w6 * x6[j] + w7 * x7[j]
        k += 8
    for rest in range(k, count):
        x0, w0 = flat[terms[rest, 0], terms[rest, 1] :], term_weight[rest]
        for j in range(n):
            run[j] += w0 * x0[j]


@njit(**JIT_OPTIONS, inline="always")
def fill_zero(array):  # pragma: no cover
    """``array[:] = 0`` as a plain loop (cheaper to compile than an array expression)."""
    for j in range(array.shape[0]):
        array[j] = 0
