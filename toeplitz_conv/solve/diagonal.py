"""The diagonal form of a layer: the seam the structured solvers are built on.

A *diagonal form* of a layer :math:`A` is a basis in which the layer is block-diagonal:
transforms :math:`\\hat y = T_{\\text{out}} y`, :math:`\\hat x = T_{\\text{in}} x` with
:math:`\\hat y(f) = K(f)\\, \\hat x(f)` at every frequency :math:`f`, :math:`K(f)` a small
``rows x cols`` matrix per group (the *symbol*). It is

- **exact** when it diagonalises the normal equations too,
  :math:`T_{\\text{in}} (A^H A + d^2 I) T_{\\text{in}}^{-1} = \\oplus_f (K^H K + d^2 I)`: the
  Tikhonov solve is then one small solve per frequency (the DFT of circular layers,
  :mod:`.fourier`; the DCT-II of replicate padding with symmetric kernels, :mod:`.cosine`);
- **bounding** when it diagonalises :math:`A` but the normal equations only in a
  weighted inner product that brackets the Euclidean one: its inverse preconditions
  conjugate gradients with a proven condition number (the DCT-I of reflect padding).

Each basis implements :class:`DiagonalForm` once, in its own module, with a builder
``op -> FormChoice``; :func:`~.forms.diagonal_form` asks the builders of its registry
and returns the exact form, else the bounding one, else none with the reasons. The
solvers (:func:`~.tikhonov.solve_tikhonov`, :func:`~.preconditioners.preconditioner`,
:func:`~.parameters.choose_damp`) use only this protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["DiagonalForm", "FormChoice"]


class DiagonalForm(Protocol):
    """What a basis offers the solvers.

    Attributes
    ----------
    basis : str
        Its name: ``"dft"``, ``"dct2"``, ``"dct1"``.
    exact : bool
        Whether it diagonalises the normal equations (else it bounds them).
    """

    basis: str
    exact: bool

    def solve(
        self, b: np.ndarray, damp: float, x0: np.ndarray | None, *, max_bytes=None
    ) -> tuple[np.ndarray, float | None]:
        """An exact form's Tikhonov minimiser (flat) and, where the spectra give it,
        the residual :math:`\\|A x - b\\|` (else ``None``)."""

    def normal_inverse(
        self, damp: float, *, penalty: float = 0.0, max_bytes=None
    ) -> Callable[[np.ndarray], np.ndarray]:
        """:math:`v \\mapsto P^{-1} v`: the exact inverse of :math:`A^H A + \\rho D^T D +
        d^2 I` (:math:`\\rho` the ``penalty``, :math:`D` the gradient of :mod:`.gradient`
        with the form's boundary), or of the bounding form's weighted counterpart
        (``damp > 0``); kept by the layer."""

    def damp_spectrum(self, b: np.ndarray) -> tuple[np.ndarray, ...]:
        """For the damp rules: per-frequency singular values, the data's coefficients
        on their left singular vectors, the data in the form's coordinates, and the
        factor by which the squared coordinates overcount the squared norm."""


@dataclass(frozen=True)
class FormChoice:
    """A builder's answer for one layer: its form (or ``None``) and why it is not exact
    (``""`` for an exact form; why there is none, for ``None``)."""

    form: DiagonalForm | None
    reason: str = ""
