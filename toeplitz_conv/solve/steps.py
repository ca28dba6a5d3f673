"""Certified step sizes: a proven bracket of the norm of the layer stacked on the gradient.

First-order methods for total variation need a Lipschitz constant:
Chambolle-Pock (pyproximal's ``PrimalDual``) on :math:`K = [A; \\sqrt\\rho D]`
converges for :math:`\\tau \\mu \\|K\\|^2 \\le 1`, FISTA on
:math:`\\tfrac12\\|A x - b\\|^2` for steps :math:`\\le 1 / \\|A\\|^2`. A power-iteration
estimate lies below the norm (it converges from below) and so breaks the condition;
the upper end of a proven bracket never does. :func:`tv_norm_bounds` gives

.. math::

    \\ell \\le \\big\\|[A; \\sqrt\\rho\\, D]\\big\\|_2 = \\sqrt{\\lambda_{\\max}(A^H A +
    \\rho D^T D)} \\le u,

:math:`D` the gradient of :mod:`.gradient` with the layer's boundary:

- for a conv with stride 1 and circular or replicate padding, the stacked operator is
  itself a conv layer with the same padding (its :math:`C_\\text{out} + d\\,C_\\text{in}`
  outputs: the layer's, and each channel's forward differences, periodic or, with
  replicate padding, zero across the far edge, which is Neumann's), bracketed by
  :func:`~toeplitz_conv.norm_bounds`: per frequency, exactly, for circular layers;
- otherwise, from :func:`~toeplitz_conv.norm_bounds` of :math:`A` and the exact norm of
  :math:`D`: :math:`\\max(\\ell_A, \\sqrt\\rho\\, \\|D\\|) \\le \\|K\\| \\le
  \\sqrt{u_A^2 + \\rho \\|D\\|^2}`, with :math:`\\|D\\|^2 = \\sum_a 4 \\sin^2(\\pi
  \\lfloor n_a/2 \\rfloor / n_a)` (periodic) or :math:`\\sum_a 4 \\sin^2(\\pi (n_a - 1) /
  (2 n_a))` (Neumann).
"""

from __future__ import annotations

import math

import numpy as np

from ..core.errors import ParameterError
from ..layers.conv import Conv, ConvOperator
from ..spectra.brackets import NormBounds
from ..spectra.certified import norm_bounds
from .checks import checked_operator, nonnegative
from .gradient import gradient_boundary

__all__ = ["gradient_norm", "tv_norm_bounds"]

ROUNDING = 16 * 2.0**-53  # the relative rounding of the closed-form ||D|| (a few flops)


def tv_norm_bounds(
    op: ConvOperator, penalty: float = 1.0, *, rtol: float = 1e-6, max_bytes: int | None = None
) -> NormBounds:
    """A proven bracket of :math:`\\|[A; \\sqrt\\rho D]\\|_2` (see the module).

    Parameters
    ----------
    op : Conv or ConvTranspose
    penalty : float
        :math:`\\rho \\ge 0` (0 gives :func:`~toeplitz_conv.norm_bounds` of the layer).
    rtol, max_bytes
        As :func:`~toeplitz_conv.norm_bounds`'s.

    Returns
    -------
    NormBounds
        Use ``upper`` in step conditions: ``tau * mu * upper**2 <= 1``.
    """
    op = checked_operator(op)
    penalty = nonnegative(penalty, "penalty")
    if not math.isfinite(penalty):
        raise ParameterError("penalty", f"penalty must be finite; got {penalty!r}")
    if penalty == 0:
        return norm_bounds(op, rtol=rtol, max_bytes=max_bytes)
    stacked = _stacked_layer(op, penalty)
    if stacked is not None:
        bounds = norm_bounds(stacked, rtol=rtol, max_bytes=max_bytes)
        return NormBounds(
            bounds.lower, bounds.upper, f"[A; sqrt(rho) D] as one layer: {bounds.method}"
        )
    layer = norm_bounds(op, rtol=rtol, max_bytes=max_bytes)
    square = penalty * gradient_norm(op.input_shape, gradient_boundary(op)) ** 2
    upper = math.sqrt((layer.upper**2 + square * (1 + ROUNDING)) * (1 + ROUNDING)) * (1 + ROUNDING)
    lower = max(layer.lower, math.sqrt(square) * (1 - ROUNDING))
    return NormBounds(lower, upper, f"sqrt(||A||^2 + rho ||D||^2), ||A|| by {layer.method}")


def gradient_norm(shape, boundary: str) -> float:
    """:math:`\\|D\\|_2` of :class:`~.gradient.Gradient` on ``shape = (C, *spatial)``, in
    closed form (see the module; to a few roundings)."""
    total = 0.0
    for n in shape[1:]:
        if n < 2:
            continue
        angle = math.pi * (n // 2) / n if boundary == "periodic" else math.pi * (n - 1) / (2 * n)
        total += 4 * math.sin(angle) ** 2
    return math.sqrt(total)


def _stacked_layer(op: ConvOperator, penalty: float) -> Conv | None:
    """:math:`[A; \\sqrt\\rho D]` as one conv layer, for convs with stride 1 and circular or
    replicate padding (else ``None``)."""
    g = op.geometry
    if (
        op.transposed
        or g.padding_mode not in ("circular", "replicate")
        or any(s != 1 for s in g.stride)
    ):
        return None
    # the offsets every tap reads, and the window that holds them and the difference's
    offsets = [
        np.arange(k) * dil - before for k, dil, (before, _) in zip(g.kernel, g.dilation, g.pads)
    ]
    low = [min(int(o.min()), 0) for o in offsets]
    high = [max(int(o.max()), 1) for o in offsets]
    window = tuple(h - lo + 1 for lo, h in zip(low, high))
    c_out, c_in, d = g.out_channels, op.input_shape[0], g.ndim
    weight = np.zeros((c_out + d * c_in, c_in, *window), np.result_type(op.weight, np.float64))
    dense = np.zeros((c_out, c_in, *g.kernel), weight.dtype)
    per_out, per_in = g.out_per_group, g.in_per_group
    for group in range(g.groups):
        rows, cols = (
            slice(group * per_out, (group + 1) * per_out),
            slice(group * per_in, (group + 1) * per_in),
        )
        dense[rows, cols] = np.asarray(op.weight)[rows]
    places = np.ix_(*[o - lo for o, lo in zip(offsets, low)])
    weight[(slice(0, c_out), slice(None), *places)] = dense
    root, centre = math.sqrt(penalty), tuple(-lo for lo in low)
    for axis in range(d):
        ahead = list(centre)
        ahead[axis] += 1
        for c in range(c_in):
            row = c_out + axis * c_in + c
            weight[(row, c, *centre)] -= root
            weight[(row, c, *ahead)] += root
    pads = tuple((-lo, h) for lo, h in zip(low, high))
    return Conv(weight, op.input_shape, padding=pads, padding_mode=g.padding_mode)
