"""PyTorch interop: operators from ``torch.nn`` conv modules (torch imported on call)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from ..core.errors import ParameterTypeError
from ..core.geometry import Geometry
from ..core.weights import as_numeric
from ..layers.conv import Conv, ConvTranspose

__all__ = [
    "is_torch_conv",
    "checked_module",
    "from_torch",
    "operator_of",
    "torch_conv",
    "torch_conv_transpose",
    "torch_conv_vjp",
]


def from_torch(
    module: object,
    input_shape: Sequence[int],
    *,
    dtype: DTypeLike | None = None,
    engine: str = "auto",
    name: str | None = None,
    output_size: Sequence[int] | None = None,
) -> Conv | ConvTranspose:
    """The operator of a ``torch.nn`` conv or conv-transpose module.

    Parameters
    ----------
    module : torch.nn.Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d or ConvTranspose3d
        The layer (a subclass, or a module under ``torch.nn.utils.parametrize``,
        such as ``spectral_norm`` or ``weight_norm``, included); the weight it
        computes and its bias are copied (detached, on the CPU; bfloat16 becomes
        float32), so a later optimizer step does not change the operator. A
        parametrization is evaluated as in ``eval()`` mode, so reading it changes
        no buffer of the module.
    input_shape : tuple of int
        ``(C_in, *spatial)`` of one sample.
    dtype : data-type, optional
        Default: the module's parameter type.
    engine : {"auto", "sparse", "direct", "numba"}
        As for :class:`~toeplitz_conv.Conv`.
    name : str, optional
        The operator's name (default the module's class name).
    output_size : tuple of int, optional
        A conv-transpose's spatial output size, as passed to its ``forward``
        (``output_padding`` is then derived from it, as PyTorch does).

    Returns
    -------
    Conv or ConvTranspose
        ``op.apply(x)`` equals ``module(torch.as_tensor(x))``.
    """
    module = checked_module(module)
    if isinstance(input_shape, str) or not isinstance(input_shape, Sequence | np.ndarray):
        raise ParameterTypeError(
            "input_shape",
            f"input_shape must be a tuple (C_in, *spatial); got {type(input_shape).__name__}",
        )
    weight, bias = module_parameters(module)
    return operator_of(
        module,
        input_shape,
        weight,
        bias,
        dtype=dtype,
        engine=engine,
        name=name,
        output_size=output_size,
    )


def is_torch_conv(module: object) -> bool:
    """Whether ``module`` is a ``torch.nn`` conv or conv-transpose of 1 to 3 axes (any
    subclass: the lazy ones, parametrized ones and libraries' own convs), by PyTorch's
    public classes."""
    import torch

    public = (
        torch.nn.Conv1d,
        torch.nn.Conv2d,
        torch.nn.Conv3d,
        torch.nn.ConvTranspose1d,
        torch.nn.ConvTranspose2d,
        torch.nn.ConvTranspose3d,
    )
    return isinstance(module, public)


def checked_module(module: object):
    """``module`` when it is a torch conv or conv-transpose (:func:`is_torch_conv`), else
    a :class:`ParameterTypeError`."""
    import torch

    if not is_torch_conv(module):
        raise ParameterTypeError(
            "module",
            "module must be a torch.nn Conv1d/2d/3d or ConvTranspose1d/2d/3d; "
            f"got {type(module).__name__}",
        )
    lazy = isinstance(module, torch.nn.modules.lazy.LazyModuleMixin)
    if lazy and module.has_uninitialized_params():  # (module.weight would run a parametrization)
        raise ParameterTypeError(
            "module",
            f"{type(module).__name__} is a lazy module not yet initialised: run one forward "
            "pass first",
        )
    return module


def module_parameters(module) -> tuple[np.ndarray, np.ndarray | None]:
    """The weight a module computes (parametrizations evaluated without updating their
    buffers) and its bias, as numpy copies."""
    import torch
    from torch.nn.utils import parametrize

    evaluating = []
    if parametrize.is_parametrized(module):
        evaluating = [m for m in module.parametrizations.modules() if m.training]
    for m in evaluating:
        m.training = False
    try:
        with torch.no_grad():
            weight = as_numeric(module.weight, "weight")
            bias = None if module.bias is None else as_numeric(module.bias, "bias")
    finally:
        for m in evaluating:
            m.training = True
    return weight, bias


def operator_of(
    module,
    input_shape: Sequence[int],
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    dtype: DTypeLike | None = None,
    engine: str = "auto",
    name: str | None = None,
    output_size: Sequence[int] | None = None,
) -> Conv | ConvTranspose:
    """The operator of a (checked) torch conv module's geometry with the given parameters."""
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
    if not module.transposed:
        return Conv(weight, tuple(input_shape), padding=padding, **common)
    output_padding = tuple(module.output_padding)
    if output_size is not None:
        output_padding = tuple(
            int(size) - ((n - 1) * s - 2 * p + d * (k - 1) + 1)
            for size, n, s, p, d, k in zip(
                output_size[-len(module.stride) :],
                input_shape[1:],
                module.stride,
                module.padding,
                module.dilation,
                module.kernel_size,
            )
        )
    return ConvTranspose(
        weight, tuple(input_shape), padding=padding, output_padding=output_padding, **common
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
