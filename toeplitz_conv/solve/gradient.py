"""The finite-difference gradient of total variation, and its symbol in each diagonal form.

Per channel and axis :math:`a`, the forward difference
:math:`(D_a x)_p = x_{p + e_a} - x_p`, with the boundary of the layer it regularises:

- **periodic** (circular layers): :math:`x_{n} = x_0`; the DFT diagonalises it,
  :math:`\\hat D_a(f) = e^{2 \\pi i f / n} - 1`, so
  :math:`D^T D = \\sum_a D_a^T D_a` has eigenvalues
  :math:`\\sum_a 4 \\sin^2(\\pi f_a / n_a)`;
- **Neumann** (every other padding): no difference across the edge,
  :math:`(D_a x)_{n - 1} = 0`. :math:`D_a^T D_a` is the half-sample symmetric second
  difference, which the orthonormal DCT-II diagonalises with eigenvalues
  :math:`4 \\sin^2(\\pi f / (2 n))`; with the DCT-I's weight
  :math:`W` of reflect padding, :math:`W L_{\\text{ws}} = D^T D` on one axis for the
  whole-sample second difference :math:`L_{\\text{ws}}`, whose DCT-I eigenvalues are
  :math:`4 \\sin^2(\\pi f / (2 (n - 1)))` (the bound of :mod:`.cosine` then holds for
  the penalised normal equations too).

With stride :math:`s` the DFT form's input coordinates are polyphase
(:mod:`.fourier`): on one axis :math:`(D x)_r = x_{r+1} - x_r` for phases
:math:`r < s - 1` and :math:`(D x)_{s-1}[m] = x_0[m + 1] - x_{s-1}[m]`, an
:math:`s \\times s` matrix per coarse frequency (:func:`fourier_gradient_symbols`).
"""

from __future__ import annotations

import math

import numpy as np
import pylops

from ..core.geometry import Geometry
from ..layers.conv import ConvOperator

__all__ = [
    "BOUNDARIES",
    "Gradient",
    "cosine_laplacian",
    "fourier_gradient_symbols",
    "gradient_boundary",
]

BOUNDARIES = ("periodic", "neumann")


def gradient_boundary(op: ConvOperator) -> str:
    """The gradient boundary that matches the layer's padding: periodic for circular
    padding, Neumann otherwise."""
    return "periodic" if op.geometry.padding_mode == "circular" else "neumann"


class Gradient(pylops.LinearOperator):
    """The forward-difference gradient of every channel of an image.

    .. math::

        (D x)_{a, c, p} = x_{c, p + e_a} - x_{c, p},

    periodic (:math:`x_{c, n} = x_{c, 0}`) or Neumann (zero across the far edge).

    Parameters
    ----------
    shape : tuple of int
        ``(C, *spatial)``: the image layout (a layer's ``input_shape``).
    boundary : {"periodic", "neumann"}
    dtype : str or numpy.dtype

    Notes
    -----
    ``dims = shape`` and ``dimsd = (d, *shape)``, :math:`d` the spatial axes.
    :math:`\\|D\\|^2 \\le 4 d` (Gershgorin on :math:`D^T D`).
    """

    def __init__(self, shape, boundary: str = "neumann", dtype="float64"):
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {BOUNDARIES}; got {boundary!r}")
        shape = tuple(int(v) for v in shape)
        if len(shape) < 2 or min(shape) < 1:
            raise ValueError(f"shape must be (C, *spatial) of positive sizes; got {shape}")
        self.boundary = boundary
        axes = len(shape) - 1
        super().__init__(dtype=np.dtype(dtype), dims=shape, dimsd=(axes, *shape))

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        x = x.reshape(self.dims)
        out = np.empty((len(self.dims) - 1, *self.dims), np.result_type(x, self.dtype))
        for a in range(len(self.dims) - 1):
            out[a] = self._difference(x, 1 + a)
        return out.ravel()

    def _rmatvec(self, y: np.ndarray) -> np.ndarray:
        y = y.reshape(self.dimsd)
        x = np.zeros(self.dims, np.result_type(y, self.dtype))
        for a in range(len(self.dims) - 1):
            x += self._difference_adjoint(y[a], 1 + a)
        return x.ravel()

    def _difference(self, x: np.ndarray, axis: int) -> np.ndarray:
        if self.boundary == "periodic":
            return np.roll(x, -1, axis=axis) - x
        d = np.zeros_like(x)
        inner = [slice(None)] * x.ndim
        inner[axis] = slice(0, -1)
        d[tuple(inner)] = np.diff(x, axis=axis)
        return d

    def _difference_adjoint(self, y: np.ndarray, axis: int) -> np.ndarray:
        if self.boundary == "periodic":
            return np.roll(y, 1, axis=axis) - y
        y = y.copy()
        last = [slice(None)] * y.ndim
        last[axis] = -1
        y[tuple(last)] = 0.0
        return np.roll(y, 1, axis=axis) - y  # y[-1] = 0 makes the roll's wrap vanish


def fourier_gradient_symbols(g: Geometry, transposed: bool, half: bool) -> np.ndarray:
    """``(F, d P, P)``: the periodic gradient of one channel in the DFT form's input
    coordinates (:mod:`.fourier`), the frequencies flattened as its transforms do
    (``half``: the last axis up to :math:`M / 2`); :math:`P = \\prod s` phases for a
    conv, 1 for a conv-transpose (whose input is the coarse grid)."""
    coarse = tuple(n // s for n, s in zip(g.input_spatial, g.stride))
    strides = (1,) * g.ndim if transposed else tuple(g.stride)
    grids = [np.arange(m) for m in coarse]
    if half:
        grids[-1] = np.arange(coarse[-1] // 2 + 1)
    freqs = np.meshgrid(*grids, indexing="ij")
    count, phases = freqs[0].size, math.prod(strides)
    out = np.zeros((count, g.ndim * phases, phases), np.complex128)
    for a, (m, s) in enumerate(zip(coarse, strides)):
        wrap = np.exp(2j * np.pi * freqs[a].ravel() / m)
        axis = np.zeros((count, s, s), np.complex128)
        axis[:, np.arange(s), np.arange(s)] = -1.0
        axis[:, np.arange(s - 1), np.arange(1, s)] = 1.0
        axis[:, s - 1, 0] += wrap
        before, after = math.prod(strides[:a]), math.prod(strides[a + 1 :])
        block = np.einsum("ij,fkl,mn->fikmjln", np.eye(before), axis, np.eye(after))
        out[:, a * phases : (a + 1) * phases] = block.reshape(count, phases, phases)
    return out


def cosine_laplacian(spatial: tuple[int, ...], kind: str) -> np.ndarray:
    """The eigenvalues of the Neumann :math:`D^T D` in the DCT-II (``kind="dct2"``,
    frequencies in reversed axis order, as :mod:`.dct` keeps them) or of the
    whole-sample second difference in the DCT-I (``"dct1"``), flat."""
    values = np.zeros(())
    axes = spatial[::-1] if kind == "dct2" else spatial
    for n in axes:
        period = 2 * n if kind == "dct2" else 2 * max(n - 1, 1)
        axis = 4 * np.sin(np.pi * np.arange(n) / period) ** 2
        values = np.add.outer(values, axis)
    return values.ravel()
