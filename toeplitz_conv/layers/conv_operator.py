"""The operator base class: :class:`ConvOperator`, what :class:`~toeplitz_conv.Conv` and
:class:`~toeplitz_conv.ConvTranspose` share.

Every operator is a view of one :class:`~toeplitz_conv.layers.layer.Layer` (the conv's
matrix :math:`A`) as :math:`A`, :math:`A^T` (a conv-transpose layer),
:math:`A^H` or :math:`\\bar A`: ``Conv(...).H`` is a :class:`ConvTranspose` and
``ConvTranspose(...).H`` a :class:`Conv`, on the same layer and its caches.
Products of all four come from the engine's :math:`A x` and :math:`A^H y`:

.. math::

    A^T x = \\overline{A^H \\bar x}, \\qquad \\bar A x = \\overline{A \\bar x}.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike
from pylops import LinearOperator

from ..core.block_matrix import SPARSE_FORMATS, assembly_workspace_nbytes, sparse_nbytes
from ..core.errors import ParameterError, ParameterTypeError
from ..core.geometry import Geometry
from ..core.memory import check_budget
from ..core.weights import as_numeric, working_dtype
from ..engines import check_engine, resolve_engine
from .layer import Layer

# products whose input and output pass this many bytes are checked against the memory
# budget before anything is allocated (a layer of 4e18 outputs is refused, not attempted)
CHECKED_PRODUCT_BYTES = 1 << 27

__all__ = ["ConvOperator"]


class ConvOperator(LinearOperator):
    """What :class:`Conv` and :class:`ConvTranspose` share: a view of a :class:`Layer`.

    Not built directly: construct a :class:`Conv` or a :class:`ConvTranspose`.
    Its matrix is :math:`A` (a conv) or :math:`A^T` (a conv-transpose), or their
    conjugates for the ``.H`` of a complex layer.
    """

    def _init(
        self,
        layer: Layer,
        *,
        transposed: bool,
        conjugated: bool = False,
        bias: ArrayLike | None = None,
        engine: str = "auto",
        name: str | None = None,
    ) -> None:
        self._layer = layer
        self._transposed = transposed
        self._conjugated = conjugated and layer.dtype.kind == "c"
        self._engine = check_engine(engine)
        self._engine_in_use = resolve_engine(engine, layer.geometry)  # the layer is immutable
        geometry = layer.geometry
        inputs, outputs = geometry.input_shape, geometry.output_shape
        self.input_shape, self.output_shape = (outputs, inputs) if transposed else (inputs, outputs)
        self._bias = _as_bias(bias, self.output_shape[0], layer.dtype)
        rows, cols = geometry.matrix_shape
        super().__init__(
            dtype=layer.dtype,
            shape=(cols, rows) if transposed else (rows, cols),
            dims=self.input_shape,
            dimsd=self.output_shape,
            clinear=True,
            explicit=False,
            name=type(self).__name__ if name is None else _as_name(name),
        )

    def _view(
        self,
        cls: type,
        *,
        transposed: bool,
        conjugated: bool,
        engine: str | None = None,
        layer: Layer | None = None,
    ):
        """Another operator on this layer, or on ``layer`` (no bias: ``.H``, ``.T``,
        :meth:`with_engine`, :meth:`rescaled`)."""
        view = cls.__new__(cls)
        view._init(
            self._layer if layer is None else layer,
            transposed=transposed,
            conjugated=conjugated,
            engine=self._engine if engine is None else engine,
        )
        return view

    # --- public, read-only state --------------------------------------------------------
    @property
    def layer(self) -> Layer:
        """The :class:`~toeplitz_conv.layers.layer.Layer` this operator is a view of."""
        return self._layer

    @property
    def geometry(self) -> Geometry:
        """Geometry of the forward conv (for a conv-transpose: the conv it is the adjoint of)."""
        return self._layer.geometry

    @property
    def weight(self) -> np.ndarray:
        """The weight, read-only, in this layer's own layout (conjugated for a ``.H``).

        ``(C_out, C_in/groups, *kernel)`` for a :class:`Conv`, ``(C_in, C_out/groups,
        *kernel)`` for a :class:`ConvTranspose` (the same array as its conv's).
        """
        if not self._conjugated:
            return self._layer.weight
        weight = np.conj(self._layer.weight)
        weight.flags.writeable = False
        return weight

    @property
    def bias(self) -> np.ndarray | None:
        """``(C_out,)`` added by :meth:`apply` (a read-only copy), or ``None``."""
        return self._bias

    @property
    def transposed(self) -> bool:
        """Whether the matrix is the conv's transposed (a conv-transpose layer)."""
        return self._transposed

    @property
    def conjugated(self) -> bool:
        """Whether the matrix is conjugated (the ``.H`` of a complex layer)."""
        return self._conjugated

    @property
    def engine(self) -> str:
        """The engine asked for: ``"auto"``, ``"sparse"``, ``"direct"`` or ``"numba"``."""
        return self._engine

    @property
    def engine_in_use(self) -> str:
        """The engine products run on (what ``"auto"`` stands for on this layer)."""
        return self._engine_in_use

    @property
    def nnz(self) -> int:
        """Structural nonzeros of the matrix, in closed form (nothing is built)."""
        return self._layer.nnz

    @property
    def nbytes(self) -> int:
        """Bytes of the matrix in CSR form (see :meth:`sparse_nbytes` for the others)."""
        return self.sparse_nbytes("csr")

    def sparse_nbytes(self, format: str = "csr") -> int:
        """Bytes :meth:`tosparse` returns in ``format``, in closed form."""
        return sparse_nbytes(
            self.geometry, self.dtype, _check_format(format), transposed=self._transposed
        )

    def with_engine(self, engine: str) -> ConvOperator:
        """The same layer (and caches) computed by another engine (no bias)."""
        return self._view(
            type(self), transposed=self._transposed, conjugated=self._conjugated, engine=engine
        )

    def rescaled(self, exponent: int) -> ConvOperator:
        """The same view (transposition, conjugation, engine; no bias) of a new layer whose
        weight is this one's times :math:`2^e`: exact in floating point (barring
        subnormals), with caches of its own, kept by this layer
        (:meth:`~toeplitz_conv.layers.layer.Layer.rescaled`). The solvers use it to
        bring extreme magnitudes into range."""
        return self._view(
            type(self),
            transposed=self._transposed,
            conjugated=self._conjugated,
            layer=self._layer.rescaled(exponent),
        )

    # --- products: one entry point --------------------------------------------------------
    def _apply_batch(self, batch: np.ndarray, adjoint: bool) -> np.ndarray:
        """This operator's matrix (``adjoint``: its adjoint) on a batch ``(B, *shape)``."""
        if batch.shape[0] == 0:
            shape = self.input_shape if adjoint else self.output_shape
            return np.zeros((0, *shape), dtype=batch.dtype)
        vectors = batch.shape[0] * (self.shape[0] + self.shape[1]) * batch.dtype.itemsize
        if vectors > CHECKED_PRODUCT_BYTES:  # small products skip the look at free memory
            check_budget(vectors, f"input and output of {batch.shape[0]} product(s) {self.shape}")
        engine = self._layer.engine(self._engine_in_use)
        run = engine.forward if adjoint == self._transposed else engine.adjoint
        if self._transposed != self._conjugated and self.dtype.kind == "c":
            return np.conj(run(np.conj(batch)))  # A^T x = conj(A^H conj x), conj(A) likewise
        return run(batch)

    def _flat_product(self, x: np.ndarray, adjoint: bool) -> np.ndarray:
        """Flat ``(L,)`` or ``(L, B)`` through :meth:`_apply_batch`."""
        x = x.astype(working_dtype(self.dtype, x.dtype), copy=False)
        shape = self.output_shape if adjoint else self.input_shape
        batch = x.reshape(1, *shape) if x.ndim == 1 else np.ascontiguousarray(x.T)
        y = self._apply_batch(batch.reshape(-1, *shape), adjoint)
        length = self.shape[1] if adjoint else self.shape[0]
        return y.reshape(-1) if x.ndim == 1 else y.reshape(y.shape[0], length).T

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self._flat_product(x, adjoint=False)

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self._flat_product(x, adjoint=True)

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        return self._flat_product(X, adjoint=False)

    def _rmatmat(self, X: np.ndarray) -> np.ndarray:
        return self._flat_product(X, adjoint=True)

    def matvec(self, x: ArrayLike) -> np.ndarray:
        """Apply the layer without bias to a flat vector of length ``shape[1]``."""
        x = as_numeric(x, "x")
        _check_length(x, self.shape[1], "matvec", self.input_shape)
        return super().matvec(x)

    def rmatvec(self, x: ArrayLike) -> np.ndarray:
        """Apply the adjoint to a flat vector of length ``shape[0]``."""
        x = as_numeric(x, "x")
        _check_length(x, self.shape[0], "rmatvec", self.output_shape)
        return super().rmatvec(x)

    def matmat(self, X: ArrayLike) -> np.ndarray:
        """Apply the layer without bias to the columns of ``X``, ``(shape[1], B)``."""
        return super().matmat(_as_columns(X, self.shape[1], "matmat"))

    def rmatmat(self, X: ArrayLike) -> np.ndarray:
        """Apply the adjoint to the columns of ``X``, ``(shape[0], B)``."""
        return super().rmatmat(_as_columns(X, self.shape[0], "rmatmat"))

    def dot(self, x):
        """``self @ x``: a product with an array (or array-like), or a composed operator.

        Besides pylops' layouts (flat, ``(shape[1], B)`` columns, ``input_shape``), a
        batch of images ``(B, *input_shape)`` gives ``(B, *output_shape)``."""
        if isinstance(x, (LinearOperator, spla.LinearOperator)) or np.isscalar(x):
            return super().dot(x)
        x = as_numeric(x, "x")
        if x.ndim == len(self.input_shape) + 1:
            if x.shape[1:] != tuple(self.input_shape):
                raise ParameterError(
                    "x",
                    f"a batch must be (B, {', '.join(map(str, self.input_shape))}); got shape "
                    f"{x.shape}",
                )
            batch = x.astype(working_dtype(self.dtype, x.dtype), copy=False)
            return self._apply_batch(np.ascontiguousarray(batch), adjoint=False)
        return super().dot(x)

    # --- explicit matrices ----------------------------------------------------------------
    def tosparse(self, format: str = "csr", *, max_bytes: int | None = None) -> sp.sparray:
        """The layer's matrix as a new scipy sparse array that belongs to the caller.

        Each call assembles a fresh matrix (about as fast as copying one: it is built
        at close to memory speed), so whatever is done to it (``resize``,
        ``setdiag``, in-place arithmetic, new ``.data``) never reaches the
        operator. Only the format asked for is built: a conv-transpose's CSR
        matrix, or a conv's CSC matrix, is assembled directly, with no conversion.

        Parameters
        ----------
        format : {"csr", "csc", "coo", "bsr"}
            Sparse format of the result (``bsr`` with 1x1 blocks: use
            ``.tobsr(blocksize)`` for others).
        max_bytes : int, optional
            Memory budget for this call (default :func:`toeplitz_conv.memory_budget`),
            compared with the result's bytes plus the assembly's workspace.

        Returns
        -------
        scipy.sparse.sparray
            Shape ``self.shape``; rows and columns in NCHW flattening order.

        Raises
        ------
        MatrixTooLargeError
            Before any allocation, when the matrix would exceed the budget.
        """
        transposed = self._transposed != (_check_format(format) == "csc")
        workspace = assembly_workspace_nbytes(self.geometry, transposed=transposed)
        check_budget(
            self.sparse_nbytes(format) + workspace, self._describe(format), max_bytes=max_bytes
        )
        if format == "csc":  # the CSR matrix of the transpose, seen by columns
            return self._assemble(transposed=transposed).T
        matrix = self._assemble(transposed=transposed)
        if format == "coo":
            return matrix.tocoo(copy=False)
        if format == "bsr":
            blocks = matrix.data.reshape(-1, 1, 1)
            return sp.bsr_array((blocks, matrix.indices, matrix.indptr), shape=matrix.shape)
        return matrix

    def _assemble(self, transposed: bool) -> sp.csr_array:
        return self._layer.assemble(transposed=transposed, conjugate=self._conjugated)

    def _describe(self, format: str) -> str:
        return f"{format.upper()} matrix of shape {self.shape} with {self.nnz} nonzeros"

    def todense(self, *, max_bytes: int | None = None) -> np.ndarray:
        """The layer's matrix as a new dense array (memory-guarded: the dense array,
        the sparse matrix it is filled from and the assembly's workspace).

        Returns
        -------
        numpy.ndarray
            Shape ``self.shape``.
        """
        rows, cols = self.shape
        dense = rows * cols * self.dtype.itemsize
        workspace = assembly_workspace_nbytes(self.geometry, transposed=self._transposed)
        needed = dense + self.sparse_nbytes("csr") + workspace
        check_budget(needed, f"dense matrix of shape {self.shape}", max_bytes=max_bytes)
        return self._assemble(transposed=self._transposed).toarray()

    # --- the layer with bias --------------------------------------------------------------
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
        x = as_numeric(x, "x")
        batched = x.shape[1:] == self.input_shape and x.ndim == len(self.input_shape) + 1
        if not batched and x.shape != self.input_shape:
            raise ParameterError(
                "x",
                f"x must have shape (N, *{self.input_shape}) or {self.input_shape}; got {x.shape}",
            )
        x = x.astype(working_dtype(self.dtype, x.dtype), copy=False)
        y = self._apply_batch(x.reshape(-1, *self.input_shape), adjoint=False)
        if self._bias is not None:
            y = y + self._bias.reshape(-1, *([1] * (len(self.output_shape) - 1)))
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
        if self._transposed and any(g.transpose_output_padding):
            extras.append(f"output_padding={g.transpose_output_padding}")
        extras.append(f"padding_mode={g.padding_mode!r}")
        if self._conjugated:
            extras.append("conjugated")
        return (
            f"{type(self).__name__}({c_in}->{c_out} channels, {self.input_shape} -> "
            f"{self.output_shape}, {', '.join(extras)}, dtype={self.dtype}, "
            f"bias={'yes' if self._bias is not None else 'no'})"
        )


def _check_format(format: object) -> str:
    if format not in SPARSE_FORMATS:
        raise ParameterError("format", f"format must be one of {SPARSE_FORMATS}; got {format!r}")
    return format


def _as_name(name: object) -> str:
    if not isinstance(name, str):
        raise ParameterTypeError("name", f"name must be a str; got {name!r}")
    return name


def _as_bias(bias: ArrayLike | None, channels: int, dtype: np.dtype) -> np.ndarray | None:
    if bias is None:
        return None
    array = as_numeric(bias, "bias")
    if array.dtype.kind == "c" and dtype.kind != "c":
        raise ParameterTypeError("bias", f"bias is complex but the operator dtype {dtype} is real")
    if array.shape != (channels,):
        raise ParameterError(
            "bias",
            f"bias must have shape ({channels},), one value per output channel; "
            f"got shape {array.shape}",
        )
    array = array.astype(dtype)  # a copy: the caller's array stays the caller's
    if not np.all(np.isfinite(array)):
        raise ParameterError("bias", "bias must be finite; it has infinite or NaN entries")
    array.flags.writeable = False
    return array


def _check_length(x: np.ndarray, length: int, method: str, shape: tuple[int, ...]) -> None:
    if x.shape not in ((length,), (length, 1)):
        raise ParameterError(
            "x",
            f"{method}: x must be a flat vector of length {length} "
            f"(= prod{shape}) or shape ({length}, 1); got shape {x.shape}",
        )


def _as_columns(X: ArrayLike, length: int, method: str) -> np.ndarray:
    X = as_numeric(X, "X")
    if X.ndim != 2 or X.shape[0] != length:
        raise ParameterError("X", f"{method}: X must have shape ({length}, B); got shape {X.shape}")
    return X
