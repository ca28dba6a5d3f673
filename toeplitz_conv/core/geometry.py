"""Geometry of a conv layer: validated shapes, paddings and per-axis index maps.

A :class:`Geometry` is the single source of truth for every shape in the package.
Everything else (scalar blocks, the block matrix, the operators, the engines)
reads its sizes and index maps from here.

For one spatial axis with input size :math:`n`, kernel size :math:`k`, stride
:math:`s`, dilation :math:`\\delta` and pads :math:`(p_b, p_a)`, output position
:math:`o` reads, through tap :math:`t`, the padded position

.. math::

    q(o, t) = o\\,s + t\\,\\delta - p_b, \\qquad
    m = \\left\\lfloor \\frac{n + p_b + p_a - \\delta (k - 1) - 1}{s} \\right\\rfloor + 1,

and the padding mode says which input sample (if any) a padded position is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from .errors import ParameterError, ParameterTypeError
from .padding import (
    PaddingLike,
    PaddingMode,
    axis_nnz,
    check_int,
    output_size,
    resolve_padding,
)
from .padding import (
    padding_mode as mode_named,
)

__all__ = [
    "Geometry",
    "PaddingLike",
    "check_shape",
    "check_shapes",
    "conv_geometry",
    "per_axis",
    "truncate_output",
]


@dataclass(frozen=True)
class Geometry:
    """Validated description of a conv layer acting on one sample.

    Build it with :func:`conv_geometry` (or
    :func:`~toeplitz_conv.core.transposition.transpose_geometry`), which
    validate every parameter; the fields are then fully resolved.

    Attributes
    ----------
    out_channels, in_channels, groups : int
        Channel counts of the convolution (not of a transposed layer).
    kernel, stride, dilation : tuple of int
        Per spatial axis.
    pads : tuple of (int, int)
        ``(before, after)`` padding per spatial axis.
    padding_mode : str
        One of ``"zeros"``, ``"circular"``, ``"reflect"``, ``"replicate"``.
    input_spatial, output_spatial : tuple of int
        Spatial sizes :math:`n` and :math:`m` per axis.
    """

    out_channels: int
    in_channels: int
    groups: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    padding_mode: str
    input_spatial: tuple[int, ...]
    output_spatial: tuple[int, ...]

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions ``d``."""
        return len(self.kernel)

    @property
    def in_per_group(self) -> int:
        """Input channels seen by each output channel, ``C_in / groups``."""
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        """Output channels of each group, ``C_out / groups``."""
        return self.out_channels // self.groups

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """PyTorch weight layout ``(C_out, C_in/groups, *kernel)``."""
        return (self.out_channels, self.in_per_group, *self.kernel)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(C_in, *input_spatial)``."""
        return (self.in_channels, *self.input_spatial)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """``(C_out, *output_spatial)``."""
        return (self.out_channels, *self.output_spatial)

    @property
    def input_pixels(self) -> int:
        """Number of spatial positions of one input channel, :math:`N`."""
        return math.prod(self.input_spatial)

    @property
    def output_pixels(self) -> int:
        """Number of spatial positions of one output channel, :math:`M`."""
        return math.prod(self.output_spatial)

    @property
    def taps(self) -> int:
        """Number of kernel taps, :math:`K = \\prod_i k_i`."""
        return math.prod(self.kernel)

    @property
    def matrix_shape(self) -> tuple[int, int]:
        """Shape ``(C_out M, C_in N)`` of the layer's matrix."""
        return (self.out_channels * self.output_pixels, self.in_channels * self.input_pixels)

    def layer_kwargs(self) -> dict:
        """``stride``, ``padding`` (as pairs), ``dilation``, ``groups`` and ``padding_mode``:
        the keyword arguments that rebuild this layer's ``Conv`` or ``ConvTranspose``."""
        return dict(
            stride=self.stride,
            padding=self.pads,
            dilation=self.dilation,
            groups=self.groups,
            padding_mode=self.padding_mode,
        )

    @property
    def transpose_output_padding(self) -> tuple[int, ...]:
        """``output_padding`` of the conv-transpose that is this conv's adjoint.

        .. math::

            n - \\left((m - 1)\\,s - p_b - p_a + \\delta (k - 1) + 1\\right)

        per axis: the input samples beyond the last stride that no output reads
        (or, for a truncated geometry, beyond the outputs kept).
        """
        return tuple(
            n - ((m - 1) * s - pb - pa + dil * (k - 1) + 1)
            for n, m, s, (pb, pa), dil, k in zip(
                self.input_spatial,
                self.output_spatial,
                self.stride,
                self.pads,
                self.dilation,
                self.kernel,
            )
        )

    def axis_index_map(self, axis: int) -> np.ndarray:
        """Input index read by each (output position, tap) along one axis.

        Parameters
        ----------
        axis : int
            Spatial axis, ``0 <= axis < ndim``.

        Returns
        -------
        numpy.ndarray
            Integer array of shape ``(m, k)``: the input position read by output
            ``o`` through tap ``t``, or ``-1`` where it reads a zero pad.
        """
        n, k = self.input_spatial[axis], self.kernel[axis]
        s, dil = self.stride[axis], self.dilation[axis]
        before = self.pads[axis][0]
        m = self.output_spatial[axis]
        q = np.arange(m)[:, None] * s + np.arange(k)[None, :] * dil - before
        return self.mode.fold(q, n)

    @property
    def mode(self) -> PaddingMode:
        """The padding mode's entry in :data:`toeplitz_conv.core.padding.PADDING_MODES`."""
        return mode_named(self.padding_mode)

    def axis_pattern_size(self, axis: int) -> int:
        """Distinct (output position, input position) pairs along one axis (closed form)."""
        return axis_nnz(
            self.output_spatial[axis],
            self.stride[axis],
            self.kernel[axis],
            self.dilation[axis],
            self.pads[axis][0],
            self.input_spatial[axis],
            self.mode,
        )

    @cached_property
    def scalar_pattern_size(self) -> int:
        """Structural nonzeros of one scalar block (product over axes)."""
        return math.prod(self.axis_pattern_size(a) for a in range(self.ndim))

    @property
    def nnz(self) -> int:
        """Structural nonzeros of the whole block matrix, without index arrays."""
        return self.out_channels * self.in_per_group * self.scalar_pattern_size


def conv_geometry(
    weight_shape: Sequence[int],
    input_shape: Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: PaddingLike = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Geometry:
    """Validate a conv layer's parameters and resolve its geometry.

    Parameters
    ----------
    weight_shape : sequence of int
        ``(C_out, C_in/groups, *kernel)``, PyTorch's layout.
    input_shape : sequence of int
        ``(C_in, *spatial)`` for one sample, with 1, 2 or 3 spatial axes.
    stride, dilation : int or sequence of int
        Per axis, each ``>= 1``.
    padding : int, str or sequence
        ``int``; per-axis ints (symmetric); per-axis ``(before, after)`` pairs
        (asymmetric, as ONNX ``pads``); ``"valid"``; or ``"same"``. ``"same"``
        splits the total :math:`\\delta (k-1)` as PyTorch does (``total // 2``
        before); with stride > 1 it follows ONNX ``SAME_UPPER``
        (output ``ceil(n / s)``, the extra pad after).
    groups : int
        Divides both ``C_in`` and ``C_out``.
    padding_mode : str
        ``"zeros"``, ``"circular"``, ``"reflect"`` or ``"replicate"``.

    Returns
    -------
    Geometry

    Raises
    ------
    TypeError, ValueError
        Naming the parameter and the allowed values.
    """
    weight_shape, input_shape = check_shapes(weight_shape, input_shape, "C_out, C_in/groups")
    d = len(weight_shape) - 2
    c_out, c_in_per_group, kernel = weight_shape[0], weight_shape[1], weight_shape[2:]
    c_in, spatial = input_shape[0], input_shape[1:]
    groups = check_int(groups, "groups", minimum=1)
    _check_groups(c_in, c_out, c_in_per_group, groups)
    mode = mode_named(padding_mode)
    stride = per_axis(stride, d, "stride", minimum=1)
    dilation = per_axis(dilation, d, "dilation", minimum=1)
    pads = resolve_padding(padding, spatial, kernel, stride, dilation)
    mode.check_pads(pads, spatial)
    axes = zip(spatial, kernel, stride, dilation, pads)
    output = tuple(
        output_size(n, k, s, dil, pb + pa, axis)
        for axis, (n, k, s, dil, (pb, pa)) in enumerate(axes)
    )
    _check_vector_length(c_out, output, "padding" if any(map(any, pads)) else "input_shape")
    _check_vector_length(c_in, spatial, "input_shape")
    return Geometry(
        out_channels=c_out,
        in_channels=c_in,
        groups=groups,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        pads=pads,
        padding_mode=padding_mode,
        input_spatial=spatial,
        output_spatial=output,
    )


def truncate_output(geometry: Geometry, output_spatial: Sequence[int]) -> Geometry:
    """The same geometry keeping only the first ``output_spatial`` outputs per axis.

    Used by conv-transpose when ``output_padding >= stride``: the transposed
    layer then sees an input larger than the conv needs for its outputs.
    """
    output_spatial = tuple(int(m) for m in output_spatial)
    if any(m > full for m, full in zip(output_spatial, geometry.output_spatial)):
        raise ParameterError(
            "output_spatial", "output_spatial cannot exceed the geometry's own output size"
        )
    return replace(geometry, output_spatial=output_spatial)


MAX_VECTOR_LENGTH = 2**62  # entries of an input or output vector that int64 indices reach


def _check_vector_length(channels: int, spatial: Sequence[int], parameter: str) -> None:
    length = channels * math.prod(spatial)
    if length > MAX_VECTOR_LENGTH:
        sizes = " x ".join(map(str, (channels, *spatial)))
        raise ParameterError(
            parameter,
            f"a vector of this layer would have {sizes} = {length:.3g} entries, more than the "
            f"2^62 an index can address; reduce {parameter}",
        )


def _check_groups(c_in: int, c_out: int, c_in_per_group: int, groups: int) -> None:
    if c_in % groups:
        raise ParameterError(
            "groups", f"groups={groups} must divide the input channels C_in={c_in}"
        )
    if c_out % groups:
        raise ParameterError(
            "groups", f"groups={groups} must divide the output channels C_out={c_out}"
        )
    if c_in != c_in_per_group * groups:
        raise ParameterError(
            "input_shape",
            f"weight shape says C_in/groups = {c_in_per_group}, so input_shape must have "
            f"C_in = {c_in_per_group * groups} channels with groups={groups}; got C_in={c_in}",
        )


def check_shapes(
    weight_shape: Sequence[int], input_shape: Sequence[int], weight_layout: str
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validate a weight shape ``(weight_layout, *kernel)`` against ``(C_in, *spatial)``."""
    weight_shape = tuple(check_int(v, "weight", minimum=1) for v in weight_shape)
    input_shape = check_shape(input_shape, "input_shape")
    if len(weight_shape) < 3 or len(weight_shape) > 5:
        raise ParameterError(
            "weight",
            f"weight must have shape ({weight_layout}, *kernel) with 1, 2 or 3 kernel "
            f"axes; got shape {weight_shape}",
        )
    d = len(weight_shape) - 2
    if len(input_shape) != d + 1:
        raise ParameterError(
            "input_shape",
            f"input_shape must be (C_in, *spatial) with {d} spatial axes to match the "
            f"{d}-D kernel of weight shape {weight_shape}; got input_shape {input_shape}",
        )
    return weight_shape, input_shape


def check_shape(shape: Sequence[int], name: str) -> tuple[int, ...]:
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
        raise ParameterTypeError(
            name, f"{name} must be a tuple of ints (C, *spatial); got {shape!r}"
        )
    return tuple(check_int(v, name, minimum=1) for v in shape)


def per_axis(value: int | Sequence[int], d: int, name: str, *, minimum: int) -> tuple[int, ...]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != d:
            raise ParameterError(name, f"{name} must be an int or {d} per-axis ints; got {value!r}")
        return tuple(check_int(v, name, minimum=minimum) for v in value)
    return (check_int(value, name, minimum=minimum),) * d
