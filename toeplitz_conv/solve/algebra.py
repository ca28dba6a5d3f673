"""Per-frequency linear algebra shared by the exact solves and the preconditioners: a
stack of small matrices ``(groups, F, rows, cols)``, one per group and frequency."""

from __future__ import annotations

import numpy as np

from ..core.memory import check_budget

__all__ = [
    "damped_solution",
    "minimum_norm_solve",
    "normal_inverses",
    "per_frequency",
    "solution_operators",
]


def per_frequency(matrices: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Each frequency's matrix times its vector: ``(G, F, r, c)`` by ``(G, F, c)``."""
    return np.einsum("gfij,gfj->gfi", matrices, vectors)


def damped_solution(symbols, solution, b_hat, x0_hat):
    """:math:`\\hat x_0 + R(\\hat b - K \\hat x_0)` per frequency (:math:`\\hat x_0 = 0` when
    ``x0_hat`` is None), with ``solution`` :math:`R` of :func:`solution_operators`."""
    if x0_hat is None:
        return per_frequency(solution, b_hat)
    return x0_hat + per_frequency(solution, b_hat - per_frequency(symbols, x0_hat))


def _check(symbols: np.ndarray, what: str, max_bytes) -> None:
    groups, frequencies, rows, cols = symbols.shape
    small = min(rows, cols)
    check_budget(
        16 * groups * frequencies * (2 * rows * cols + 2 * small * small),
        f"per-frequency {what} ({groups} x {frequencies} of {rows} x {cols})",
        max_bytes=max_bytes,
    )


def solution_operators(symbols: np.ndarray, damp: float, *, max_bytes=None) -> np.ndarray:
    """:math:`R = (K^H K + d^2 I)^{-1} K^H = K^H (K K^H + d^2 I)^{-1}` per frequency, through
    the smaller Gram matrix (``damp > 0``)."""
    _check(symbols, "solution operators", max_bytes)
    adjoint = np.conj(np.swapaxes(symbols, -1, -2))
    rows, cols = symbols.shape[-2:]
    if cols <= rows:
        gram = adjoint @ symbols
        gram += damp**2 * np.eye(cols)
        return np.linalg.solve(gram, adjoint)
    gram = symbols @ adjoint
    gram += damp**2 * np.eye(rows)
    return adjoint @ np.linalg.inv(gram)


def normal_inverses(symbols: np.ndarray, damp: float, *, max_bytes=None) -> np.ndarray:
    """:math:`(K^H K + d^2 I)^{-1}` per frequency (``damp > 0``)."""
    _check(symbols, "inverses of the normal equations", max_bytes)
    cols = symbols.shape[-1]
    gram = np.conj(np.swapaxes(symbols, -1, -2)) @ symbols
    gram += damp**2 * np.eye(cols)
    return np.linalg.inv(gram)


def minimum_norm_solve(symbols: np.ndarray, b_hat: np.ndarray) -> np.ndarray:
    """Per frequency, :math:`K^+ b` with a rank cut at
    :math:`\\max(m, n)\\,\\epsilon\\,\\max s` over all frequencies (``damp = 0``)."""
    u, s, vh = np.linalg.svd(symbols, full_matrices=False)
    cut = max(symbols.shape[-2:]) * np.finfo(np.float64).eps * float(s.max(initial=0.0))
    inverse = np.where(s > cut, 1.0 / np.where(s > cut, s, 1.0), 0.0)
    coefficients = (np.conj(np.swapaxes(u, -1, -2)) @ b_hat[..., None])[..., 0] * inverse
    return (np.conj(np.swapaxes(vh, -1, -2)) @ coefficients[..., None])[..., 0]
