"""Published estimates and bounds of a conv layer's spectral norm, implemented from the
papers' formulas for the comparison in bench_spectral.py (not part of the package).

- Power iteration with the conv and its transpose (Ryu et al., "Plug-and-Play Methods
  Provably Converge with Properly Trained Denoisers", ICML 2019): an estimate from
  below, no certificate.
- Gram iteration (Delattre, Barthelemy, Araujo, Allauzen, "Efficient Bound of Lipschitz
  Constant for Convolutional Layers by Gram Iteration", ICML 2023): on the DFT's
  per-frequency matrices of a circular layer, G_{t+1} = G_t^H G_t with rescaling; the
  Frobenius norm of the block-diagonal G_t to the power 2^-t bounds sigma_max from above.
- Zero padding through a circular layer: the zero-padded layer is a submatrix of the
  circular layer on the period n + (k - 1) d (the bridge between the two paddings that
  Delattre, Barthelemy and Allauzen, arXiv:2402.00240, 2024, study), bounded here by the
  same Gram iteration. Our reading of the paper, not its code.
- Singla & Feizi, "Fantastic Four: Differentiable Bounds on Singular Values of
  Convolution Layers", ICLR 2021: sqrt(h w) times the smallest spectral norm of four
  reshapings of the kernel (stride 1).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["gram_iteration", "power_iteration", "singla_feizi", "zero_padding_gram_bound"]


def power_iteration(op, iterations: int = 100, seed: int = 0) -> float:
    """||A x|| / ||x|| after ``iterations`` steps of x <- A^H A x (normalised)."""
    x = np.random.default_rng(seed).standard_normal(op.shape[1])
    for _ in range(iterations):
        x = op.rmatvec(op.matvec(x))
        x /= np.linalg.norm(x)
    return float(np.linalg.norm(op.matvec(x)))


def _frequency_matrices(weight: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """The circular layer's per-frequency (C_out x C_in) matrices on ``size`` (stride 1)."""
    axes = tuple(range(2, weight.ndim))
    spectrum = np.fft.fftn(weight, s=size, axes=axes)
    return np.moveaxis(spectrum.reshape(*weight.shape[:2], -1), -1, 0)


def gram_iteration(weight: np.ndarray, size: tuple[int, ...], iterations: int = 6) -> float:
    """Delattre et al. 2023's upper bound of the circular layer on ``size`` (groups=1)."""
    g = _frequency_matrices(weight, size)
    log_scale = 0.0
    for _ in range(iterations):
        norm = float(np.sqrt((np.abs(g) ** 2).sum()))
        g = g / norm
        log_scale = 2 * (log_scale + math.log(norm))
        g = np.conj(np.swapaxes(g, -1, -2)) @ g
    final = float(np.sqrt((np.abs(g) ** 2).sum()))
    return math.exp((log_scale + math.log(final)) / 2**iterations)


def zero_padding_gram_bound(weight: np.ndarray, size: tuple[int, ...], dilation: int = 1) -> float:
    """The zero-padded layer (stride 1) as a submatrix of the circular one on n + (k-1)d."""
    kernel = weight.shape[2:]
    period = tuple(n + (k - 1) * dilation for n, k in zip(size, kernel))
    return gram_iteration(weight, period)


def singla_feizi(weight: np.ndarray) -> float:
    """sqrt(h w) min(||R_1||, ..., ||R_4||) for a 2-D kernel (C_out, C_in, h, w)."""
    c_out, c_in, h, w = weight.shape
    reshapes = (
        weight.reshape(c_out, c_in * h * w),
        weight.transpose(0, 2, 1, 3).reshape(c_out * h, c_in * w),
        weight.transpose(0, 3, 1, 2).reshape(c_out * w, c_in * h),
        weight.transpose(0, 2, 3, 1).reshape(c_out * h * w, c_in),
    )
    return math.sqrt(h * w) * min(float(np.linalg.norm(r, 2)) for r in reshapes)
