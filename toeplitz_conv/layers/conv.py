"""Conv layers as linear operators: :class:`Conv` and :class:`ConvTranspose`.

Both are views of one :class:`~toeplitz_conv.layers.layer.Layer` (see
:class:`~toeplitz_conv.layers.conv_operator.ConvOperator`): a conv's matrix :math:`A`,
and the conv-transpose layer as :math:`A^T`.
"""

from __future__ import annotations

from collections.abc import Sequence

from numpy.typing import ArrayLike, DTypeLike

from ..core.geometry import PaddingLike, conv_geometry
from ..core.transposition import transpose_geometry
from ..core.weights import as_weight
from ..engines import check_engine
from .conv_operator import ConvOperator
from .layer import Layer

__all__ = ["Conv", "ConvOperator", "ConvTranspose"]


class Conv(ConvOperator):
    """A conv layer as a block-sparse linear operator (PyTorch ``conv{1,2,3}d``).

    .. math::

        y_i = b_i + \\sum_{j} h_{ij} \\star x_j
        \\quad\\Longleftrightarrow\\quad
        y = b + A x, \\qquad A = \\sum_t W_t \\otimes S_t,

    where :math:`\\star` is cross-correlation and block :math:`(i, j)` of
    :math:`A` is the Toeplitz (zero padding), circulant (circular) or
    boundary-folded (reflect, replicate) matrix of kernel :math:`h_{ij}`.
    ``matvec`` computes :math:`A x` (no bias), ``rmatvec`` :math:`A^H y`,
    :meth:`apply` the affine layer.

    Parameters
    ----------
    weight : array_like
        ``(C_out, C_in/groups, *kernel)`` with 1, 2 or 3 kernel axes.
    input_shape : tuple of int
        ``(C_in, *spatial)`` of one sample.
    bias : array_like, optional
        ``(C_out,)``; used by :meth:`apply` only.
    stride, dilation : int or tuple of int
        Per spatial axis, ``>= 1``.
    padding : int, tuple, tuple of pairs, "valid" or "same"
        Symmetric per axis, or ``(before, after)`` pairs per axis (ONNX
        ``pads``); ``"same"`` as PyTorch, and ONNX ``SAME_UPPER`` with stride > 1.
    groups : int
        Block-diagonal channel groups; ``groups = C_in`` is depthwise.
    padding_mode : {"zeros", "circular", "reflect", "replicate"}
        The boundary rule, as PyTorch's ``padding_mode``.
    dtype : data-type, optional
        float32, float64, complex64 or complex128 (default: from ``weight``).
    engine : {"auto", "sparse", "direct", "numba"}
        How products are computed: SpMV with the assembled matrix, or
        matrix-free (gather + one GEMM per group; ``"numba"``: compiled loops
        over the taps, with the optional numba package); ``"auto"`` picks by
        the layer's size and channels per group (the rule:
        :mod:`toeplitz_conv.engines`). All give the same results to rounding.
    name : str, optional
        The operator's name, as pylops operators have (default the class name).

    Notes
    -----
    The weight (and bias) are copied: editing the arrays passed in later does not
    change the operator. Weights must be finite (an infinite tap times a zero
    pad has no value the matrix and a matrix-free product agree on).

    Attributes
    ----------
    input_shape, output_shape : tuple of int
        Equal to ``dims`` and ``dimsd``. The read-only properties (``weight``,
        ``bias``, ``geometry``, ``layer``, ``nnz``, ``engine_in_use``, ...) are
        :class:`ConvOperator`'s.
    """

    def __init__(
        self,
        weight: ArrayLike,
        input_shape: Sequence[int],
        *,
        bias: ArrayLike | None = None,
        stride: int | Sequence[int] = 1,
        padding: PaddingLike = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        dtype: DTypeLike | None = None,
        engine: str = "auto",
        name: str | None = None,
    ) -> None:
        check_engine(engine)
        weight, dtype = as_weight(weight, dtype)
        geometry = conv_geometry(
            weight.shape,
            input_shape,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            padding_mode=padding_mode,
        )
        layer = Layer(geometry, weight, dtype)
        self._init(layer, transposed=False, bias=bias, engine=engine, name=name)

    def with_weight(
        self,
        weight: ArrayLike,
        *,
        input_shape: Sequence[int] | None = None,
        dtype: DTypeLike | None = None,
        **geometry,
    ) -> Conv:
        """A new conv of this one's geometry (and ``dtype``) with another weight: no bias,
        its own layer and caches. ``input_shape`` and the geometry's keyword arguments
        (``stride``, ``padding``, ``dilation``, ``groups``, ``padding_mode``) may be
        changed."""
        shape = self.input_shape if input_shape is None else input_shape
        kwargs = {**self.geometry.layer_kwargs(), **geometry}
        return Conv(weight, shape, dtype=self.dtype if dtype is None else dtype, **kwargs)

    def _adjoint(self) -> ConvTranspose:
        return self._view(ConvTranspose, transposed=True, conjugated=not self._conjugated)

    def _transpose(self) -> ConvTranspose:
        return self._view(ConvTranspose, transposed=True, conjugated=self._conjugated)


class ConvTranspose(ConvOperator):
    """A conv-transpose layer (PyTorch ``conv_transpose{1,2,3}d``): the adjoint of a conv.

    With :math:`A` the matrix of the conv that maps ``(C_out, *n)`` to
    ``(C_in, *m)`` with the same weight and parameters,

    .. math::

        y = b + A^T x, \\qquad
        n = (m - 1)\\,s - p_b - p_a + \\delta (k - 1) + \\text{output\\_padding} + 1.

    For ``padding_mode`` other than ``"zeros"`` (which PyTorch's conv-transpose
    lacks) this is the exact adjoint of the conv with that mode: what the
    boundary rule read is folded back to where it was read from.

    Parameters
    ----------
    weight : array_like
        ``(C_in, C_out/groups, *kernel)``, PyTorch's conv-transpose layout.
    input_shape : tuple of int
        ``(C_in, *m)`` of one sample.
    bias : array_like, optional
        ``(C_out,)``; used by :meth:`apply` only.
    stride, dilation, groups, padding_mode, dtype, engine, name
        As for :class:`Conv`.
    padding : int, tuple or tuple of pairs
        Cropped from the output (``"valid"`` means 0).
    output_padding : int or tuple of int
        Extra output size, ``< max(stride, dilation)`` per axis.
    output_size : tuple of int, optional
        Resolved into ``output_padding`` as PyTorch does (may include leading
        ``N, C``).
    """

    def __init__(
        self,
        weight: ArrayLike,
        input_shape: Sequence[int],
        *,
        bias: ArrayLike | None = None,
        stride: int | Sequence[int] = 1,
        padding: PaddingLike = 0,
        output_padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        output_size: Sequence[int] | None = None,
        dtype: DTypeLike | None = None,
        engine: str = "auto",
        name: str | None = None,
    ) -> None:
        check_engine(engine)
        weight, dtype = as_weight(weight, dtype)
        geometry = transpose_geometry(
            weight.shape,
            input_shape,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
            padding_mode=padding_mode,
            output_size=output_size,
        )
        layer = Layer(geometry, weight, dtype)
        self._init(layer, transposed=True, bias=bias, engine=engine, name=name)

    def with_weight(
        self,
        weight: ArrayLike,
        *,
        input_shape: Sequence[int] | None = None,
        dtype: DTypeLike | None = None,
        **geometry,
    ) -> ConvTranspose:
        """A new conv-transpose of this one's geometry (and ``dtype``) with another
        weight: no bias, its own layer and caches. ``input_shape`` and the geometry's
        keyword arguments may be changed (as :meth:`Conv.with_weight`); where the axes
        change (not only ``groups``), ``output_padding`` is that of the conv behind the
        new geometry, else this one's."""
        shape = self.input_shape if input_shape is None else input_shape
        kwargs = {**self.geometry.layer_kwargs(), **geometry}
        dtype = self.dtype if dtype is None else dtype
        behind = self.geometry
        if set(geometry) - {"groups"}:  # the conv on this output that the new axes describe
            behind = Conv(weight, self.geometry.input_shape, dtype=dtype, **kwargs).geometry
        return ConvTranspose(
            weight, shape, output_padding=behind.transpose_output_padding, dtype=dtype, **kwargs
        )

    @property
    def output_padding(self) -> tuple[int, ...]:
        """Per-axis ``output_padding`` that makes up the stride's remainder."""
        return self.geometry.transpose_output_padding

    def _adjoint(self) -> Conv:
        return self._view(Conv, transposed=False, conjugated=not self._conjugated)

    def _transpose(self) -> Conv:
        return self._view(Conv, transposed=False, conjugated=self._conjugated)
