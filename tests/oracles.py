"""Independent references: PyTorch's conv / conv-transpose, F.pad, autograd, numpy."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TORCH_PAD_MODE = {
    "zeros": "constant",
    "circular": "circular",
    "reflect": "reflect",
    "replicate": "replicate",
}


def torch_pad_arg(pads):
    """F.pad's argument: last axis first, (before, after) each."""
    return tuple(v for pair in reversed(pads) for v in pair)


def pad_input(x: np.ndarray, pads, mode: str) -> np.ndarray:
    """Pad (N, C, *spatial) with F.pad, or numpy 'wrap' when circular wraps more than once."""
    spatial = x.shape[2:]
    if mode == "circular" and any(max(p) > n for p, n in zip(pads, spatial)):
        return np.pad(x, ((0, 0), (0, 0), *pads), mode="wrap")
    t = torch.as_tensor(x)
    return F.pad(t, torch_pad_arg(pads), mode=TORCH_PAD_MODE[mode]).numpy()


def conv(x, w, *, stride, pads, dilation, groups, mode, bias=None) -> np.ndarray:
    """PyTorch conv of (N, C, *spatial) after explicit padding."""
    d = w.ndim - 2
    xp = torch.as_tensor(pad_input(np.asarray(x), pads, mode))
    b = None if bias is None else torch.as_tensor(bias)
    return CONV[d](
        xp, torch.as_tensor(w), b, stride=stride, padding=0, dilation=dilation, groups=groups
    ).numpy()


def conv_vjp(v, x_shape, w, *, stride, pads, dilation, groups, mode) -> np.ndarray:
    """Autograd vector-Jacobian product of the padded conv: A^H v (conjugate for complex)."""
    d = w.ndim - 2
    wt = torch.as_tensor(w)
    x0 = torch.zeros(x_shape, dtype=wt.dtype)

    def forward(t):
        if mode == "zeros":
            tp = F.pad(t, torch_pad_arg(pads))
        else:
            tp = F.pad(t, torch_pad_arg(pads), mode=TORCH_PAD_MODE[mode])
        return CONV[d](tp, wt, stride=stride, dilation=dilation, groups=groups)

    _, grad = torch.autograd.functional.vjp(
        forward, x0, torch.as_tensor(v).reshape(forward(x0).shape)
    )
    return grad.numpy()


def dense_by_columns(apply, n: int, dtype) -> np.ndarray:
    """Dense matrix of a linear map by applying it to the identity (tests only)."""
    eye = np.eye(n, dtype=dtype)
    return np.stack([apply(e) for e in eye], axis=1)


def tolerance(dtype) -> float:
    return 2e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10


def assert_close(actual, expected, dtype, scale=1.0):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    bound = tolerance(dtype) * max(1.0, scale, float(np.abs(expected).max(initial=0.0)))
    err = float(np.abs(actual - expected).max(initial=0.0))
    assert err <= bound, f"max error {err:.3e} > {bound:.3e}"
