"""Eigendecompositions of stacks of small Hermitian matrices, one per group and frequency.

A layer whose kernels are symmetric and whose channel mixing is symmetric
(:math:`h_{ij} = h_{ji}`) has real symmetric cosine symbols :math:`K(f) = Q \\Lambda
Q^T`. One decomposition then serves every function of the symbols the solvers need:
the singular values :math:`|\\lambda|` and data coefficients :math:`Q^T \\hat b` of
:func:`~.parameters.choose_damp`, and the preconditioner's inverses

.. math::

    (K^H K + d^2 I)^{-1} = Q \\,\\mathrm{diag}\\bigl(1 / (\\lambda^2 + d^2)\\bigr)\\, Q^H

for every ``damp``, so the layer keeps it (:func:`~.cosine.cosine_eigen`).

Real matrices up to :data:`JACOBI_SIZE` are diagonalised by cyclic Jacobi rotations,
each one numpy operation over all frequencies at once, where LAPACK's ``eigh`` pays a
call per matrix (``benchmarks/bench_solve.py``'s choose_damp rows). Jacobi
is backward stable, each matrix to its own norm (rotations continue until every
frequency's off-diagonal part is below :math:`\\epsilon` of its diagonal); larger or
complex matrices take ``numpy.linalg.eigh``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .algebra import FrequencyStack, damped_reciprocals

__all__ = [
    "HermitianEigen",
    "fft_rounding",
    "hermitian_to_rounding",
    "is_hermitian",
    "singular_coefficients",
    "symmetric_eigen",
]

JACOBI_SIZE = 4  # real symmetric matrices up to this size: vectorised Jacobi (else eigh,
# whose fixed cost per matrix Jacobi's sweeps outgrow from about 6 x 6)
_SWEEPS = 60  # cyclic sweeps at most (quadratic convergence: 4-7 for these sizes)
_TOLERANCE = np.finfo(np.float64).eps ** 2 / 4  # off-diagonal over diagonal, squared


@dataclass(frozen=True)
class HermitianEigen:
    """:math:`K(f) = Q(f) \\Lambda(f) Q(f)^H` for a stack of Hermitian matrices.

    Attributes
    ----------
    values : numpy.ndarray
        ``(groups, n, F)``: the eigenvalues of each frequency (in no set order).
    vectors : numpy.ndarray
        ``(groups, n, n, F)``: orthonormal eigenvectors, column ``i`` for ``values[:, i]``.
    """

    values: np.ndarray
    vectors: np.ndarray

    def __post_init__(self) -> None:
        for array in (self.values, self.vectors):  # kept by the layer: nobody writes to it
            array.flags.writeable = False

    def coefficients(self, vectors: np.ndarray) -> np.ndarray:
        """:math:`Q^H v` per frequency: ``(groups, F, n)`` to ``(groups, F, n)``."""
        product = np.einsum("gjif,gjf->gif", np.conj(self.vectors), np.moveaxis(vectors, 1, -1))
        return np.moveaxis(product, -1, 1)

    def singular_values(self) -> np.ndarray:
        """``(groups, F, n)``: :math:`|\\lambda|`, paired with :meth:`coefficients`."""
        return np.moveaxis(np.abs(self.values), 1, -1)

    def normal_inverses(self, damp: float) -> FrequencyStack:
        """:math:`(K^H K + d^2 I)^{-1} = Q \\,\\mathrm{diag}(1 / (\\lambda^2 + d^2))\\, Q^H`, with
        0 where :math:`\\lambda^2 + d^2` is 0 or subnormal (as the SVD path of
        :func:`~.algebra.normal_inverses`: its reciprocal overflows)."""
        return self.function(lambda values: damped_reciprocals(values, damp))

    def function(self, of_values: Callable[[np.ndarray], np.ndarray]) -> FrequencyStack:
        """:math:`Q \\,\\mathrm{diag}(\\phi(\\lambda))\\, Q^H`, :math:`\\phi` = ``of_values``."""
        scaled = self.vectors * of_values(self.values)[:, None, :, :]
        return FrequencyStack.of_last(np.einsum("gikf,gjkf->gijf", scaled, np.conj(self.vectors)))


def is_hermitian(symbols: np.ndarray) -> bool:
    """Whether every ``(groups, F, n, n)`` matrix equals its conjugate transpose exactly."""
    return symbols.shape[-1] == symbols.shape[-2] and np.array_equal(
        symbols, np.conj(np.swapaxes(symbols, -1, -2))
    )


def hermitian_to_rounding(symbols: np.ndarray, relative: float) -> np.ndarray | None:
    """The Hermitian part :math:`H = (K + K^H) / 2` of ``(groups, F, n, n)`` matrices
    (real if their imaginary parts are that small too) where every :math:`\\|K(f) -
    H(f)\\|_F` is at most ``relative`` times the largest :math:`\\|K(f)\\|_F`, else ``None``.

    By Weyl's inequality the singular values of :math:`K` are within :math:`\\|K - H\\|_2`
    of the :math:`|\\lambda|` of :math:`H`: with ``relative`` the rounding of the spectra
    (the FFT's, for symbols it computes), as accurate as an SVD of the computed
    :math:`K`."""
    if symbols.shape[-1] != symbols.shape[-2] or symbols.size == 0:
        return None
    bound = relative * _largest_norm(symbols)
    near = (symbols + np.conj(np.swapaxes(symbols, -1, -2))) / 2
    if np.iscomplexobj(near) and _distance(symbols, near.real) <= bound:
        near = near.real
    return near if _distance(symbols, near) <= bound else None


def _largest_norm(symbols: np.ndarray) -> float:
    return float(np.sqrt(np.max(np.sum(np.abs(symbols) ** 2, axis=(-2, -1)))))


def _distance(symbols: np.ndarray, near: np.ndarray) -> float:
    """The largest :math:`\\|K(f) - H(f)\\|_F` over the frequencies."""
    return float(np.sqrt(np.max(np.sum(np.abs(symbols - near) ** 2, axis=(-2, -1)))))


def symmetric_eigen(symbols: np.ndarray) -> HermitianEigen:
    """The eigendecomposition of Hermitian ``(groups, F, n, n)`` matrices (only their
    lower triangle is read by ``eigh``; Jacobi reads both, which agree)."""
    n = symbols.shape[-1]
    if np.isrealobj(symbols) and n <= JACOBI_SIZE:
        return _jacobi(np.array(np.moveaxis(symbols, 1, -1), dtype=np.float64, order="C"))
    values, vectors = np.linalg.eigh(symbols)
    return HermitianEigen(np.moveaxis(values, 1, -1), np.moveaxis(vectors, 1, -1))


def _jacobi(matrices: np.ndarray) -> HermitianEigen:
    """Cyclic Jacobi on frequency-last real symmetric ``(groups, n, n, F)`` (overwritten)."""
    n = matrices.shape[1]
    vectors = np.zeros_like(matrices)
    for i in range(n):
        vectors[:, i, i] = 1.0
    pairs = [(p, q) for p in range(n) for q in range(p + 1, n)]
    for _ in range(_SWEEPS):
        if _converged(matrices, pairs):
            break
        for p, q in pairs:
            _rotate(matrices, vectors, p, q)
    values = np.stack([matrices[:, i, i] for i in range(n)], axis=1)
    return HermitianEigen(values, vectors)


def _converged(a: np.ndarray, pairs: list[tuple[int, int]]) -> bool:
    off = sum((a[:, p, q] ** 2 for p, q in pairs), np.zeros(a.shape[::3]))
    diagonal = sum(a[:, i, i] ** 2 for i in range(a.shape[1]))
    return bool(np.all(off <= _TOLERANCE * diagonal))


def _rotate(a: np.ndarray, vectors: np.ndarray, p: int, q: int) -> None:
    """The rotation :math:`J` in the :math:`(p, q)` plane that zeroes :math:`a_{pq}` at every
    frequency: :math:`a \\leftarrow J^T a J`, :math:`Q \\leftarrow Q J` (Golub & Van Loan,
    Algorithm 8.5.2: :math:`t = \\mathrm{sign}(\\theta) / (|\\theta| + \\sqrt{\\theta^2 +
    1})`, :math:`\\theta = (a_{qq} - a_{pp}) / (2 a_{pq})`)."""
    apq = a[:, p, q].copy()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        theta = (a[:, q, q] - a[:, p, p]) / (2 * apq)
        t = np.copysign(1.0, theta) / (np.abs(theta) + np.hypot(theta, 1.0))
    t[~np.isfinite(t)] = 0.0  # a_pq = 0 (0 / 0), or negligible beside a_qq - a_pp
    c = 1.0 / np.sqrt(t * t + 1.0)
    s = t * c
    shift = t * apq
    a[:, p, p] -= shift
    a[:, q, q] += shift
    a[:, p, q] = a[:, q, p] = 0.0
    for r in range(a.shape[1]):
        if r != p and r != q:
            _turn(a[:, r, p], a[:, r, q], c, s)
            a[:, p, r], a[:, q, r] = a[:, r, p], a[:, r, q]
        _turn(vectors[:, r, p], vectors[:, r, q], c, s)


def _turn(x: np.ndarray, y: np.ndarray, c: np.ndarray, s: np.ndarray) -> None:
    """:math:`(x, y) \\leftarrow (c x - s y, s x + c y)` in place."""
    new_x = c * x - s * y
    y *= c
    y += s * x
    x[...] = new_x


def fft_rounding(points: int) -> float:
    """The relative rounding of symbols an FFT on ``points`` computed (a few
    :math:`\\epsilon \\log_2 N`)."""
    return 4 * np.finfo(np.float64).eps * max(math.log2(max(points, 2)), 1.0)


def singular_coefficients(
    symbols: np.ndarray, b_hat: np.ndarray, rounding: float = 0.0
) -> tuple[np.ndarray, ...]:
    """:math:`s` and :math:`U^H \\hat b` of :math:`K(f) = U S V^H` at every frequency.
    Symbols Hermitian to within ``rounding`` (relative; symmetric mixing of symmetric
    kernels, whose DFT symbols are Hermitian but for the FFT's rounding) take the
    eigendecomposition of their Hermitian part :math:`H = Q \\Lambda Q^H`,
    :math:`s = |\\lambda|`: as accurate (absolute error of the order of
    :math:`\\epsilon \\|K\\|`, as the SVD's) at a fraction of its cost."""
    near = hermitian_to_rounding(symbols, rounding)  # exactly Hermitian: rounding 0
    if near is not None:
        eigen = symmetric_eigen(near)
        return eigen.singular_values(), eigen.coefficients(b_hat)
    u, s, _ = np.linalg.svd(symbols, full_matrices=False)
    return s, (np.conj(np.swapaxes(u, -1, -2)) @ b_hat[..., None])[..., 0]
