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
in the weighted norm. Other layers (zero padding, kernels that are not symmetric) take
the residual from the layer itself, on its Golub-Kahan Krylov space (:mod:`.krylov`,
grown until the chosen damp moves by less than :data:`KRYLOV_AGREEMENT`), and the
trace from their circulant counterpart
(:func:`~.preconditioners.circulant_counterpart`), whose singular values are
distributed as the layer's but for the boundary's few: the counterpart's residual
alone would count the boundary rows of circular padding as misfit, which can make
GCV under-smooth by several times (see the docs' "Solving inverse problems").
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
from .krylov import Bidiagonalisation, affordable_steps
from .preconditioners import circulant_counterpart
from .scaling import exponent_into_range, layer_in_range

__all__ = ["DISCREPANCY_TAU", "KRYLOV_AGREEMENT", "choose_damp"]

DISCREPANCY_TAU = 1.0  # the discrepancy principle's safety factor
RULES = ("gcv", "discrepancy")
KRYLOV_STEPS = (25, 50, 75, 100, 150, 200, 300)  # the Krylov space's sizes tried, in turn
KRYLOV_AGREEMENT = 0.01  # the damps of two sizes in turn agree to this, relative
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
        norm for reflect padding with symmetric kernels; layers without a form with
        the residual on their own Krylov space and the trace of their circulant
        counterpart (see the module).
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
    b = times_power_of_two(b, q)
    target = None
    if rule == "discrepancy":
        target = times_power_of_two(DISCREPANCY_TAU * noise_std * math.sqrt(op.shape[0]), q)
    form = diagonal_form(scaled).form
    if form is not None:
        damp = _Spectrum(*form.damp_spectrum(b), op.shape[0]).choose(rule, target)
    else:
        damp = _on_the_layer(scaled, b, rule, target)
    return times_power_of_two(damp, -p)


def _on_the_layer(op: ConvOperator, b: np.ndarray, rule: str, target: float | None) -> float:
    """The rule with the residual on the layer's Krylov space, grown until the damp
    settles, and the trace of its circulant counterpart."""
    twin = circulant_counterpart(op)
    if twin is None:
        raise ParameterError(
            "op",
            "choose_damp needs a circular layer, a cosine-form layer (replicate or "
            "reflect padding, symmetric kernels, stride 1), or one whose circular "
            "counterpart has its shape (a stride dividing the size, output n / stride)",
        )
    spectrum = _Spectrum(*diagonal_form(twin).form.damp_spectrum(b), op.shape[0])
    capacity = affordable_steps(op, min(KRYLOV_STEPS[-1], *op.shape))
    bidiagonal = Bidiagonalisation(op, b, capacity)
    damp = None
    for steps in KRYLOV_STEPS:
        spectrum.krylov = bidiagonal.grow(steps)
        previous, damp = damp, spectrum.choose(rule, target)
        if bidiagonal.exhausted or steps >= capacity:
            break
        if previous is not None and abs(damp - previous) <= KRYLOV_AGREEMENT * previous:
            break
    return damp


class _Spectrum:
    """Singular values and data coefficients of every frequency, for the formulas above."""

    def __init__(self, s, coefficients, b_hat: np.ndarray, points: int, rows: int) -> None:
        self.squares = (s**2).ravel()
        self.weights = (np.abs(coefficients) ** 2).ravel() / points
        outside = np.sum(np.abs(b_hat) ** 2) / points - self.weights.sum()
        self.outside = max(float(outside), 0.0)  # the part of b outside the range
        self.rows = rows
        self.top = math.sqrt(float(self.squares.max(initial=0.0))) or 1.0
        self.krylov = None  # a KrylovResidual: the residual from the layer itself

    def choose(self, rule: str, target: float | None) -> float:
        """The damp of ``rule`` (``target``: the discrepancy principle's residual)."""
        return self.gcv_minimum() if rule == "gcv" else self.discrepancy(target)

    def _filter(self, damp: float) -> np.ndarray:
        shifted = self.squares + damp * damp
        return np.divide(damp * damp, shifted, out=shifted)

    def _squared_residual(self, filt: np.ndarray, damp: float) -> float:
        if self.krylov is not None:
            return self.krylov.squared(damp)
        return float(np.einsum("i,i,i->", filt, filt, self.weights)) + self.outside

    def residual(self, damp: float) -> float:
        return math.sqrt(self._squared_residual(self._filter(damp), damp))

    def gcv(self, damp: float) -> float:
        # m - sum s^2 / (s^2 + d^2), summed without cancelling: the rows beyond the
        # singular values count 1 each, every singular value d^2 / (s^2 + d^2)
        filt = self._filter(damp)
        trace = (self.rows - self.squares.size) + float(np.sum(filt))
        return self._squared_residual(filt, damp) / max(trace, 1e-300) ** 2

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
