"""Conjugate gradients for reflect padding in DCT-I coordinates, with no transform per
iteration.

A reflect-padded conv with symmetric kernels and stride 1 (:func:`~.cosine.cosine_class`
gives ``"dct1"``) is diagonalised by the DCT-I basis :math:`V`: :math:`A = V \\Lambda
V^{-1}` with :math:`V^T W V = D` (:mod:`.cosine`). With the orthogonal :math:`Q = W^{1/2}
V D^{-1/2}`, :math:`A = W^{-1/2} Q \\Lambda Q^T W^{1/2}`, and in the coordinates
:math:`x = W^{-1/2} Q z` the Tikhonov normal equations read

.. math::

    (\\Lambda^H G \\Lambda + d^2 G)\\, z = \\Lambda^H \\tilde b + d^2 G z_0, \\qquad
    G = Q^T W^{-1} Q, \\quad \\tilde b = D^{-1/2} V b, \\quad z_0 = D^{-1/2} V W x_0.

:math:`W^{-1}` is the identity but for a 2 at both ends of each axis, so along each axis
:math:`G` is the identity plus a correction of rank two, applied without a transform:

.. math::

    (G_k v)_f = v_f + \\frac{2}{n - 1} \\sqrt{w_f} \\sum_{g \\equiv f \\ (\\mathrm{mod}\\ 2)}
    \\sqrt{w_g}\\, v_g, \\qquad G = \\textstyle\\bigotimes_k G_k.

Conjugate gradients on this system, preconditioned by :math:`(\\Lambda^H \\Lambda + d^2
I)^{-1}`, are those of the normal equations preconditioned by the DCT-I form of
:func:`~.cosine.cosine_preconditioner` (a congruence leaves preconditioned CG's iterates
unchanged), so its bound holds: a condition number of at most :math:`2^a` for
:math:`a` axes. An iteration costs three per-frequency products and two
applications of :math:`G` instead of two DCT-Is and two convolutions; the DCT-I runs
twice in all (:math:`\\tilde b` and :math:`z_0` in, :math:`x` out).

The residual of the normal equations is :math:`r = W^{1/2} Q \\hat r` with :math:`\\hat r`
CG's, so :math:`\\|r\\| \\le \\|\\hat r\\|` (:math:`W \\preceq I`): CG stops at
:math:`\\|\\hat r\\| \\le \\text{rtol}\\, \\|A^H b + d^2 x_0\\|`, the right-hand side's norm
taken as :math:`(\\hat c^H Q^T W Q\\, \\hat c)^{1/2}` of its coordinates :math:`\\hat c`
(:math:`Q^T W Q` is the same form with :math:`-\\tfrac12` for :math:`1`). ``rtol`` thus
holds for the normal equations themselves.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse.linalg as spla

from ..layers.conv import ConvOperator
from .algebra import FrequencyStack, cache_key, check_stacks_budget
from .cosine import cosine_inverses, cosine_symbols, cosine_vector
from .dct import dct1_norms, from_frequencies, to_frequencies
from .iterative import BLAS_ONE_THREAD_SIZE, conjugate_gradients

__all__ = ["reflect_cg"]

_EDGE = math.sqrt(0.5) - 1.0  # sqrt(w) - 1 at both ends of an axis


def reflect_cg(
    op: ConvOperator,
    b: np.ndarray,
    damp: float,
    x0: np.ndarray | None,
    *,
    rtol: float,
    maxiter: int | None,
    max_bytes=None,
) -> tuple[np.ndarray, int, bool]:
    """``(x, iterations, converged)`` of the module's conjugate gradients, for a layer
    of :func:`~.cosine.cosine_class` ``"dct1"`` and ``damp > 0`` (``damp**2`` finite)."""
    g = op.geometry
    spatial = tuple(g.input_spatial)
    shift = damp * damp
    symbols, adjoint = _symbol_stacks(op, max_bytes)
    inverses = cosine_inverses(op, "dct1", damp, max_bytes=max_bytes)
    scales = np.sqrt(dct1_norms(spatial))[None, :, None]
    b_hat = to_frequencies(b, op.output_shape, g.groups, "dct1") / scales
    rhs = _flat(adjoint.apply(b_hat))
    start = np.zeros_like(rhs)
    if x0 is not None:
        start = start + _flat(cosine_vector(op, x0, side="input"))
        rhs = rhs + shift * boundary_form(start.copy(), spatial, 1.0)
    c_in, c_out = g.in_per_group, g.out_per_group

    def normal(v: np.ndarray) -> np.ndarray:
        mixed = boundary_form(_flat(symbols.apply(_unflat(v, g.groups, c_in))), spatial, 1.0)
        result = boundary_form(v.copy(), spatial, 1.0)
        result *= shift
        result += _flat(adjoint.apply(_unflat(mixed, g.groups, c_out)))
        return result

    def precondition(v: np.ndarray) -> np.ndarray:
        return _flat(inverses.apply(_unflat(v, g.groups, c_in)))

    n = rhs.size
    gram = spla.LinearOperator((n, n), matvec=normal, dtype=rhs.dtype)
    m = spla.LinearOperator((n, n), matvec=precondition, dtype=rhs.dtype)
    rhs_norm = math.sqrt(max(np.vdot(rhs, boundary_form(rhs.copy(), spatial, -0.5)).real, 0.0))
    z, iterations, converged = conjugate_gradients(
        gram,
        rhs,
        start,
        rtol=0.0,
        atol=rtol * rhs_norm,
        maxiter=maxiter,
        preconditioner=m,
        one_blas_thread=n >= BLAS_ONE_THREAD_SIZE,
    )
    x = from_frequencies(_unflat(z, g.groups, c_in) / scales, op.input_shape, "dct1")
    return x, iterations, converged


def boundary_form(v: np.ndarray, spatial: tuple[int, ...], alpha: float) -> np.ndarray:
    """:math:`Q^T (I + \\alpha E) Q\\, v` in place, with :math:`Q` the orthonormal DCT-I
    of every axis and :math:`E` the indicator of both ends of an axis (applied axis by
    axis: :math:`\\alpha = 1` gives :math:`G = Q^T W^{-1} Q`, :math:`\\alpha = -\\tfrac12`
    gives :math:`Q^T W Q`). ``v`` is flat, channels first, spatial axes last; returned."""
    x = v.reshape(-1, *spatial)
    for axis, n in enumerate(spatial, start=1):
        if n < 2:
            continue

        def at(index, axis=axis):
            return (slice(None),) * axis + (index,)

        last = (n - 1) % 2
        sums = [x[at(slice(p, None, 2))].sum(axis=axis) for p in (0, 1)]
        sums[0] += _EDGE * x[at(0)]
        sums[last] += _EDGE * x[at(n - 1)]
        for p in (0, 1):
            sums[p] *= alpha * 2.0 / (n - 1)
            x[at(slice(p, None, 2))] += np.expand_dims(sums[p], axis)
        x[at(0)] += _EDGE * sums[0]
        x[at(n - 1)] += _EDGE * sums[last]
    return v


def _symbol_stacks(op: ConvOperator, max_bytes) -> tuple[FrequencyStack, FrequencyStack]:
    """The layer's DCT-I symbols and their adjoints, kept by the layer."""
    g = op.geometry
    rows, cols = g.out_per_group, g.in_per_group
    check_stacks_budget(
        g.groups,
        math.prod(g.input_spatial),
        3 * rows * cols + 2 * cols * cols,
        f"DCT-I symbols, their adjoints and inverses of a {op.shape} layer",
        max_bytes,
    )

    def build() -> tuple[FrequencyStack, FrequencyStack]:
        symbols = cosine_symbols(op, "dct1", max_bytes=max_bytes)
        adjoint = np.conj(np.swapaxes(symbols, -1, -2))
        return FrequencyStack.of(symbols), FrequencyStack.of(adjoint)

    return op.layer.cached(cache_key(op, "dct1-symbol-stacks"), build)


def _flat(hat: np.ndarray) -> np.ndarray:
    """``(groups, F, C)`` coordinates to a flat vector in ``(groups, C, F)`` order (a view
    where the memory lies so)."""
    return np.transpose(hat, (0, 2, 1)).reshape(-1)


def _unflat(v: np.ndarray, groups: int, channels: int) -> np.ndarray:
    """The inverse of :func:`_flat`: a ``(groups, F, channels)`` view."""
    return v.reshape(groups, channels, -1).transpose(0, 2, 1)
