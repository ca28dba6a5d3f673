"""PyTorch interop: operators from ``torch.nn`` conv modules (torch imported on call)."""

from __future__ import annotations

from collections.abc import Sequence

from numpy.typing import DTypeLike

from .operators import Conv, ConvTranspose


def from_torch(
    module: object, input_shape: Sequence[int], *, dtype: DTypeLike | None = None
) -> Conv | ConvTranspose:
    """The operator of a ``torch.nn`` conv or conv-transpose module.

    Parameters
    ----------
    module : torch.nn.Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d or ConvTranspose3d
        The layer; its weight and bias are copied (detached, on the CPU).
    input_shape : tuple of int
        ``(C_in, *spatial)`` of one sample.
    dtype : data-type, optional
        Default: the module's parameter type.

    Returns
    -------
    Conv or ConvTranspose
        ``op.apply(x)`` equals ``module(torch.as_tensor(x))``.
    """
    import torch

    conv_types = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    transpose_types = (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
    if not isinstance(module, conv_types + transpose_types):
        raise TypeError(
            "module must be a torch.nn Conv1d/2d/3d or ConvTranspose1d/2d/3d; "
            f"got {type(module).__name__}"
        )
    weight = module.weight.detach().cpu().resolve_conj().numpy()
    bias = None if module.bias is None else module.bias.detach().cpu().resolve_conj().numpy()
    common = dict(
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
