"""The Tikhonov residual of a layer on its own Krylov space (Golub-Kahan), for the damp
rules of layers without an exact diagonal form.

:math:`k` steps of Golub-Kahan bidiagonalisation from :math:`b` (with full
reorthogonalisation) give :math:`A V_k = U_{k+1} B_k`, :math:`b = \\beta_1 U_{k+1}
e_1`, :math:`B_k` lower bidiagonal. The Tikhonov problem restricted to
:math:`x = V_k y` is :math:`\\min_y \\|B_k y - \\beta_1 e_1\\|^2 + d^2 \\|y\\|^2`, whose
residual, from the singular value decomposition :math:`B_k = P S Q^T` and
:math:`c = \\beta_1 P^T e_1`,

.. math::

    \\|A x_k(d) - b\\|^2 = \\sum_i \\Bigl(\\frac{d^2}{s_i^2 + d^2}\\Bigr)^2 c_i^2
        + \\beta_1^2 - \\|c\\|^2,

converges to the full problem's as :math:`k` grows, fastest for the damps the rules
pick (the hybrid methods of Chung, Nagy and O'Leary, 2008, and of IR Tools).
"""

from __future__ import annotations

import numpy as np

from ..core.memory import check_budget, resolve_budget
from ..layers.conv import ConvOperator

__all__ = ["Bidiagonalisation", "KrylovResidual", "affordable_steps"]


class Bidiagonalisation:
    """Golub-Kahan bidiagonalisation of a layer from ``b``, grown on demand up to
    ``capacity`` steps, with both bases kept and reorthogonalised (their bytes checked
    against the budget when it is made)."""

    def __init__(self, op: ConvOperator, b: np.ndarray, capacity: int, max_bytes=None) -> None:
        m, n = op.shape
        dtype = np.result_type(op.dtype, b.dtype, np.float64)
        check_budget(
            (capacity + 1) * (m + n) * dtype.itemsize,
            f"Golub-Kahan bases ({capacity} steps)",
            max_bytes=max_bytes,
        )
        self.op, self.capacity = op, capacity
        self.left, self.right = np.zeros((capacity + 1, m), dtype), np.zeros((capacity, n), dtype)
        beta = float(np.linalg.norm(b))
        self.left[0] = b / beta
        self.alphas, self.betas = [], [beta]
        self._next = op.rmatvec(self.left[0]).astype(dtype, copy=False)
        self.exhausted = False

    def grow(self, steps: int) -> KrylovResidual:
        """Steps up to ``steps`` in all (fewer once the space is exhausted), and the
        residual on the space so far."""
        op, left, right = self.op, self.left, self.right
        while len(self.alphas) < min(steps, self.capacity) and not self.exhausted:
            j = len(self.alphas)
            v = _orthogonal(self._next, right[:j])
            alpha = float(np.linalg.norm(v))
            if alpha <= 1e-14 * self.betas[0]:
                self.exhausted = True
                break
            right[j] = v / alpha
            self.alphas.append(alpha)
            u = _orthogonal(op.matvec(right[j]) - alpha * left[j], left[: j + 1])
            beta = float(np.linalg.norm(u))
            self.betas.append(beta)
            if beta <= 1e-14 * self.betas[0]:
                self.exhausted = True
                break
            left[j + 1] = u / beta
            self._next = op.rmatvec(left[j + 1]) - beta * right[j]
        return KrylovResidual(np.array(self.alphas), np.array(self.betas))


def _orthogonal(vector: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``vector`` without its components along the rows of ``basis`` (one classical
    Gram-Schmidt pass each step: the bases stay orthogonal to about the rounding times
    the layer's condition number, which the residuals of the damps the rules pick do
    not feel)."""
    if len(basis):
        vector = vector - basis.T @ (basis.conj() @ vector)
    return vector


def affordable_steps(op: ConvOperator, wanted: int, max_bytes=None) -> int:
    """The most steps up to ``wanted`` whose bases fit half the memory budget (at least
    one: the budget check of :class:`Bidiagonalisation` then names what is too large)."""
    per_step = (op.shape[0] + op.shape[1]) * 16
    return max(1, min(wanted, resolve_budget(max_bytes) // (2 * per_step) - 1))


class KrylovResidual:
    """:math:`\\|A x_k(d) - b\\|^2` of the module's text for a bidiagonalisation."""

    def __init__(self, alphas: np.ndarray, betas: np.ndarray) -> None:
        k = len(alphas)
        bidiagonal = np.zeros((k + 1, k))
        bidiagonal[np.arange(k), np.arange(k)] = alphas
        bidiagonal[np.arange(1, k + 1), np.arange(k)] = betas[1 : k + 1]
        left, values, _ = np.linalg.svd(bidiagonal, full_matrices=False)
        self.squares = values**2
        self.coefficients = (betas[0] * left[0]) ** 2
        self.outside = max(betas[0] ** 2 - float(self.coefficients.sum()), 0.0)
        self.steps = k

    def squared(self, damp: float) -> float:
        """The residual's square at ``damp``."""
        filt = damp * damp / (self.squares + damp * damp)
        return float(np.sum(filt * filt * self.coefficients)) + self.outside
