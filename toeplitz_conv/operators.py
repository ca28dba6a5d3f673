"""Conv layers as linear operators: :class:`Conv` and :class:`ConvTranspose`.

Both are :class:`pylops.LinearOperator` subclasses sharing one
:class:`~toeplitz_conv.block_matrix.LayerMatrix`: a conv's matrix :math:`A`,
and the conv-transpose layer as :math:`A^T`. ``Conv(...).H`` is a
:class:`ConvTranspose` and ``ConvTranspose(...).H`` a :class:`Conv`, built
on the same (cached) matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, DTypeLike
from pylops import LinearOperator

from .block_matrix import LayerMatrix
from .engines import check_engine, resolve_engine
from .geometry import Geometry, PaddingLike, conv_geometry, transpose_geometry
from .memory import check_budget
from .weights import as_weight, working_dtype

SPARSE_FORMATS = ("csr", "csc", "coo", "bsr")


class _ConvOperator(LinearOperator):
    """Shared machinery of :class:`Conv` and :class:`ConvTranspose`."""

    _transposed: bool
    output_padding: tuple[int, ...]

    def _setup(self, layer: LayerMatrix, bias: ArrayLike | None, engine: str = "auto") -> None:
        self._layer = layer
        self.engine = check_engine(engine)
        geometry = layer.geometry
        if self._transposed:
            self.input_shape, self.output_shape = geometry.output_shape, geometry.input_shape
        else:
            self.input_shape, self.output_shape = geometry.input_shape, geometry.output_shape
        self.bias = _as_bias(bias, self.output_shape[0], layer.dtype)
        rows, cols = geometry.matrix_shape
        super().__init__(
            dtype=layer.dtype,
            shape=(cols, rows) if self._transposed else (rows, cols),
            dims=self.input_shape,
            dimsd=self.output_shape,
            clinear=True,
            explicit=False,
            name=type(self).__name__,
        )

    @classmethod
    def _from_layer(cls, layer: LayerMatrix, bias: ArrayLike | None = None, engine: str = "auto"):
        operator = cls.__new__(cls)
        operator._setup(layer, bias, engine)
        return operator

    @property
    def geometry(self) -> Geometry:
        """Geometry of the forward conv (for a conv-transpose: the conv it is the adjoint of)."""
        return self._layer.geometry

    @property
    def nnz(self) -> int:
        """Structural nonzeros of the matrix, computed without assembling it."""
        return self._layer.nnz

    # --- products -----------------------------------------------------------------
    def _matrix(self) -> sp.sparray:
        csr = self._layer.csr()
        return csr.T if self._transposed else csr

    def _product(self, x: np.ndarray, adjoint: bool) -> np.ndarray:
        """``A x`` (or ``A^H x``) for flat ``x`` of shape ``(L,)`` or ``(L, B)``."""
        x = np.asarray(x)
        x = x.astype(working_dtype(self.dtype, x.dtype), copy=False)
        if x.ndim == 2 and x.shape[1] == 0:  # no columns: nothing to compute
            return np.zeros((self.shape[1] if adjoint else self.shape[0], 0), dtype=x.dtype)
        if resolve_engine(self.engine, self._layer) == "direct":
            shape = self.output_shape if adjoint else self.input_shape
            y = self._direct_product(_to_batch(x, shape), adjoint)
            return y.reshape(-1) if x.ndim == 1 else y.reshape(y.shape[0], -1).T
        matrix = self._matrix()
        if not adjoint:
            return matrix @ x
        if self.dtype.kind == "c":
            return np.conj(matrix.T @ np.conj(x))
        return matrix.T @ x

    def _direct_product(self, batch: np.ndarray, adjoint: bool) -> np.ndarray:
        """Matrix-free product on a batch ``(B, *shape)``; a conv-transpose is ``A^T``."""
        engine = self._layer.direct()
        if not self._transposed:
            return engine.adjoint(batch) if adjoint else engine.forward(batch)
        # A^T x = conj(A^H conj(x)) and (A^T)^H y = conj(A conj(y))
        apply = engine.forward if adjoint else engine.adjoint
        if batch.dtype.kind == "c":
            return np.conj(apply(np.conj(batch)))
        return apply(batch)

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self._product(x, adjoint=False)

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self._product(x, adjoint=True)

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        return self._product(X, adjoint=False)

    def _rmatmat(self, X: np.ndarray) -> np.ndarray:
        return self._product(X, adjoint=True)

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer without bias to a flat vector of length ``shape[1]``."""
        _check_length(x, self.shape[1], "x", "matvec", self.input_shape)
        return super().matvec(x)

    def rmatvec(self, x: np.ndarray) -> np.ndarray:
        """Apply the adjoint to a flat vector of length ``shape[0]``."""
        _check_length(x, self.shape[0], "x", "rmatvec", self.output_shape)
        return super().rmatvec(x)

    # --- explicit matrices -----------------------------------------------------------
    def tosparse(self, format: str = "csr", *, max_bytes: int | None = None) -> sp.sparray:
        """The layer's matrix as a scipy sparse array.

        Parameters
        ----------
        format : {"csr", "csc", "coo", "bsr"}
            Sparse format of the result.
        max_bytes : int, optional
            Memory budget for this call (default :func:`toeplitz_conv.memory_budget`).

        Returns
        -------
        scipy.sparse.sparray
            Shape ``self.shape``; rows and columns in NCHW flattening order.

        Raises
        ------
        MatrixTooLargeError
            When the matrix would exceed the budget (message gives nnz and bytes).
        """
        if format not in SPARSE_FORMATS:
            raise ValueError(f"format must be one of {SPARSE_FORMATS}; got {format!r}")
        csr = self._layer.csr(max_bytes=max_bytes)
        matrix = csr.T.tocsr() if self._transposed else csr
        if self._transposed and format == "csc":
            return csr.T.copy()
        return matrix if format == "csr" else matrix.asformat(format)

    def todense(self, *, max_bytes: int | None = None) -> np.ndarray:
        """The layer's matrix as a dense array (memory-guarded).

        Returns
        -------
        numpy.ndarray
            Shape ``self.shape``.
        """
        rows, cols = self.shape
        check_budget(
            rows * cols * self.dtype.itemsize,
            f"dense matrix of shape {self.shape}",
            max_bytes=max_bytes,
        )
        return self.tosparse(max_bytes=max_bytes).toarray()

    # --- the layer with bias ------------------------------------------------------------
    def apply(self, x: ArrayLike) -> np.ndarray:
        """The affine layer, as PyTorch's module computes it.

        Parameters
        ----------
        x : array_like
            Shape ``(N, *input_shape)`` or ``input_shape``.

        Returns
        -------
        numpy.ndarray
            Shape ``(N, *output_shape)`` or ``output_shape``, bias included.
        """
        x = np.asarray(x)
        batched = x.shape[1:] == self.input_shape and x.ndim == len(self.input_shape) + 1
        if not batched and x.shape != self.input_shape:
            raise ValueError(
                f"x must have shape (N, *{self.input_shape}) or {self.input_shape}; got {x.shape}"
            )
        x = x.astype(working_dtype(self.dtype, x.dtype), copy=False)
        batch = x.reshape(-1, *self.input_shape)
        if batch.shape[0] == 0:
            y = np.zeros((0, *self.output_shape), dtype=x.dtype)
        elif resolve_engine(self.engine, self._layer) == "direct":
            y = self._direct_product(batch, adjoint=False)
        else:
            y = (self._matrix() @ batch.reshape(batch.shape[0], -1).T).T
            y = y.reshape(-1, *self.output_shape)
        if self.bias is not None:
            y = y + self.bias.reshape(-1, *([1] * (len(self.output_shape) - 1)))
        return y if batched else y[0]

    def summary(self) -> str:
        """Shapes, nonzeros, density, CSR bytes, engine, block pattern and padding rules.

        Nothing is assembled to compute it.
        """
        from .summary import summary

        return summary(self)

    def __repr__(self) -> str:
        g = self.geometry
        c_in, c_out = self.input_shape[0], self.output_shape[0]
        extras = [f"kernel={g.kernel}", f"stride={g.stride}", f"pads={g.pads}"]
        if any(dil != 1 for dil in g.dilation):
            extras.append(f"dilation={g.dilation}")
        if g.groups != 1:
            extras.append(f"groups={g.groups}")
        if self._transposed and any(self.output_padding):
            extras.append(f"output_padding={self.output_padding}")
        extras.append(f"padding_mode={g.padding_mode!r}")
        return (
            f"{type(self).__name__}({c_in}->{c_out} channels, {self.input_shape} -> "
            f"{self.output_shape}, {', '.join(extras)}, dtype={self.dtype}, "
            f"bias={'yes' if self.bias is not None else 'no'})"
        )


class Conv(_ConvOperator):
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
    engine : {"auto", "sparse", "direct"}
        How products are computed: SpMV with the assembled matrix, or
        matrix-free (gather + one GEMM per group); ``"auto"`` uses the matrix
        when it is already assembled and small, else the matrix-free engine
        (the rule: :mod:`toeplitz_conv.engines`). All give the same results to
        rounding.

    Attributes
    ----------
    input_shape, output_shape : tuple of int
        Equal to ``dims`` and ``dimsd``.
    bias : numpy.ndarray or None
    geometry : Geometry
    """

    _transposed = False

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
    ) -> None:
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
        self._setup(LayerMatrix(geometry, weight, dtype), bias, engine)

    def _adjoint(self) -> ConvTranspose:
        return ConvTranspose._from_layer(self._layer.conj(), engine=self.engine)

    def _transpose(self) -> ConvTranspose:
        return ConvTranspose._from_layer(self._layer, engine=self.engine)


class ConvTranspose(_ConvOperator):
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
    stride, dilation, groups, padding_mode, dtype, engine
        As for :class:`Conv`.
    padding : int, tuple or tuple of pairs
        Cropped from the output (``"valid"`` means 0).
    output_padding : int or tuple of int
        Extra output size, ``< max(stride, dilation)`` per axis.
    output_size : tuple of int, optional
        Resolved into ``output_padding`` as PyTorch does (may include leading
        ``N, C``).
    """

    _transposed = True

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
    ) -> None:
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
        self._setup(LayerMatrix(geometry, weight, dtype), bias, engine)

    @property
    def output_padding(self) -> tuple[int, ...]:
        """Per-axis ``output_padding`` that makes up the stride's remainder."""
        return self.geometry.transpose_output_padding

    def _adjoint(self) -> Conv:
        return Conv._from_layer(self._layer.conj(), engine=self.engine)

    def _transpose(self) -> Conv:
        return Conv._from_layer(self._layer, engine=self.engine)


def _to_batch(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Flat ``(L,)`` or ``(L, B)`` to a batch ``(B, *shape)``."""
    if x.ndim == 1:
        return x.reshape(1, *shape)
    return np.ascontiguousarray(x.T).reshape(-1, *shape)


def _as_bias(bias: ArrayLike | None, channels: int, dtype: np.dtype) -> np.ndarray | None:
    if bias is None:
        return None
    array = np.asarray(bias)
    if array.dtype.kind not in "iufc":
        raise TypeError(f"bias must hold real or complex numbers; got dtype {array.dtype}")
    if array.dtype.kind == "c" and dtype.kind != "c":
        raise TypeError(f"bias is complex but the operator dtype {dtype} is real")
    if array.shape != (channels,):
        raise ValueError(
            f"bias must have shape ({channels},), one value per output channel; "
            f"got shape {array.shape}"
        )
    return array.astype(dtype)


def _check_length(
    x: np.ndarray, length: int, name: str, method: str, shape: tuple[int, ...]
) -> None:
    size = np.shape(x)
    if size not in ((length,), (length, 1)):
        raise ValueError(
            f"{method}: {name} must be a flat vector of length {length} "
            f"(= prod{shape}) or shape ({length}, 1); got shape {size}"
        )
