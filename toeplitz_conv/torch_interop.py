"""PyTorch interop: operators from ``torch.nn`` conv modules (torch imported on call)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from .errors import ParameterTypeError
from .geometry import Geometry
from .operators import Conv, ConvTranspose
from .weights import as_numeric

__all__ = ["from_torch", "torch_conv", "torch_conv_transpose", "torch_conv_vjp"]


def from_torch(
    module: object,
    input_shape: Sequence[int],
    *,
    dtype: DTypeLike | None = None,
    engine: str = "auto",
    name: str | None = None,
) -> Conv | ConvTranspose:
    """The operator of a ``torch.nn`` conv or conv-transpose module.

    Parameters
    ----------
    module : torch.nn.Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d or ConvTranspose3d
        The layer; its weight and bias are copied (detached, on the CPU; bfloat16
        becomes float32), so a later optimizer step does not change the operator.
    input_shape : tuple of int
        ``(C_in, *spatial)`` of one sample.
    dtype : data-type, optional
        Default: the module's parameter type.
    engine : {"auto", "sparse", "direct", "numba"}
        As for :class:`~toeplitz_conv.Conv`.
    name : str, optional
        The operator's name (default the module's class name).

    Returns
    -------
    Conv or ConvTranspose
        ``op.apply(x)`` equals ``module(torch.as_tensor(x))``.
    """
    import torch

    conv_types = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    transpose_types = (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
    if not isinstance(module, conv_types + transpose_types):
        raise ParameterTypeError(
            "module",
            "module must be a torch.nn Conv1d/2d/3d or ConvTranspose1d/2d/3d; "
            f"got {type(module).__name__}",
        )
    weight = as_numeric(module.weight, "weight")
    bias = None if module.bias is None else as_numeric(module.bias, "bias")
    common = dict(
        engine=engine,
        name=type(module).__name__ if name is None else name,
        bias=bias,
        stride=tuple(module.stride),
        dilation=tuple(module.dilation),
        groups=module.groups,
        padding_mode=module.padding_mode,
        dtype=dtype,
    )
    padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
    if isinstance(module, conv_types):
        return Conv(weight, tuple(input_shape), padding=padding, **common)
    return ConvTranspose(
        weight,
        tuple(input_shape),
        padding=padding,
        output_padding=tuple(module.output_padding),
        **common,
    )


def torch_conv(geometry: Geometry, weight: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The geometry's conv computed by PyTorch: padding by the mode, then ``conv{d}d``.

    Parameters
    ----------
    geometry : Geometry
        The conv (as held by a :class:`Conv` or :class:`ConvTranspose`).
    weight : numpy.ndarray
        ``geometry.weight_shape``.
    z : numpy.ndarray
        ``(N, *geometry.input_shape)``.

    Returns
    -------
    numpy.ndarray
        ``(N, *geometry.output_shape)``: outputs beyond ``output_spatial`` (a
        conv-transpose with ``output_padding >= stride``) are cropped.
    """
    import torch

    return _torch_conv_tensor(
        geometry, torch.from_numpy(np.array(weight)), torch.as_tensor(z)
    ).numpy()


def torch_conv_vjp(geometry: Geometry, weight: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Autograd's vector-Jacobian product of :func:`torch_conv`: :math:`A^H v`.

    Parameters
    ----------
    v : numpy.ndarray
        ``(N, *geometry.output_shape)``.

    Returns
    -------
    numpy.ndarray
        ``(N, *geometry.input_shape)``.
    """
    import torch

    w = torch.from_numpy(np.array(weight))
    z0 = torch.zeros((v.shape[0], *geometry.input_shape), dtype=w.dtype)
    _, grad = torch.autograd.functional.vjp(
        lambda t: _torch_conv_tensor(geometry, w, t), z0, torch.as_tensor(v)
    )
    return grad.numpy()


def _torch_conv_tensor(geometry: Geometry, weight, t):
    import torch
    import torch.nn.functional as F

    mode = geometry.mode.torch_pad_mode
    if mode is None:
        # index_select wraps any number of periods (F.pad refuses more than one)
        for axis, ((pb, pa), n) in enumerate(zip(geometry.pads, geometry.input_spatial)):
            t = torch.index_select(t, 2 + axis, torch.as_tensor(np.mod(np.arange(-pb, n + pa), n)))
    else:
        t = F.pad(t, tuple(v for pair in reversed(geometry.pads) for v in pair), mode=mode)
    conv = (F.conv1d, F.conv2d, F.conv3d)[geometry.ndim - 1]
    y = conv(t, weight, stride=geometry.stride, dilation=geometry.dilation, groups=geometry.groups)
    return y[(slice(None), slice(None)) + tuple(slice(0, m) for m in geometry.output_spatial)]


def torch_conv_transpose(geometry: Geometry, weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    """PyTorch's own ``conv_transpose{d}d`` for the transpose of a zero-padded geometry.

    Asymmetric pads are cropped from the padding-0 result, as ONNX does.

    Parameters
    ----------
    x : numpy.ndarray
        ``(N, *geometry.output_shape)``.

    Returns
    -------
    numpy.ndarray
        ``(N, *geometry.input_shape)``.
    """
    import torch
    import torch.nn.functional as F

    if not geometry.mode.drops_reads:
        raise ValueError("PyTorch's conv_transpose has zero padding only")
    conv_t = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[geometry.ndim - 1]
    output_padding = geometry.transpose_output_padding
    full = conv_t(
        torch.as_tensor(x),
        torch.from_numpy(np.array(weight)),
        stride=geometry.stride,
        output_padding=output_padding,
        dilation=geometry.dilation,
        groups=geometry.groups,
    ).numpy()
    crop = (slice(None), slice(None)) + tuple(
        slice(pb, pb + n) for (pb, _), n in zip(geometry.pads, geometry.input_spatial)
    )
    return full[crop]
