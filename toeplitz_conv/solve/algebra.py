"""Per-frequency linear algebra shared by the exact solves and the preconditioners: a
stack of small matrices ``(groups, F, rows, cols)``, one per group and frequency.

The transforms leave every channel's coefficients contiguous over the frequencies, so a
vector in the frequency domain is a ``(groups, F, cols)`` view of ``(groups, cols, F)``
memory. Small matrices are kept frequency-last, ``(groups, rows, cols, F)``, and applied
to that memory as it lies (no transposed copies).

Their normal equations are factorised by Cholesky, by the first of these that applies:

- numba's loop (:mod:`~toeplitz_conv.solve._frequency_numba`), frequency by frequency, for Gram
  matrices up to :data:`COMPILED_SIZE` and stacks worth loading it (:data:`COMPILED_WORK`);
- numpy, unrolled over the matrix entries, each step one operation on all frequencies
  at once, up to :data:`UNROLLED`;
- LAPACK's batched routines.

A Gram matrix singular to rounding (a pivot that is not positive, or an overflow) sends
the stack to the SVD instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.jit import numba_installed, run_jobs
from ..core.memory import check_budget
from ..core.weights import real_parts

__all__ = [
    "FrequencyStack",
    "cache_key",
    "check_stacks_budget",
    "damped_reciprocals",
    "damped_residual",
    "damped_solution",
    "euclidean_norm",
    "minimum_norm_solve",
    "normal_inverses",
    "per_frequency",
    "solution_operators",
]

SQUARES_IN_RANGE = (1e-290, 1e290)  # sums of squares that neither underflowed nor overflowed
BYTES_PER_ENTRY = 16  # a complex128 entry: the budget of every per-frequency stack
FREQUENCY_LAST = 256  # matrices of up to this many entries are stored frequency-last
UNROLLED = 4  # Gram matrices up to this size: the unrolled Cholesky (else LAPACK)
COMPILED_SIZE = 8  # with numba: Gram matrices up to this size by its compiled loop
# (LAPACK's batched solve catches up with it around this size)
USE_NUMBA = True  # the compiled loop where numba is installed (tests switch it off)
# below this groups x frequencies x n^3, numpy's unrolled path beats the compiled loop's
# first load in a process (and numba's import)
COMPILED_WORK = 1_000_000


@dataclass(frozen=True)
class FrequencyStack:
    """Matrices :math:`M(f)`, one per group and frequency, in the layout fastest to apply.

    Attributes
    ----------
    data : numpy.ndarray
        ``(groups, rows, cols, F)`` if ``last``, else ``(groups, F, rows, cols)``.
    last : bool
        Frequency-last (for matrices of at most :data:`FREQUENCY_LAST` entries: the
        product then runs over long contiguous rows).
    """

    data: np.ndarray
    last: bool

    @classmethod
    def of(cls, matrices: np.ndarray) -> FrequencyStack:
        """The stack of ``(groups, F, rows, cols)`` matrices (any strides)."""
        last = matrices.shape[-2] * matrices.shape[-1] <= FREQUENCY_LAST
        data = np.transpose(matrices, (0, 2, 3, 1)) if last else matrices
        return cls(np.ascontiguousarray(data), last)

    @classmethod
    def of_last(cls, data: np.ndarray) -> FrequencyStack:
        """The stack of frequency-last ``(groups, rows, cols, F)`` matrices."""
        if data.shape[1] * data.shape[2] <= FREQUENCY_LAST:
            return cls(np.ascontiguousarray(data), True)
        return cls(np.ascontiguousarray(np.transpose(data, (0, 3, 1, 2))), False)

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """:math:`M(f) v(f)`: ``(groups, F, cols)`` to ``(groups, F, rows)``."""
        if self.last:
            product = np.einsum("grcf,gcf->grf", self.data, np.transpose(vectors, (0, 2, 1)))
            return np.transpose(product, (0, 2, 1))
        return np.einsum("gfrc,gfc->gfr", self.data, np.ascontiguousarray(vectors))

    def scaled(self, factors: np.ndarray) -> FrequencyStack:
        """:math:`M(f) \\cdot \\text{factors}(f)` (``factors`` of length F)."""
        if self.last:
            return FrequencyStack(self.data * factors, True)
        return FrequencyStack(self.data * factors[:, None, None], False)


def cache_key(op, name: str, *values) -> tuple:
    """The key under which the layer keeps ``name`` derived from the view ``op``
    (:meth:`~toeplitz_conv.layers.layer.Layer.cached`): one per view (transposed,
    conjugated) and per ``values`` (the damp, the transform, ...)."""
    return (name, op.transposed, op.conjugated, *values)


def check_stacks_budget(groups: int, frequencies: int, entries: int, what: str, max_bytes):
    """Check, before they are built, stacks of ``entries`` complex numbers per group and
    frequency against the memory budget."""
    check_budget(BYTES_PER_ENTRY * groups * frequencies * entries, what, max_bytes=max_bytes)


def per_frequency(matrices: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Each frequency's matrix times its vector: ``(G, F, r, c)`` by ``(G, F, c)``."""
    return np.einsum("gfij,gfj->gfi", matrices, vectors)


def damped_solution(symbols, solution: FrequencyStack, b_hat, x0_hat):
    """:math:`\\hat x_0 + R(\\hat b - K \\hat x_0)` per frequency (:math:`\\hat x_0 = 0` when
    ``x0_hat`` is None), with ``solution`` :math:`R` of :func:`solution_operators`."""
    if x0_hat is None:
        return solution.apply(b_hat)
    return x0_hat + solution.apply(b_hat - per_frequency(symbols, x0_hat))


def damped_residual(symbols: FrequencyStack, solution: FrequencyStack, b_hat, x0_hat):
    """``(x_hat, r)``: :func:`damped_solution`'s :math:`\\hat x` and :math:`\\|K \\hat x -
    \\hat b\\|` over all frequencies, ``symbols`` as a stack; by numba's loop
    (:func:`~toeplitz_conv.solve._frequency_numba.damped_residuals`, one read of each stack) for
    frequency-last stacks worth loading it."""
    if _fusable(symbols, solution):
        fused = _compiled_residual(symbols, solution, b_hat, x0_hat)
        if fused is not None:
            return fused
    x_hat = solution.apply(b_hat if x0_hat is None else b_hat - symbols.apply(x0_hat))
    if x0_hat is not None:
        x_hat = x0_hat + x_hat
    residual = symbols.apply(x_hat)
    residual -= b_hat
    return x_hat, euclidean_norm(np.transpose(residual, (0, 2, 1)))  # contiguous as it lies


def _fusable(symbols: FrequencyStack, solution: FrequencyStack) -> bool:
    groups, rows, cols, frequencies = symbols.data.shape
    work = groups * frequencies * rows * cols
    return (
        symbols.last and solution.last and USE_NUMBA and work >= COMPILED_WORK and numba_installed()
    )


def _compiled_residual(symbols: FrequencyStack, solution: FrequencyStack, b_hat, x0_hat):
    """:func:`damped_residual` by the compiled loop; ``None`` where the sum of squares of
    the residual leaves the range in which it is exact (the numpy path then scales)."""
    from ._frequency_numba import FREQUENCY_BLOCK, damped_residuals  # numba is installed

    groups, rows, cols, frequencies = symbols.data.shape
    given = [symbols.data, solution.data, b_hat] + ([] if x0_hat is None else [x0_hat])
    dtype = np.result_type(*given)

    def frequency_last(vectors: np.ndarray) -> np.ndarray:  # the memory as it lies
        return np.ascontiguousarray(np.transpose(vectors, (0, 2, 1)), dtype)

    b = frequency_last(b_hat)
    x0 = np.empty((groups, cols, 0), dtype) if x0_hat is None else frequency_last(x0_hat)
    x = np.empty((groups, cols, frequencies), dtype)
    jobs = -(-frequencies // FREQUENCY_BLOCK)
    sums = np.zeros(jobs)
    stacks = (solution.data.astype(dtype, copy=False), symbols.data.astype(dtype, copy=False))
    seconds = 1e-9 * groups * frequencies * rows * cols * (3 if x0_hat is None else 4)
    run_jobs(damped_residuals, (*stacks, b, x0, x0_hat is not None, x, sums), jobs, seconds)
    total = float(sums.sum())
    if not SQUARES_IN_RANGE[0] < total < SQUARES_IN_RANGE[1]:
        return None
    return np.transpose(x, (0, 2, 1)), math.sqrt(total)


def _check(symbols: np.ndarray, what: str, max_bytes) -> None:
    groups, frequencies, rows, cols = symbols.shape
    small = min(rows, cols)
    check_stacks_budget(
        groups,
        frequencies,
        3 * rows * cols + 3 * small * small,
        f"per-frequency {what} ({groups} x {frequencies} of {rows} x {cols})",
        max_bytes,
    )


def solution_operators(symbols: np.ndarray, damp: float, *, max_bytes=None) -> FrequencyStack:
    """:math:`R = (K^H K + d^2 I)^{-1} K^H = K^H (K K^H + d^2 I)^{-1}` per frequency, through
    the smaller Gram matrix (``damp > 0``)."""
    _check(symbols, "solution operators", max_bytes)
    rows, cols = symbols.shape[-2:]
    if min(rows, cols) <= _small_size(symbols):
        solved = _small_solves(symbols, damp, wide=cols > rows, inverse=False)
        if solved is not None:
            return FrequencyStack.of_last(solved)
    else:
        solved = _finite_or_none(lambda: _lapack_solution_operators(symbols, damp))
        if solved is not None:
            return FrequencyStack.of(solved)
    return FrequencyStack.of(_singular_solution_operators(symbols, damp))


def _finite_or_none(build):
    """``build()``, or ``None`` where it raises LinAlgError or overflows (a Gram matrix
    singular to rounding: the caller takes the SVD)."""
    with np.errstate(all="ignore"):
        try:
            result = build()
        except np.linalg.LinAlgError:
            return None
    return result if np.all(np.isfinite(result)) else None


def _singular_solution_operators(symbols: np.ndarray, damp: float) -> np.ndarray:
    """:math:`R = V \\operatorname{diag}(s / (s^2 + d^2)) U^H` from the SVD: for Gram
    matrices singular to rounding (``damp**2`` below the rounding of :math:`K^H K`,
    or underflowing), where a singular value and the damp are both 0 the factor is 0."""
    u, s, vh = np.linalg.svd(symbols, full_matrices=False)
    shifted = s * s + damp * damp
    gains = np.divide(s, shifted, out=np.zeros_like(s), where=shifted > 0)
    return np.conj(np.swapaxes(vh, -1, -2)) @ (gains[..., None] * np.conj(np.swapaxes(u, -1, -2)))


def _lapack_solution_operators(symbols: np.ndarray, damp: float) -> np.ndarray:
    adjoint = np.conj(np.swapaxes(symbols, -1, -2))
    rows, cols = symbols.shape[-2:]
    if cols <= rows:
        return np.linalg.solve(_lapack_gram(symbols, damp), adjoint)
    gram = symbols @ adjoint
    gram += damp * damp * np.eye(rows)
    return adjoint @ np.linalg.inv(gram)


def normal_inverses(symbols: np.ndarray, damp: float, *, max_bytes=None) -> FrequencyStack:
    """:math:`(K^H K + d^2 I)^{-1}` per frequency (``damp > 0``)."""
    _check(symbols, "inverses of the normal equations", max_bytes)
    cols = symbols.shape[-1]
    if cols <= _small_size(symbols):
        solved = _small_solves(symbols, damp, wide=False, inverse=True)
        if solved is not None:
            return FrequencyStack.of_last(solved)
    else:
        solved = _finite_or_none(lambda: np.linalg.inv(_lapack_gram(symbols, damp)))
        if solved is not None:
            return FrequencyStack.of(solved)
    return FrequencyStack.of(_singular_normal_inverses(symbols, damp))


def _lapack_gram(symbols: np.ndarray, damp: float) -> np.ndarray:
    """:math:`K^H K + d^2 I` per frequency, frequency-first."""
    gram = np.conj(np.swapaxes(symbols, -1, -2)) @ symbols
    gram += damp * damp * np.eye(symbols.shape[-1])
    return gram


def _small_size(symbols: np.ndarray) -> int:
    """The largest Gram matrix solved per frequency without LAPACK."""
    return COMPILED_SIZE if _compiled(symbols) else UNROLLED


def _compiled(symbols: np.ndarray) -> bool:
    """Whether the compiled loop takes these symbols: numba installed, and work enough
    to pay for loading the loop in a new process."""
    groups, frequencies, rows, cols = symbols.shape
    work = groups * frequencies * min(rows, cols) ** 3
    return USE_NUMBA and work >= COMPILED_WORK and numba_installed()


def _small_solves(symbols: np.ndarray, damp: float, *, wide: bool, inverse: bool):
    """Frequency-last ``(groups, cols, rows or cols, F)``: :math:`R` (``wide``: through
    :math:`K K^H`) or, with ``inverse``, :math:`(K^H K + d^2 I)^{-1}`; ``None`` where a
    Gram matrix is singular to rounding. Compiled when numba is installed."""
    last = np.ascontiguousarray(np.transpose(symbols, (0, 2, 3, 1)))
    if _compiled(symbols):
        return _compiled_solves(last, damp, wide, inverse)
    adjoint = np.conj(np.transpose(last, (0, 2, 1, 3)))
    if inverse:
        gram = _gram_last(adjoint, last, damp)
        identity = np.zeros_like(gram)
        identity[:, np.arange(gram.shape[1]), np.arange(gram.shape[1])] = 1.0
        return _unrolled_solve(gram, identity)
    if not wide:  # (K^H K + d^2) R = K^H
        return _unrolled_solve(_gram_last(adjoint, last, damp), adjoint)
    solved = _unrolled_solve(_gram_last(last, adjoint, damp), last)  # (K K^H + d^2) R^H = K
    return None if solved is None else np.conj(np.transpose(solved, (0, 2, 1, 3)))


def _compiled_solves(last: np.ndarray, damp: float, wide: bool, inverse: bool):
    from ._frequency_numba import SOLVE_BLOCK, damped_solves  # numba is installed

    groups, rows, cols, frequencies = last.shape
    out = np.empty((groups, cols, cols if inverse else rows, frequencies), last.dtype)
    failed = np.zeros(1, np.int64)
    n = rows if wide else cols
    seconds = 6e-10 * groups * frequencies * n * n * (n + rows + cols)
    jobs = -(-frequencies // SOLVE_BLOCK)
    run_jobs(damped_solves, (last, damp * damp, wide, inverse, out, failed), jobs, seconds)
    return None if failed[0] else _finite_or_none(lambda: out)


def _singular_normal_inverses(symbols: np.ndarray, damp: float) -> np.ndarray:
    """:math:`V \\operatorname{diag}(1 / (s^2 + d^2)) V^H` from the full SVD, 0 where
    :math:`s^2 + d^2` is 0 or subnormal (a pseudo-inverse there: its inverse overflows),
    for Gram matrices singular to rounding."""
    _, s, vh = np.linalg.svd(symbols, full_matrices=True)
    cols = symbols.shape[-1]
    padded = np.zeros((*s.shape[:-1], cols))
    padded[..., : s.shape[-1]] = s
    gains = damped_reciprocals(padded, damp)
    return np.conj(np.swapaxes(vh, -1, -2)) @ (gains[..., None] * vh)


def damped_reciprocals(values: np.ndarray, damp: float) -> np.ndarray:
    """:math:`1 / (\\lambda^2 + d^2)` of real ``values``, 0 where :math:`\\lambda^2 + d^2`
    is 0 or subnormal (its reciprocal overflows: a pseudo-inverse there)."""
    shifted = values * values + damp * damp
    normal = shifted >= np.finfo(np.float64).tiny
    return np.divide(1.0, shifted, out=np.zeros_like(shifted), where=normal)


def _gram_last(left: np.ndarray, right: np.ndarray, damp: float) -> np.ndarray:
    """``left @ right + damp^2 I`` per frequency, frequency-last ``(G, n, k, F)`` by
    ``(G, k, n, F)``."""
    gram = np.einsum("gikf,gkjf->gijf", left, right)
    size = gram.shape[1]
    gram[:, np.arange(size), np.arange(size)] += damp * damp
    return gram


def _unrolled_solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
    """:math:`G^{-1} B` for Hermitian positive definite ``gram`` ``(groups, n, n, F)`` and
    ``rhs`` ``(groups, n, m, F)``, by the Cholesky factor :math:`G = L L^H` computed entry
    by entry over all frequencies at once; ``None`` if a pivot is not positive or the
    result overflows (a Gram matrix singular to rounding: the SVD then takes over)."""
    return _finite_or_none(lambda: _cholesky_solve(gram, rhs))


def _cholesky_solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    n = gram.shape[1]
    conj = np.conj if np.iscomplexobj(gram) else (lambda a: a)
    factor: dict[tuple[int, int], np.ndarray] = {}
    for j in range(n):
        pivot = gram[:, j, j].real - sum(np.abs(factor[j, k]) ** 2 for k in range(j))
        pivot[~(pivot > 0)] = np.nan  # not positive definite: NaN, refused below
        factor[j, j] = np.sqrt(pivot)
        for i in range(j + 1, n):
            entry = gram[:, i, j] - sum(factor[i, k] * conj(factor[j, k]) for k in range(j))
            factor[i, j] = entry / factor[j, j]
    forward: list[np.ndarray] = []  # L y = B, row by row
    for i in range(n):
        row = rhs[:, i] - sum(factor[i, k][:, None] * forward[k] for k in range(i))
        forward.append(row / factor[i, i][:, None])
    solution: list[np.ndarray] = [forward[0]] * n  # L^H x = y, from the last row up
    for i in reversed(range(n)):
        row = forward[i] - sum(conj(factor[k, i])[:, None] * solution[k] for k in range(i + 1, n))
        solution[i] = row / factor[i, i][:, None]
    return np.stack(solution, axis=1)


def minimum_norm_solve(symbols: np.ndarray, b_hat: np.ndarray) -> np.ndarray:
    """Per frequency, :math:`K^+ b` with a rank cut at
    :math:`\\max(m, n)\\,\\epsilon\\,\\max s` over all frequencies (``damp = 0``)."""
    u, s, vh = np.linalg.svd(symbols, full_matrices=False)
    cut = max(symbols.shape[-2:]) * np.finfo(np.float64).eps * float(s.max(initial=0.0))
    inverse = np.where(s > cut, 1.0 / np.where(s > cut, s, 1.0), 0.0)
    coefficients = (np.conj(np.swapaxes(u, -1, -2)) @ b_hat[..., None])[..., 0] * inverse
    return (np.conj(np.swapaxes(vh, -1, -2)) @ coefficients[..., None])[..., 0]


def euclidean_norm(v: np.ndarray) -> float:
    """:math:`\\|v\\|_2` of a flat vector, summed by numpy rather than BLAS, without
    overflow or underflow.

    OpenBLAS's threads keep spinning for a while after a call and then slow the
    transforms that follow (``benchmarks/bench_blas.py`` measures that spinning).
    The plain sum of squares is used where it neither overflows nor underflows; else
    the vector is scaled by its largest magnitude first (numpy's own norm overflows
    beyond about 1e154).
    """
    flat = np.asarray(real_parts(v), dtype=np.float64).reshape(-1)  # the same squares
    with np.errstate(over="ignore"):
        squares = float(np.einsum("i,i->", flat, flat))
    if SQUARES_IN_RANGE[0] < squares < SQUARES_IN_RANGE[1]:
        return math.sqrt(squares)
    largest = float(np.max(np.abs(flat), initial=0.0))
    if largest == 0.0 or not math.isfinite(largest):
        return largest if not np.any(np.isnan(flat)) else math.nan
    scaled = flat / largest
    return largest * math.sqrt(float(np.einsum("i,i->", scaled, scaled)))
