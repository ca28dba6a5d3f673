"""The geometry of a conv-transpose layer: the conv whose adjoint it is.

PyTorch's ``ConvTranspose`` with weight ``(C_in, C_out/groups, *kernel)`` is the
transpose of the conv with the same weight, read the other way; this module finds
that conv's :class:`~toeplitz_conv.core.geometry.Geometry` from the conv-transpose's
arguments (``output_padding`` or ``output_size``, as PyTorch resolves them).
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import ParameterError
from .geometry import (
    Geometry,
    PaddingLike,
    check_shape,
    check_shapes,
    conv_geometry,
    per_axis,
    truncate_output,
)
from .padding import check_int, resolve_padding

__all__ = ["transpose_geometry"]


def transpose_geometry(
    weight_shape: Sequence[int],
    input_shape: Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: PaddingLike = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    output_size: Sequence[int] | None = None,
) -> Geometry:
    """Geometry of the conv whose adjoint is the given conv-transpose layer.

    The conv-transpose layer with weight ``(C_in, C_out/groups, *kernel)`` on
    input ``(C_in, *m)`` has output size per axis

    .. math::

        n = (m - 1)\\,s - p_b - p_a + \\delta (k - 1) + \\text{output\\_padding} + 1,

    and is the transpose of the conv with the same weight from ``(C_out, *n)``
    to ``(C_in, *m)``. When ``output_padding >= stride`` (allowed while it is
    below the dilation, as in PyTorch) that conv would produce more than ``m``
    outputs; only the first ``m`` are kept.

    Returns
    -------
    Geometry
        The forward conv: its ``output_shape`` is ``input_shape`` here.
    """
    weight_shape, input_shape = check_shapes(weight_shape, input_shape, "C_in, C_out/groups")
    d = len(weight_shape) - 2
    c_in, spatial = input_shape[0], input_shape[1:]
    groups = check_int(groups, "groups", minimum=1)
    if weight_shape[0] != c_in:
        raise ParameterError(
            "input_shape",
            f"conv-transpose weight is (C_in, C_out/groups, *kernel), so input_shape must have "
            f"C_in = weight.shape[0] = {weight_shape[0]} channels; got C_in={c_in}",
        )
    if c_in % groups:
        raise ParameterError(
            "groups", f"groups={groups} must divide the input channels C_in={c_in}"
        )
    kernel = weight_shape[2:]
    stride = per_axis(stride, d, "stride", minimum=1)
    dilation = per_axis(dilation, d, "dilation", minimum=1)
    if isinstance(padding, str):
        if padding != "valid":
            raise ParameterError(
                "padding",
                f"padding for conv-transpose must be an int, per-axis ints, per-axis "
                f"(before, after) pairs or 'valid'; got {padding!r}",
            )
        padding = 0
    pads = resolve_padding(padding, spatial, kernel, stride, dilation)
    base = [
        (m - 1) * s - pb - pa + dil * (k - 1) + 1
        for m, s, (pb, pa), dil, k in zip(spatial, stride, pads, dilation, kernel)
    ]
    if output_size is None:
        extra = per_axis(output_padding, d, "output_padding", minimum=0)
        for axis, (op, s, dil) in enumerate(zip(extra, stride, dilation)):
            if op >= max(s, dil):
                raise ParameterError(
                    "output_padding",
                    f"output_padding must be smaller than max(stride, dilation) = "
                    f"{max(s, dil)} along spatial axis {axis}; got {op}",
                )
    else:
        extra = _output_padding_for_size(output_size, base, stride)
    sizes = [b + op for b, op in zip(base, extra)]
    for axis, n in enumerate(sizes):
        if n < 1:
            raise ParameterError(
                "padding",
                f"conv-transpose output size along spatial axis {axis} would be {n} < 1; "
                f"reduce padding (pads {pads[axis]}) or enlarge the input",
            )
    geometry = conv_geometry(
        weight_shape,
        (weight_shape[1] * groups, *sizes),
        stride=stride,
        padding=pads,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    return truncate_output(geometry, spatial)


def _output_padding_for_size(
    output_size: Sequence[int], base: Sequence[int], stride: Sequence[int]
) -> tuple[int, ...]:
    """PyTorch's resolution of ``output_size`` into ``output_padding``."""
    d = len(base)
    size = check_shape(output_size, "output_size")
    if len(size) in (d + 1, d + 2):
        size = size[-d:]  # PyTorch accepts (N, C, *spatial) and (C, *spatial)
    if len(size) != d:
        raise ParameterError(
            "output_size", f"output_size must have {d} spatial sizes; got {tuple(output_size)}"
        )
    for axis, (n, low, s) in enumerate(zip(size, base, stride)):
        if not low <= n <= low + s - 1:
            raise ParameterError(
                "output_size",
                f"output_size {tuple(size)} is not reachable: along spatial axis {axis} "
                f"the output size must be between {low} and {low + s - 1} (stride {s})",
            )
    return tuple(n - low for n, low in zip(size, base))
