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


def tolerance(dtype) -> float:
    return 2e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10


def assert_close(actual, expected, dtype, scale=1.0):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    bound = tolerance(dtype) * max(1.0, scale, float(np.abs(expected).max(initial=0.0)))
    err = float(np.abs(actual - expected).max(initial=0.0))
    assert err <= bound, f"max error {err:.3e} > {bound:.3e}"


def transposed_size(m, k, s, pads, dil, op):
    return (m - 1) * s - pads[0] - pads[1] + dil * (k - 1) + op + 1


def conv_transpose(x, w, *, stride, pads, output_padding, dilation, groups, bias=None):
    """PyTorch conv_transpose with zero padding; asymmetric pads by cropping padding-0 output."""
    d = w.ndim - 2
    full = CONV_T[d](
        torch.as_tensor(x),
        torch.as_tensor(w),
        None,
        stride=stride,
        padding=0,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    ).numpy()
    crop = (slice(None), slice(None)) + tuple(
        slice(pb, size - pa) for (pb, pa), size in zip(pads, full.shape[2:])
    )
    out = full[crop]
    if bias is not None:
        out = out + np.asarray(bias).reshape(-1, *([1] * d))
    return out


def conv_transpose_by_vjp(x, w, *, stride, pads, output_padding, dilation, groups, mode):
    """A^T x for the conv with padding mode `mode`, by autograd: the adjoint definition.

    autograd's vjp is A^H v; with the conjugated weight that is A^T v, the transpose.
    """
    d = w.ndim - 2
    x = np.asarray(x)
    m = x.shape[2:]
    n = tuple(
        transposed_size(mi, k, s, p, dil, op)
        for mi, k, s, p, dil, op in zip(m, w.shape[2:], stride, pads, dilation, output_padding)
    )
    c_out = w.shape[1] * groups
    wt = torch.as_tensor(np.conj(w))  # vjp gives A^H; A^H of conj(w) is A^T of w
    z0 = torch.zeros((x.shape[0], c_out, *n), dtype=wt.dtype)

    def forward(t):
        if mode == "zeros":
            tp = F.pad(t, torch_pad_arg(pads))
        else:
            tp = F.pad(t, torch_pad_arg(pads), mode=TORCH_PAD_MODE[mode])
        y = CONV[d](tp, wt, stride=stride, dilation=dilation, groups=groups)
        return y[(slice(None), slice(None)) + tuple(slice(0, mi) for mi in m)]

    _, grad = torch.autograd.functional.vjp(forward, z0, torch.as_tensor(x))
    return grad.numpy()


def conv_transpose_vjp(v, x_shape, w, *, stride, pads, output_padding, dilation, groups):
    """Autograd vjp of the zero-padded conv_transpose (cropped for asymmetric pads)."""
    wt = torch.as_tensor(w)
    x0 = torch.zeros(x_shape, dtype=wt.dtype)
    d = w.ndim - 2

    def forward(t):
        full = CONV_T[d](
            t,
            wt,
            stride=stride,
            padding=0,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
        )
        return full[
            (slice(None), slice(None))
            + tuple(slice(pb, size - pa) for (pb, pa), size in zip(pads, full.shape[2:]))
        ]

    _, grad = torch.autograd.functional.vjp(forward, x0, torch.as_tensor(v))
    return grad.numpy()


def dense_matrix(weight, input_shape, *, transposed=False, output_padding=None, **oracle):
    """PyTorch's matrix of a layer, in float64 or complex128: its conv applied to every unit
    vector (for a conv-transpose, autograd's adjoint of the conv). ``oracle``: ``stride``,
    ``pads``, ``dilation``, ``groups``, ``mode`` as for :func:`conv`."""
    import math

    weight = np.asarray(weight)
    weight = weight.astype(np.complex128 if np.iscomplexobj(weight) else np.float64)
    n = math.prod(input_shape)
    eye = np.eye(n, dtype=weight.dtype).reshape(n, *input_shape)
    if transposed:
        images = conv_transpose_by_vjp(eye, weight, output_padding=output_padding, **oracle)
    else:
        images = conv(eye, weight, **oracle)
    return images.reshape(n, -1).T


def operator_matrix(op):
    """PyTorch's matrix of a ``Conv`` or ``ConvTranspose`` of the package (the conv-transpose
    through autograd's adjoint), read from its public geometry."""
    g = op.geometry
    oracle = dict(
        stride=g.stride, pads=g.pads, dilation=g.dilation, groups=g.groups, mode=g.padding_mode
    )
    if op.transposed:
        return dense_matrix(
            op.weight,
            op.input_shape,
            transposed=True,
            output_padding=g.transpose_output_padding,
            **oracle,
        )
    return dense_matrix(op.weight, op.input_shape, **oracle)


def tikhonov_minimiser(a: np.ndarray, b: np.ndarray, damp: float, x0: np.ndarray) -> np.ndarray:
    """The minimiser of :math:`\\|A x - b\\|^2 + d^2 \\|x - x_0\\|^2` by an SVD least-squares
    solve of the stacked system [A; d I] x = [b; d x0] (accurate to cond([A; d I]) eps,
    not the normal equations' square of it)."""
    n = a.shape[1]
    stacked = np.vstack([a, damp * np.eye(n)])
    return np.linalg.lstsq(stacked, np.concatenate([b, damp * x0]), rcond=None)[0]


def dense_gcv(a: np.ndarray, b: np.ndarray, damp: float) -> float:
    """GCV's function :math:`\\|A x_d - b\\|^2 / \\operatorname{tr}(I - A (A^H A + d^2 I)^{-1}
    A^H)^2` from the full SVD of a dense matrix."""
    u, s, vh = np.linalg.svd(a)
    s = np.concatenate([s, np.zeros(a.shape[0] - s.size)])[: a.shape[0]]
    coefficients = u.conj().T @ b
    filt = damp**2 / (s**2 + damp**2)
    residual = np.sum((filt * np.abs(coefficients)) ** 2)
    return residual / np.sum(filt) ** 2

