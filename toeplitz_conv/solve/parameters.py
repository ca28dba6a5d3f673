"""Choosing the Tikhonov parameter: generalised cross-validation and the discrepancy
principle, evaluated from the per-frequency spectra (no solves).

For a layer the DFT diagonalises (:func:`~.fourier.fourier_applicable`), with the
singular value decompositions :math:`\\hat W(f) = U S V^H` of the per-frequency
matrices and :math:`c = U^H \\hat b(f)`, the residual of the Tikhonov solution and
the trace of the influence matrix are sums over frequencies (Hansen, Nagy &
O'Leary, *Deblurring Images*, 2006, ch. 6; the same with the cosine forms of
:mod:`~.cosine`, the DCT-I ones in their weighted norm, which counts the edge
samples of reflect padding by half):

.. math::

    \\|A x_d - b\\|^2 = \\frac{1}{N} \\sum_f \\Bigl(\\sum_i
        \\Bigl(\\frac{d^2}{s_i^2 + d^2}\\Bigr)^2 |c_i|^2 + \\|\\hat b - U U^H \\hat b\\|^2\\Bigr),
    \\qquad
    \\operatorname{tr}(I - A (A^H A + d^2 I)^{-1} A^H) = (m - r) + \\sum_{f, i}
        \\frac{d^2}{s_i^2 + d^2},

(:math:`N` the points of the DFT, :math:`r` the number of singular values). GCV minimises
:math:`G(d) = \\|A x_d - b\\|^2 / \\operatorname{tr}(\\cdot)^2`; the discrepancy
principle solves :math:`\\|A x_d - b\\| = \\tau\\, \\sigma \\sqrt{m}` (:math:`\\tau` =
``DISCREPANCY_TAU``), whose left side increases with :math:`d`. Both are exact for
circular layers and the DCT-II class, and for reflect layers with symmetric kernels
in the weighted norm. Other layers use the same formulas on their circulant
counterpart (:func:`~.preconditioners.circulant_counterpart`): an approximation
whose boundary rows are those of circular padding (which can mislead GCV where the
data are not periodic).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from ..core.errors import ParameterError
from ..core.weights import times_power_of_two
from ..layers.conv import ConvOperator
from .checks import checked_operator, nonnegative, vector
from .forms import diagonal_form
from .preconditioners import circulant_counterpart
from .scaling import exponent_into_range, layer_in_range

__all__ = ["DISCREPANCY_TAU", "choose_damp"]

DISCREPANCY_TAU = 1.0  # the discrepancy principle's safety factor
RULES = ("gcv", "discrepancy")
GRID = 60  # log-spaced damps of the GCV search (7.5 a decade), refined around the best
_GOLDEN_HIGH = (math.sqrt(5) - 1) / 2
_GOLDEN_LOW = 1 - _GOLDEN_HIGH


def _golden_points(low: float, high: float) -> tuple[float, float]:
    return low + (high - low) * _GOLDEN_LOW, low + (high - low) * _GOLDEN_HIGH


def choose_damp(
    op: ConvOperator, b: ArrayLike, *, rule: str = "gcv", noise_std: float | None = None
) -> float:
    """A Tikhonov parameter for :func:`~.tikhonov.solve_tikhonov` chosen from the data.

    Parameters
    ----------
    op : Conv or ConvTranspose
        Evaluated on the layer's diagonal form (:func:`~.forms.diagonal_form`):
        exactly for circular layers and the DCT-II class, in the DCT-I's weighted
        norm for reflect padding with symmetric kernels; layers without a form are
        evaluated on their circulant counterpart (see the module), an approximation.
    b : array_like
        The data (minus any bias): flat, length ``op.shape[0]``, or of the layer's
        output shape ``(C_out, *spatial)``.
    rule : {"gcv", "discrepancy"}
        Generalised cross-validation (minimised over a log grid from
        :math:`10^{-8}\\sigma_{\\max}` to :math:`\\sigma_{\\max}`, refined to 1e-3
        relative), or the discrepancy principle, solved to 1e-3 relative.
    noise_std : float, optional
        The noise's standard deviation per entry of ``b``; needed by
        ``"discrepancy"`` (checked, and unused, by ``"gcv"``).

    Returns
    -------
    float
        ``damp``.

    Raises
    ------
    ParameterError, ParameterTypeError
        For an unknown ``rule``; a ``b`` of the wrong length or not finite, or zero
        (for GCV, which is then 0 at every damp); a ``noise_std`` negative or not
        finite, missing for ``"discrepancy"`` or larger than the data can explain; a
        layer without a diagonal form (see ``op``).
    """
    op = checked_operator(op)
    if rule not in RULES:
        raise ParameterError("rule", f"rule must be one of {RULES}; got {rule!r}")
    b = vector(b, op.output_shape, "b")
    if rule == "discrepancy" and noise_std is None:
        raise ParameterError("noise_std", "the discrepancy rule needs noise_std")
    noise_std = None if noise_std is None else nonnegative(noise_std, "noise_std")
    if rule == "gcv" and not np.any(b):
        raise ParameterError(
            "b", "b is zero: GCV is 0 at every damp (x = 0 fits it whatever the damp)"
        )
    # extreme magnitudes in range (.scaling): A' = 2^p A, b' = 2^q b, damp = 2^-p damp'
    (scaled, p), q = layer_in_range(op), exponent_into_range(b)
    spectrum = _Spectrum(*_diagonal_form(scaled, times_power_of_two(b, q)), op.shape[0])
    if rule == "gcv":
        return times_power_of_two(spectrum.gcv_minimum(), -p)
    target = DISCREPANCY_TAU * noise_std * math.sqrt(op.shape[0])
    return times_power_of_two(spectrum.discrepancy(times_power_of_two(target, q)), -p)


def _diagonal_form(op: ConvOperator, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """:meth:`~.diagonal.DiagonalForm.damp_spectrum` of the layer's diagonal form, or of
    its circulant counterpart's where it has none."""
    form = diagonal_form(op).form
    if form is None:
        twin = circulant_counterpart(op)
        if twin is None:
            raise ParameterError(
                "op",
                "choose_damp needs a circular layer, a cosine-form layer (replicate or "
                "reflect padding, symmetric kernels, stride 1), or one whose circular "
                "counterpart has its shape (a stride dividing the size, output n / stride)",
            )
        form = diagonal_form(twin).form
    return form.damp_spectrum(b)


class _Spectrum:
    """Singular values and data coefficients of every frequency, for the formulas above."""

    def __init__(self, s, coefficients, b_hat: np.ndarray, points: int, rows: int) -> None:
        self.squares = (s**2).ravel()
        self.weights = (np.abs(coefficients) ** 2).ravel() / points
        outside = np.sum(np.abs(b_hat) ** 2) / points - self.weights.sum()
        self.outside = max(float(outside), 0.0)  # the part of b outside the range
        self.rows = rows
        self.top = math.sqrt(float(self.squares.max(initial=0.0))) or 1.0

    def _filter(self, damp: float) -> np.ndarray:
        shifted = self.squares + damp * damp
        return np.divide(damp * damp, shifted, out=shifted)

    def _squared_residual(self, filt: np.ndarray) -> float:
        return float(np.einsum("i,i,i->", filt, filt, self.weights)) + self.outside

    def residual(self, damp: float) -> float:
        return math.sqrt(self._squared_residual(self._filter(damp)))

    def gcv(self, damp: float) -> float:
        # m - sum s^2 / (s^2 + d^2), summed without cancelling: the rows beyond the
        # singular values count 1 each, every singular value d^2 / (s^2 + d^2)
        filt = self._filter(damp)
        trace = (self.rows - self.squares.size) + float(np.sum(filt))
        return self._squared_residual(filt) / max(trace, 1e-300) ** 2

    def gcv_minimum(self) -> float:
        grid = self.top * np.logspace(-8, 0, GRID)
        values = [self.gcv(d) for d in grid]
        best = int(np.argmin(values))
        low, high = math.log(grid[max(best - 1, 0)]), math.log(grid[min(best + 1, GRID - 1)])
        inner = _golden_points(low, high)
        scores = [self.gcv(math.exp(t)) for t in inner]
        while high - low > 1e-4:  # golden section in log d: one new point a step
            if scores[0] < scores[1]:
                high = inner[1]
                inner = (low + (high - low) * _GOLDEN_LOW, inner[0])
                scores = [self.gcv(math.exp(inner[0])), scores[0]]
            else:
                low = inner[0]
                inner = (inner[1], low + (high - low) * _GOLDEN_HIGH)
                scores = [scores[1], self.gcv(math.exp(inner[1]))]
        return float(math.exp((low + high) / 2))

    def discrepancy(self, target: float) -> float:
        low, high = self.top * 1e-12, self.top * 1e6
        if self.residual(high) < target:
            raise ParameterError(
                "noise_std", "noise_std is larger than the data can explain (no damp reaches it)"
            )
        if self.residual(low) > target:
            return float(low)
        for _ in range(200):  # bisection in log d: the residual increases with damp
            if high / low < 1 + 1e-4:
                break
            middle = math.sqrt(low * high)
            if self.residual(middle) < target:
                low = middle
            else:
                high = middle
        return float(math.sqrt(low * high))
