"""The sparse engine: SpMV with the layer's assembled CSR matrix.

.. math::

    A x = \\texttt{csr} \\cdot x, \\qquad
    A^H y = \\overline{\\texttt{csr}^T \\cdot \\bar y}

(scipy multiplies by the transpose of a CSR matrix without building it; the
conjugations only for complex layers). The matrix is assembled once, after a
memory-budget check, and kept read-only: it is never handed to the user
(:meth:`toeplitz_conv.ConvOperator.tosparse` assembles a matrix of the user's own).
"""

from __future__ import annotations

import numpy as np

from ..core.block_matrix import assemble_csr, assembly_workspace_nbytes, sparse_nbytes
from ..core.geometry import Geometry
from ..core.memory import check_budget

__all__ = ["SparseEngine"]


class SparseEngine:
    """Products with the assembled CSR matrix of one layer.

    Parameters
    ----------
    geometry : Geometry
    weight : numpy.ndarray
        ``geometry.weight_shape``.
    dtype : numpy.dtype
        Value type of the matrix.
    max_bytes : int, optional
        Memory budget for the assembly (default :func:`toeplitz_conv.memory_budget`).

    Raises
    ------
    MatrixTooLargeError
        Before any allocation, when the matrix would exceed the budget.
    """

    name = "sparse"

    def __init__(
        self, geometry: Geometry, weight: np.ndarray, dtype: np.dtype, max_bytes: int | None = None
    ) -> None:
        self.geometry = geometry
        check_budget(
            sparse_nbytes(geometry, dtype) + assembly_workspace_nbytes(geometry),
            f"CSR matrix of shape {geometry.matrix_shape} with {geometry.nnz} nonzeros",
            max_bytes=max_bytes,
        )
        matrix = assemble_csr(geometry, weight, dtype)
        for array in (matrix.data, matrix.indices, matrix.indptr):
            array.flags.writeable = False
        self.matrix = matrix
        self._complex = np.dtype(dtype).kind == "c"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """:math:`A x` for a batch ``(B, C_in, *input_spatial)``."""
        return self._multiply(self.matrix, x, self.geometry.output_shape)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """:math:`A^H y` for a batch ``(B, C_out, *output_spatial)``."""
        shape = self.geometry.input_shape
        if self._complex:
            return np.conj(self._multiply(self.matrix.T, np.conj(y), shape))
        return self._multiply(self.matrix.T, y, shape)

    @staticmethod
    def _multiply(matrix, batch: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        flat = batch.reshape(batch.shape[0], -1)
        if flat.shape[0] == 1:
            return (matrix @ flat[0]).reshape(1, *shape)
        return (matrix @ flat.T).T.reshape(-1, *shape)
