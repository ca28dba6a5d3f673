"""The compiled loop of the assembly (imported only when numba is installed).

For zero padding, the CSR matrix is written in one pass straight from the
per-axis index maps of :meth:`toeplitz_conv.Geometry.axis_index_map`: no
scalar pattern and no index arrays of a block row's size, so its memory traffic
is the matrix's own bytes.
"""

from __future__ import annotations

from numba import njit

from .jit import numba_can_cache

__all__ = ["fill_zero_padded"]


@njit(nogil=True, cache=numba_can_cache(), error_model="numpy")
def fill_zero_padded(
    taps0,
    taps1,
    taps2,
    dilation,
    input_size,
    weight,
    interior_columns,
    rows_per_group,
    row_start,
    data,
    indices,
    first,
    last,
):  # pragma: no cover
    """Block rows ``first <= o < last`` of :math:`A = \\sum_t W_t \\otimes S_t` in CSR order.

    ``taps_a[p] = (lo, hi, i)``: along axis ``a``, output ``p`` reads through the
    taps ``lo <= t < hi`` (the others read zero pads), tap ``lo`` reading input
    ``i`` and each next tap ``dilation[a]`` further, on an input of
    ``input_size`` ``(n0, n1, n2)``. ``weight`` is ``(block rows, blocks per
    row, k0, k1, k2)``; block row ``o`` reads the channels of group ``o //
    rows_per_group``; ``row_start[p]`` is where pixel ``p``'s row starts within
    a block row (``row_start[-1]`` entries per block row). Within a row, entries
    run by channel, then tap in C order, which is column order. A row that reads
    through every tap (away from the pads) is the block row's weight as it is,
    with ``interior_columns`` (each entry's column relative to the first) added
    to its first column: two vectorised copies.
    """
    channels, k0, k1, k2 = weight.shape[1], weight.shape[2], weight.shape[3], weight.shape[4]
    full = channels * k0 * k1 * k2
    flat_weight = weight.reshape(weight.shape[0], full)
    m0, m1, m2 = taps0.shape[0], taps1.shape[0], taps2.shape[0]
    d0, d1, d2 = dilation[0], dilation[1], dilation[2]
    n1, n2 = input_size[1], input_size[2]
    column_pixels = input_size[0] * n1 * n2
    per_row = row_start[-1]
    for o in range(first, last):
        group_column = (o // rows_per_group) * channels * column_pixels
        for p0 in range(m0):
            lo0, hi0, first0 = taps0[p0, 0], taps0[p0, 1], taps0[p0, 2]
            for p1 in range(m1):
                lo1, hi1, first1 = taps1[p1, 0], taps1[p1, 1], taps1[p1, 2]
                for p2 in range(m2):
                    lo2, hi2, first2 = taps2[p2, 0], taps2[p2, 1], taps2[p2, 2]
                    k = o * per_row + row_start[(p0 * m1 + p1) * m2 + p2]
                    if hi0 - lo0 == k0 and hi1 - lo1 == k1 and hi2 - lo2 == k2:
                        start = group_column + (first0 * n1 + first1) * n2 + first2
                        values, targets = data[k : k + full], indices[k : k + full]
                        for j in range(full):
                            values[j] = flat_weight[o, j]
                            targets[j] = start + interior_columns[j]
                        continue
                    for c in range(channels):
                        channel_column = group_column + c * column_pixels + first2
                        for t0 in range(lo0, hi0):
                            i0 = first0 + (t0 - lo0) * d0
                            for t1 in range(lo1, hi1):
                                row = weight[o, c, t0, t1]
                                column = channel_column + (i0 * n1 + first1 + (t1 - lo1) * d1) * n2
                                for t2 in range(lo2, hi2):
                                    data[k] = row[t2]
                                    indices[k] = column
                                    column += d2
                                    k += 1
