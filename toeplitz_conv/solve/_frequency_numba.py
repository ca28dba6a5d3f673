"""The compiled per-frequency loops of the solves (imported only when numba is installed).

- :func:`damped_solves` forms the damped Gram matrices of a block of frequencies from
  the symbols, factorises them by Cholesky and solves, each step one loop over the
  block, held in cache: the numpy path
  (:func:`toeplitz_conv.solve.algebra.solution_operators`) makes every step a pass over
  all frequencies instead, and LAPACK's batched solve pays a call per matrix.
- :func:`damped_residuals` applies the solution operators and the symbols to a block of
  frequencies at a time, held in cache: each stack is read once, where numpy's
  :func:`~toeplitz_conv.solve.algebra.damped_residual` makes a pass per product and
  per subtraction.

What they buy: the exact rows of ``benchmarks/bench_solve.py``, run with and without
the ``fast`` extra.

All are tested equal to the numpy paths.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..core.jit import numba_can_cache

__all__ = ["FREQUENCY_BLOCK", "SOLVE_BLOCK", "damped_residuals", "damped_solves"]

SOLVE_BLOCK = 256  # frequencies factorised together by damped_solves (its scratch
# arrays, n x n x SOLVE_BLOCK, stay in cache; every step is one vectorised loop over them)
FREQUENCY_BLOCK = 4096  # frequencies per job of damped_residuals (its buffers stay in cache;
# smaller blocks pay their start-up more often)

_OPTIONS = dict(nogil=True, cache=numba_can_cache(), error_model="numpy")
# the residual's sum may be reordered (vectorised); no other fast-math assumption (NaN and
# inf stay exact). Loops inlined into a function take its options.
_SUM_OPTIONS = dict(_OPTIONS, fastmath={"reassoc", "contract"})


@njit(inline="always", **_OPTIONS)
def _multiply_add(out, a, b, conjugate_a, conjugate_b, n):  # pragma: no cover
    """``out[:n] += a * b``, either factor conjugated."""
    for f in range(n):
        x = np.conj(a[f]) if conjugate_a else a[f]
        y = np.conj(b[f]) if conjugate_b else b[f]
        out[f] += x * y


@njit(inline="always", **_OPTIONS)
def _multiply_subtract(out, a, b, conjugate_a, conjugate_b, n):  # pragma: no cover
    """``out[:n] -= a * b``, either factor conjugated."""
    for f in range(n):
        x = np.conj(a[f]) if conjugate_a else a[f]
        y = np.conj(b[f]) if conjugate_b else b[f]
        out[f] -= x * y


@njit(inline="always", **_OPTIONS)
def _scale(out, factors, n):  # pragma: no cover
    for f in range(n):
        out[f] *= factors[f]


@njit(inline="always", **_OPTIONS)
def _block_gram(symbols, g, lo, n, shift, wide, gram):  # pragma: no cover
    """The lower triangle of :math:`K K^H + s I` (``wide``) or :math:`K^H K + s I` for
    the frequencies ``lo .. lo + n - 1``, ``gram`` ``(size, size, block)``."""
    rows, cols = symbols.shape[1], symbols.shape[2]
    size = gram.shape[0]
    inner = cols if wide else rows
    for i in range(size):
        for j in range(i + 1):
            gram[i, j, :n] = 0
            for k in range(inner):
                if wide:
                    a, b = symbols[g, i, k, lo : lo + n], symbols[g, j, k, lo : lo + n]
                    _multiply_add(gram[i, j], a, b, False, True, n)
                else:
                    a, b = symbols[g, k, i, lo : lo + n], symbols[g, k, j, lo : lo + n]
                    _multiply_add(gram[i, j], a, b, True, False, n)
        gram[i, i, :n] += shift


@njit(inline="always", **_OPTIONS)
def _block_cholesky(gram, factor, reciprocal, n):  # pragma: no cover
    """:math:`L` with :math:`L L^H` the Hermitian ``gram`` (its lower triangle) at each of
    the ``n`` frequencies, and ``reciprocal`` :math:`1 / L_{jj}` (one division per
    pivot); False if a pivot is not positive."""
    size = gram.shape[0]
    for j in range(size):
        pivot = reciprocal[j]
        for f in range(n):
            pivot[f] = gram[j, j, f].real
        for k in range(j):
            row = factor[j, k]
            for f in range(n):
                pivot[f] -= row[f].real * row[f].real + row[f].imag * row[f].imag
        positive = True
        for f in range(n):
            positive &= pivot[f] > 0  # False for NaN too
        if not positive:
            return False
        for f in range(n):
            pivot[f] = 1.0 / np.sqrt(pivot[f])
        for i in range(j + 1, size):
            factor[i, j, :n] = gram[i, j, :n]
            for k in range(j):
                _multiply_subtract(factor[i, j], factor[i, k], factor[j, k], False, True, n)
            _scale(factor[i, j], pivot, n)
    return True


@njit(**_OPTIONS)
def damped_solves(symbols, shift, wide, inverse, out, failed, first, last):  # pragma: no cover
    """For the jobs ``first <= job < last``, each the :data:`SOLVE_BLOCK` frequencies from
    ``job * SOLVE_BLOCK`` of frequency-last ``symbols`` ``(groups, rows, cols, F)``,
    write ``out[:, :, :, f]``: with ``inverse``
    :math:`(K^H K + s I)^{-1}` ``(groups, cols, cols, F)``; else
    :math:`R = (K^H K + s I)^{-1} K^H`, or with ``wide`` the same
    :math:`R = K^H (K K^H + s I)^{-1}` through the rows x rows Gram matrix,
    ``(groups, cols, rows, F)``. A Gram matrix that is not positive definite to
    rounding sets ``failed[0]`` and stops (the caller takes the SVD).

    Each step of the Cholesky factorisation and of the two triangular solves is one
    loop over a job's frequencies."""
    groups, rows, cols, frequencies = symbols.shape
    size = rows if wide else cols
    m = cols if (wide or inverse) else rows
    gram = np.zeros((size, size, SOLVE_BLOCK), dtype=symbols.dtype)
    factor = np.zeros((size, size, SOLVE_BLOCK), dtype=symbols.dtype)
    reciprocal = np.zeros((size, SOLVE_BLOCK))
    y = np.zeros((size, SOLVE_BLOCK), dtype=symbols.dtype)
    for g in range(groups):
        for job in range(first, last):
            lo = job * SOLVE_BLOCK
            n = min(SOLVE_BLOCK, frequencies - lo)
            _block_gram(symbols, g, lo, n, shift, wide, gram)
            if not _block_cholesky(gram, factor, reciprocal, n):
                failed[0] = 1
                return
            for c in range(m):
                for i in range(size):  # L y = b: column c of K^H, K or I
                    if wide:
                        y[i, :n] = symbols[g, i, c, lo : lo + n]
                    elif inverse:
                        y[i, :n] = 1.0 if i == c else 0.0
                    else:
                        y[i, :n] = np.conj(symbols[g, c, i, lo : lo + n])
                    for k in range(i):
                        _multiply_subtract(y[i], factor[i, k], y[k], False, False, n)
                    _scale(y[i], reciprocal[i], n)
                for i in range(size - 1, -1, -1):  # L^H x = y, x over y from the end
                    for k in range(i + 1, size):
                        _multiply_subtract(y[i], factor[k, i], y[k], True, False, n)
                    _scale(y[i], reciprocal[i], n)
                    if wide:
                        out[g, c, i, lo : lo + n] = np.conj(y[i, :n])
                    else:
                        out[g, i, c, lo : lo + n] = y[i, :n]


@njit(inline="always", **_SUM_OPTIONS)
def _sum_of_squares(v, n):  # pragma: no cover
    total = 0.0
    for k in range(n):
        total += v[k].real * v[k].real + v[k].imag * v[k].imag
    return total


@njit(**_SUM_OPTIONS)
def damped_residuals(solution, symbols, b, x0, has_x0, x, sums, first, last):  # pragma: no cover
    """For the jobs ``first <= job < last``, each the :data:`FREQUENCY_BLOCK` frequencies
    from ``job * FREQUENCY_BLOCK`` of every group: :math:`\\hat x = \\hat x_0 + R (\\hat b -
    K \\hat x_0)` into ``x`` ``(groups, cols, F)``, and :math:`\\sum |K \\hat x -
    \\hat b|^2` over the block into ``sums[job]``. Frequency-last stacks: ``solution``
    :math:`R` ``(groups, cols, rows, F)``, ``symbols`` :math:`K` ``(groups, rows, cols,
    F)``; ``b`` ``(groups, rows, F)``; ``x0`` ``(groups, cols, F)``, read only with
    ``has_x0``. All of one value type."""
    groups, rows, cols, frequencies = symbols.shape
    rhs = np.empty((rows, FREQUENCY_BLOCK), x.dtype)
    block = np.empty((cols, FREQUENCY_BLOCK), x.dtype)
    residual = np.empty(FREQUENCY_BLOCK, x.dtype)
    for job in range(first, last):
        lo = job * FREQUENCY_BLOCK
        hi = min(lo + FREQUENCY_BLOCK, frequencies)
        n = hi - lo
        total = 0.0
        for g in range(groups):
            for r in range(rows):  # the right-hand side b - K x0
                rhs[r, :n] = b[g, r, lo:hi]
                if has_x0:
                    for c in range(cols):
                        _multiply_subtract(
                            rhs[r], symbols[g, r, c, lo:hi], x0[g, c, lo:hi], False, False, n
                        )
            for c in range(cols):  # x = x0 + R (b - K x0)
                if has_x0:
                    block[c, :n] = x0[g, c, lo:hi]
                else:
                    block[c, :n] = 0
                for r in range(rows):
                    _multiply_add(block[c], solution[g, c, r, lo:hi], rhs[r], False, False, n)
                x[g, c, lo:hi] = block[c, :n]
            for r in range(rows):  # K x - b
                residual[:n] = -b[g, r, lo:hi]
                for c in range(cols):
                    _multiply_add(residual, symbols[g, r, c, lo:hi], block[c], False, False, n)
                total += _sum_of_squares(residual, n)
        sums[job] = total
