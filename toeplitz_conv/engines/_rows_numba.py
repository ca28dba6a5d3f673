"""The ``"numba"`` engine's loops for strided layers (imported only with numba).

Row by row, on layers run as 3-D ones (see :mod:`~toeplitz_conv.engines._conv_numba`):
:func:`rows_forward` adds the terms of an output row four at a time where
every read is inside the row, term by term with a bounds test at the row's
ends; :func:`rows_adjoint` gathers, for each input row, the output rows that
read it and scatters along the row, so no two jobs write the same sample.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._conv_numba import JIT_OPTIONS, fill_zero

__all__ = ["rows_adjoint", "rows_forward"]


@njit(**JIT_OPTIONS)
def rows_forward(
    source, weight, stride, dilation, pads, out, chunk, first, last
):  # pragma: no cover
    """The correlation :math:`out[b, o, r, m] = \\sum_{i, t} w[o, i, t]\\,
    source[b, g(o) + i, r s + t \\delta - p]` for each job ``(b, o, piece)``, a
    piece being ``chunk`` consecutive rows ``r0 * M1 + r1`` of the output.

    ``weight`` is ``(C_out, C_in / G, k0, k1, k2)``; ``stride``, ``dilation``
    and ``pads`` (reads start at ``-pads``) are per axis.
    """
    in_channels, n0, n1, n2 = source.shape[1], source.shape[2], source.shape[3], source.shape[4]
    out_channels, in_per_group, k0, k1, k2 = weight.shape
    m0, m1, m2 = out.shape[2], out.shape[3], out.shape[4]
    s0, s1, s2 = stride[0], stride[1], stride[2]
    d0, d1, d2 = dilation[0], dilation[1], dilation[2]
    p0, p1, p2 = pads[0], pads[1], pads[2]
    out_per_group = out_channels // (in_channels // in_per_group)
    lo, hi = _interior(n2, m2, k2, s2, d2, p2)
    terms = in_per_group * k0 * k1 * k2
    term_weight = np.empty(terms, dtype=out.dtype)
    term_row = np.empty((terms, 3), dtype=np.int64)  # channel, row index 0, row index 1
    term_shift = np.empty(terms, dtype=np.int64)  # read offset along the row
    pieces = -(-(m0 * m1) // chunk)
    for job in range(first, last):
        b = job // (out_channels * pieces)
        o = (job // pieces) % out_channels
        first_input = (o // out_per_group) * in_per_group
        for r in range((job % pieces) * chunk, min(m0 * m1, (job % pieces + 1) * chunk)):
            r0, r1 = r // m1, r % m1
            count = 0
            for i in range(in_per_group):
                for t0 in range(k0):
                    q0 = r0 * s0 + t0 * d0 - p0
                    if q0 < 0 or q0 >= n0:
                        continue
                    for t1 in range(k1):
                        q1 = r1 * s1 + t1 * d1 - p1
                        if q1 < 0 or q1 >= n1:
                            continue
                        for t2 in range(k2):
                            term_weight[count] = weight[o, i, t0, t1, t2]
                            term_row[count, 0] = first_input + i
                            term_row[count, 1] = q0
                            term_row[count, 2] = q1
                            term_shift[count] = t2 * d2 - p2
                            count += 1
            _row_sum(
                source[b], term_weight, term_row, term_shift, count, s2, lo, hi, out[b, o, r0, r1]
            )


@njit(**JIT_OPTIONS)
def rows_adjoint(y, weight_h, stride, dilation, pads, out, chunk, first, last):  # pragma: no cover
    """The adjoint of :func:`rows_forward` for strided layers: for each job ``(b, c,
    piece)``, the rows ``out[b, c, q0, q1, :]`` of one piece of ``chunk`` rows,
    gathered over the output rows that read them and scattered along the row,

    ``out[b, c, q, m s_2 + t_2 d_2 - p_2] += weight_h[o, i, t] * y[b, o, r, m]``
    for every ``r s + t d - p = q`` and ``o`` in the group of ``c``.

    ``weight_h`` is the conjugated weight, ``(C_out, C_in / G, k0, k1, k2)``.
    """
    out_channels, m0, m1 = y.shape[1], y.shape[2], y.shape[3]
    in_channels, n0, n1 = out.shape[1], out.shape[2], out.shape[3]
    _, in_per_group, k0, k1, k2 = weight_h.shape
    s0, s1, s2 = stride[0], stride[1], stride[2]
    d0, d1, d2 = dilation[0], dilation[1], dilation[2]
    p0, p1, p2 = pads[0], pads[1], pads[2]
    out_per_group = out_channels // (in_channels // in_per_group)
    pieces = -(-(n0 * n1) // chunk)
    for job in range(first, last):
        b = job // (in_channels * pieces)
        c = (job // pieces) % in_channels
        i = c % in_per_group
        first_output = (c // in_per_group) * out_per_group
        for q in range((job % pieces) * chunk, min(n0 * n1, (job % pieces + 1) * chunk)):
            q0, q1 = q // n1, q % n1
            row = out[b, c, q0, q1]
            fill_zero(row)
            for t0 in range(k0):
                r0 = q0 + p0 - t0 * d0
                if r0 < 0 or r0 % s0 != 0 or r0 // s0 >= m0:
                    continue
                for t1 in range(k1):
                    r1 = q1 + p1 - t1 * d1
                    if r1 < 0 or r1 % s1 != 0 or r1 // s1 >= m1:
                        continue
                    for o in range(first_output, first_output + out_per_group):
                        source = y[b, o, r0 // s0, r1 // s1]
                        for t2 in range(k2):
                            _scatter(row, source, weight_h[o, i, t0, t1, t2], t2 * d2 - p2, s2)


@njit(**JIT_OPTIONS, inline="always")
def _interior(n, m, k, s, d, p):  # pragma: no cover
    """Outputs ``[lo, hi)`` of a row whose reads ``j s + t d - p`` all fall in ``[0, n)``."""
    lo = max(0, -(-p // s))  # the first tap, t = 0, reads lowest
    hi = min(m, (n - 1 - (k - 1) * d + p) // s + 1) if n - 1 - (k - 1) * d + p >= 0 else 0
    lo = min(lo, m)
    return lo, max(lo, hi)


@njit(**JIT_OPTIONS, inline="always")
def _row_sum(plane, term_weight, term_row, term_shift, count, s, lo, hi, acc):  # pragma: no cover
    """``acc[j] = sum_k term_weight[k] * plane[term_row[k]][j s + term_shift[k]]``, reads
    outside the row being zero; up to four terms per pass over the interior ``[lo, hi)``."""
    inner = acc[lo:hi]
    fill_zero(inner)
    k = 0 if hi > lo else count  # no interior: every output adds term by term below
    while count - k >= 4:
        x0, x1 = (
            _run(plane, term_row, term_shift, k, lo, s),
            _run(plane, term_row, term_shift, k + 1, lo, s),
        )
        x2, x3 = (
            _run(plane, term_row, term_shift, k + 2, lo, s),
            _run(plane, term_row, term_shift, k + 3, lo, s),
        )
        w0, w1, w2, w3 = term_weight[k], term_weight[k + 1], term_weight[k + 2], term_weight[k + 3]
        if s == 1:
            for j in range(hi - lo):
                inner[j] += (w0 * x0[j] + w1 * x1[j]) + (w2 * x2[j] + w3 * x3[j])
        else:
            for j in range(hi - lo):
                inner[j] += (w0 * x0[j * s] + w1 * x1[j * s]) + (w2 * x2[j * s] + w3 * x3[j * s])
        k += 4
    if count - k >= 2:
        x0, x1 = (
            _run(plane, term_row, term_shift, k, lo, s),
            _run(plane, term_row, term_shift, k + 1, lo, s),
        )
        w0, w1 = term_weight[k], term_weight[k + 1]
        if s == 1:
            for j in range(hi - lo):
                inner[j] += w0 * x0[j] + w1 * x1[j]
        else:
            for j in range(hi - lo):
                inner[j] += w0 * x0[j * s] + w1 * x1[j * s]
        k += 2
    if count - k == 1:
        x0, w0 = _run(plane, term_row, term_shift, k, lo, s), term_weight[k]
        if s == 1:
            for j in range(hi - lo):
                inner[j] += w0 * x0[j]
        else:
            for j in range(hi - lo):
                inner[j] += w0 * x0[j * s]
    n = plane.shape[3]
    for j in range(acc.shape[0]):
        if lo <= j < hi:
            continue
        acc[j] = 0
        for kk in range(count):
            index = j * s + term_shift[kk]
            if 0 <= index < n:
                c, q0, q1 = term_row[kk, 0], term_row[kk, 1], term_row[kk, 2]
                acc[j] += term_weight[kk] * plane[c, q0, q1, index]


@njit(**JIT_OPTIONS, inline="always")
def _run(plane, term_row, term_shift, k, lo, s):  # pragma: no cover
    """Term ``k``'s source row from the read of output ``lo`` on (inside the row)."""
    return plane[term_row[k, 0], term_row[k, 1], term_row[k, 2], lo * s + term_shift[k] :]


@njit(**JIT_OPTIONS, inline="always")
def _scatter(row, source, w, shift, s):  # pragma: no cover
    """``row[j s + shift] += w * source[j]`` where the index falls inside ``row``."""
    n, m = row.shape[0], source.shape[0]
    lo = (-shift + s - 1) // s if shift < 0 else 0  # the first j with j s + shift >= 0
    hi = min(m, (n - 1 - shift) // s + 1) if n - 1 - shift >= 0 else 0
    if hi <= lo:
        return
    target = row[lo * s + shift :]
    values = source[lo:]
    if s == 1:
        for j in range(hi - lo):
            target[j] += w * values[j]
    else:
        for j in range(hi - lo):
            target[j * s] += w * values[j]
