"""A layer's Gram matrix as a band, and proofs read from its factorizations.

Ordered pixel by pixel (channels fastest, the longest spatial axis slowest),
the Gram matrix :math:`A^H A` (or :math:`A A^H`) of one group of a conv layer
is a band matrix: two pixels interact only when one kernel window covers both.
Its half-bandwidth :math:`w` is about the kernel's reach times the pixels of one
slice of the slower axes times the channels, and a banded factorization costs
:math:`O(n w^2)`.

Two facts are read from factorizations of :math:`M(\\mu) = \\mu^2 I - G`:

- **definiteness**: if the floating-point Cholesky factorization of
  :math:`M - cI` runs to completion with
  :math:`c \\ge \\gamma_{w+2}/(1-\\gamma_{w+2})\\, \\mathrm{tr}(M)` (Rump, BIT 46,
  2006, with the band's inner products of length :math:`w + 1`) plus a bound
  on the rounding of :math:`M` itself, then :math:`M \\succ 0`, that is
  :math:`\\sigma_{\\max}(A) < \\mu` (or, with :math:`G - \\mu^2 I`,
  :math:`\\sigma_{\\min}(A) > \\mu`);
- **inertia**: an :math:`LDL^T` factorization without pivoting is the exact
  factorization of :math:`M + E` with
  :math:`|E| \\le \\gamma_{w+1} |L||D||L^T|` (Higham, *Accuracy and Stability of
  Numerical Algorithms*, Thm. 9.3), a bound computed after the fact; by
  Sylvester's law of inertia its negative pivots count the eigenvalues of
  :math:`M + E` below zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ..core.memory import check_budget
from .symbol import UNIT_ROUNDOFF, gamma

__all__ = [
    "BandedGram",
    "band_cost",
    "band_matvec",
    "banded_gram",
    "batched_ldl",
    "dense_window",
    "is_positive_definite",
    "negative_count",
    "proof_floor",
]

LDL_BLOCK = 256  # columns per step of the blocked LDL^T


@dataclass
class BandedGram:
    """The Gram matrix of one group in LAPACK's lower band storage.

    Attributes
    ----------
    band : numpy.ndarray
        ``(w + 1, n)``: ``band[i - j, j] = G[i, j]`` for ``0 <= i - j <= w``.
    permutation : numpy.ndarray
        ``new = permutation[old]``: the pixel-major index of each NCHW index.
    rounding : float
        Bound on the 2-norm of the error of the computed Gram matrix.
    """

    band: np.ndarray
    permutation: np.ndarray
    rounding: float

    @property
    def size(self) -> int:
        return self.band.shape[1]

    @property
    def bandwidth(self) -> int:
        return self.band.shape[0] - 1


def pixel_major(channels: int, spatial: tuple[int, ...]) -> np.ndarray:
    """``new[old]``: NCHW order to pixel-major order, the longest spatial axis slowest."""
    order = sorted(range(len(spatial)), key=lambda a: -spatial[a])
    grid = np.arange(math.prod(spatial)).reshape(spatial).transpose(order).ravel()
    pixel_rank = np.empty_like(grid)
    pixel_rank[grid] = np.arange(grid.size)
    old = np.arange(channels * grid.size)
    return pixel_rank[old % grid.size] * channels + old // grid.size


def band_cost(size: int, bandwidth: int, complex_: bool) -> tuple[int, float]:
    """Bytes of the band and flops of its Cholesky factorization."""
    itemsize = 16 if complex_ else 8
    return (bandwidth + 1) * size * itemsize, (4.0 if complex_ else 1.0) * size * bandwidth**2


def banded_gram(
    matrix: sp.csr_array,
    side: str,
    channels: int,
    spatial: tuple[int, ...],
    *,
    max_bytes: int | None = None,
    matrix_error: float = 0.0,
) -> BandedGram:
    """The band of :math:`A^H A` (``side="columns"``) or :math:`A A^H` (``"rows"``).

    Parameters
    ----------
    matrix : scipy.sparse.csr_array
        One group's matrix, float64 or complex128.
    side : {"columns", "rows"}
    channels, spatial
        Shape of the Gram side's index space (NCHW).
    max_bytes : int, optional
        Memory budget of the band (checked once the bandwidth is known).
    matrix_error : float
        A bound :math:`\\delta \\ge \\|\\mathrm{fl}(A) - A\\|_2` of the distance of ``matrix``
        from the exact matrix :math:`A` whose Gram matrix is meant (folded taps):
        :math:`\\|A^H A - \\mathrm{fl}(A)^H \\mathrm{fl}(A)\\|_2 \\le
        \\delta (2 \\|\\mathrm{fl}(A)\\|_2 + \\delta)` joins the rounding.
    """
    a = sp.csr_array(matrix)
    gram = (a.conj().T @ a) if side == "columns" else (a @ a.conj().T)
    gram = sp.coo_array(gram)
    new = pixel_major(channels, spatial)
    rows, cols = new[gram.row], new[gram.col]
    keep = rows >= cols
    bandwidth = int((rows[keep] - cols[keep]).max(initial=0))
    nbytes, _ = band_cost(gram.shape[0], bandwidth, np.iscomplexobj(gram.data))
    check_budget(
        nbytes, f"band of a Gram matrix ({gram.shape[0]} x {bandwidth + 1})", max_bytes=max_bytes
    )
    band = np.zeros((bandwidth + 1, gram.shape[0]), dtype=gram.data.dtype)
    band[rows[keep] - cols[keep], cols[keep]] = gram.data[keep]
    absolute = abs(a)
    row_sums, col_sums = absolute.sum(axis=1), absolute.sum(axis=0)
    length = (
        int(np.diff(sp.csc_array(a).indptr).max(initial=1))
        if side == "columns"
        else int(np.diff(a.indptr).max(initial=1))
    )
    # |fl(A^H A) - A^H A| <= gamma_r |A|^H |A|, and || |A| ||_2^2 <= ||A||_1 ||A||_inf
    absolute_squared = float(row_sums.max(initial=0)) * float(col_sums.max(initial=0))
    rounding = gamma(2 * length + 8) * absolute_squared
    if matrix_error:
        rounding += matrix_error * (2 * math.sqrt(absolute_squared) + matrix_error) * (1 + 1e-12)
    return BandedGram(band, new, rounding)


def _shifted(gram: BandedGram, alpha: float, sign: float) -> np.ndarray:
    """Band of ``alpha I + sign * G`` (a new array)."""
    band = sign * gram.band
    band[0] += alpha
    return band


def proof_floor(gram: BandedGram) -> float:
    """The part of :func:`is_positive_definite`'s shift that does not depend on
    :math:`\\alpha`: no :math:`\\alpha` below it can be proven, whatever the matrix."""
    diagonal = float(np.abs(gram.band[0]).max(initial=0.0))
    return (
        gamma(gram.bandwidth + 4) * gram.size * diagonal
        + gram.rounding
        + 4 * UNIT_ROUNDOFF * diagonal
        + 1e-290
    )


def is_positive_definite(gram: BandedGram, alpha: float, sign: float) -> bool:
    """Proof that :math:`\\alpha I + \\text{sign}\\, G \\succ 0` for the exact Gram matrix G.

    The band is shifted down by Rump's bound for the Cholesky factorization plus
    the rounding of G and of the diagonal; ``True`` means the factorization of
    the shifted band ran to completion, which proves the claim.
    """
    n, w = gram.size, gram.bandwidth
    shift = proof_floor(gram) + (gamma(w + 4) * n + 4 * UNIT_ROUNDOFF) * abs(alpha)
    band = _shifted(gram, alpha - shift, sign)
    try:
        scipy.linalg.cholesky_banded(band, lower=True, overwrite_ab=True, check_finite=False)
    except np.linalg.LinAlgError:
        return False
    return True


def negative_count(gram: BandedGram, alpha: float, sign: float) -> tuple[int, float]:
    """Negative pivots of an :math:`LDL^T` of :math:`\\alpha I + \\text{sign}\\, G`, and the
    backward error bound that makes the count exact for a matrix within it.

    Returns
    -------
    count : int
        Negative pivots (eigenvalues below zero of the factored matrix).
    error : float
        Bound on :math:`\\|E\\|_2` where ``L D L^H = alpha I + sign G + E``, G the
        exact Gram matrix (the factorization's and the Gram's rounding).
    """
    band = _shifted(gram, alpha, sign)
    pivots, growth = _band_ldl(band)
    count = int(np.count_nonzero(pivots < 0))
    w = gram.bandwidth
    error = gamma(w + 4) * growth + gram.rounding + 4 * UNIT_ROUNDOFF * abs(alpha)
    return count, error


def _band_ldl(band: np.ndarray) -> tuple[np.ndarray, float]:
    """LDL^H without pivoting of a Hermitian band (lower storage), blocked over columns.

    Returns the pivots and :math:`\\| |L||D||L^H| \\|_\\infty`, an upper bound of its
    2-norm (the matrix is Hermitian and non-negative), for the backward error.
    Breaks down only on an exactly zero pivot, reported as a failure (ValueError).
    """
    w, n = band.shape[0] - 1, band.shape[1]
    # the active window: columns j..j+w+B of the matrix as a dense lower block
    pivots = np.empty(n)
    l_abs_cols = []  # per block: (start, |L| block (rows x B), |D|)
    start = 0
    window = w + LDL_BLOCK
    dense = dense_window(band, 0, min(n, window))
    while start < n:
        size = min(LDL_BLOCK, n - start)
        block = dense[:size, :size]
        l_block, d_block, _ = batched_ldl(block)
        pivots[start : start + size] = d_block.real
        below = dense[size:, :size]
        # L21 = A21 L11^-H D^-1
        solved = (
            scipy.linalg.solve_triangular(
                l_block.conj(), below.T, lower=True, unit_diagonal=True, check_finite=False
            ).T
            / d_block
        )
        stacked = np.abs(np.vstack([l_block, solved])).astype(np.float32)
        l_abs_cols.append((start, stacked, np.abs(d_block)))
        trailing = dense[size:, size:] - (solved * d_block) @ solved.conj().T
        start += size
        if start >= n:
            break
        end = min(n, start + window)
        fresh = dense_window(band, start, end)
        keep = trailing.shape[0]
        fresh[:keep, :keep] = trailing
        dense = fresh
    return pivots, _growth(l_abs_cols, n) * (1 + 1e-5)  # |L| kept in float32: round up


def dense_window(band: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Rows and columns lo..hi of the Hermitian band matrix, dense (both triangles)."""
    w = band.shape[0] - 1
    size = hi - lo
    out = np.zeros((size, size), dtype=band.dtype)
    for d in range(min(w, size - 1) + 1):
        values = band[d, lo : hi - d]
        idx = np.arange(size - d)
        out[idx + d, idx] = values
        if d:
            out[idx, idx + d] = np.conj(values)
    return out


def batched_ldl(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:math:`LDL^H` without pivoting of a stack of small Hermitian matrices ``(..., k, k)``.

    Returns
    -------
    lower : numpy.ndarray
        Unit lower triangular factors.
    pivots : numpy.ndarray
        Real pivots ``(..., k)``; a zero pivot raises ``ValueError``.
    growth : numpy.ndarray
        :math:`\\| |L||D||L^H| \\|_\\infty` per matrix, for the backward error bound
        :math:`\\gamma_{k+1} \\| |L||D||L^H| \\|`.
    """
    a = np.array(matrices, dtype=np.result_type(matrices, np.float64), copy=True)
    k = a.shape[-1]
    pivots = np.empty(a.shape[:-1])
    for j in range(k):
        d = a[..., j, j].real
        if np.any(d == 0):
            raise ValueError("a zero pivot: the shift sits on an eigenvalue")
        pivots[..., j] = d
        column = a[..., j + 1 :, j] / d[..., None]
        a[..., j + 1 :, j + 1 :] -= (column * d[..., None])[..., :, None] * np.conj(column)[
            ..., None, :
        ]
        a[..., j + 1 :, j] = column
    lower = np.tril(a, -1) + np.eye(k, dtype=a.dtype)
    magnitude = np.abs(lower)
    weights = np.abs(pivots) * magnitude.sum(axis=-2)  # |D| |L^H| 1
    growth = (magnitude @ weights[..., None])[..., 0].max(axis=-1)
    return lower, pivots, growth


def band_matvec(band: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Hermitian band (lower storage) times a vector."""
    y = band[0] * x
    for d in range(1, band.shape[0]):
        y[d:] += band[d, :-d] * x[:-d]
        y[:-d] += np.conj(band[d, :-d]) * x[d:]
    return y


def _growth(l_abs_cols, n: int) -> float:
    """:math:`\\| |L||D||L^H| \\|_\\infty` from the stored blocks of |L| and |D|."""
    column_sums = np.zeros(n)  # v = |D| |L^H| 1, entry per column block
    for start, l_abs, d_abs in l_abs_cols:
        column_sums[start : start + l_abs.shape[1]] = d_abs * l_abs.sum(axis=0)
    rows = np.zeros(n)
    for start, l_abs, _ in l_abs_cols:
        rows[start : start + l_abs.shape[0]] += l_abs @ column_sums[start : start + l_abs.shape[1]]
    return float(rows.max(initial=0.0))
