"""Sample data for examples, benchmarks and the demo: a photograph that a package ships,
a cross-channel blur, and the PSNR of a recovery."""

from __future__ import annotations

import numpy as np

__all__ = ["cross_channel_blur", "psnr", "sample_image"]

IMAGE = "grace_hopper.jpg"


def sample_image(downsample: int = 4) -> np.ndarray:
    """matplotlib's sample photograph as ``(3, H, W)`` floats in [0, 1], block-averaged."""
    import matplotlib.cbook
    import matplotlib.image

    with matplotlib.cbook.get_sample_data(IMAGE) as handle:
        rgb = matplotlib.image.imread(handle, format="jpg").astype(np.float64) / 255.0
    h, w = (s // downsample * downsample for s in rgb.shape[:2])
    blocks = rgb[:h, :w].reshape(h // downsample, downsample, w // downsample, downsample, 3)
    return blocks.mean(axis=(1, 3)).transpose(2, 0, 1)


def cross_channel_blur(size: int = 7, sigma: float = 1.6, leak: float = 0.12) -> np.ndarray:
    """Weight ``(3, 3, size, size)``: a Gaussian blur, ``leak`` of it into other channels.

    .. math::

        h_{ij} = M_{ij}\\, g, \\qquad M = (1 - 2\\,\\text{leak})\\, I + \\text{leak}\\,(J - I),

    with :math:`g` a normalised Gaussian, so that each output channel keeps the
    brightness of a grey input.
    """
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2))
    g /= g.sum()
    mixing = np.full((3, 3), leak) + (1 - 3 * leak) * np.eye(3)
    return mixing[:, :, None, None] * g


def psnr(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    return float(10 * np.log10(1.0 / np.mean((np.clip(estimate, 0, 1) - truth) ** 2)))
