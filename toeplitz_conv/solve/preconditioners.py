"""Preconditioners of a layer's Tikhonov normal equations.

``"circulant"`` replaces the boundary rule by circular padding: the layer's
weight, stride, dilation and pads on the same input, circularly (a block
circulant of the Strang type, for each pair of channels, with the groups
block-diagonal and strides by polyphase). Its normal equations are inverted
exactly, frequency by frequency (:func:`~.fourier.normal_inverse`), so that

.. math::

    M = (C^H C + d^2 I)^{-1} \\approx (A^H A + d^2 I)^{-1},

symmetric positive definite for every ``damp > 0``; for a circular layer
:math:`C = A` and :math:`M` is the exact inverse. :math:`A - C` is confined to
the pads' rows, a low-rank change for small kernels, which conjugate gradients
absorb in a few extra iterations; the mismatch is magnified by
:math:`1 / d^2`, so a very small ``damp`` can make it slower than no
preconditioner (a known limit of circulant preconditioners for Toeplitz
problems with non-smooth boundaries).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla

from ..core.errors import ParameterError
from ..layers.conv import Conv, ConvOperator, ConvTranspose
from .checks import nonnegative
from .cosine import cosine_class, cosine_preconditioner
from .fourier import fourier_applicable, normal_inverse

__all__ = ["circulant_counterpart", "preconditioner"]

KINDS = ("auto", "circulant", "cosine")


def circulant_counterpart(op: ConvOperator) -> ConvOperator | None:
    """The same layer with circular padding, when it has the same shape and the DFT
    diagonalises it (else ``None``)."""
    g = op.geometry
    kwargs = dict(g.layer_kwargs(), padding_mode="circular")
    if op.transposed:
        twin = ConvTranspose(
            op.weight,
            op.input_shape,
            output_padding=g.transpose_output_padding,
            dtype=op.dtype,
            **kwargs,
        )
    else:
        twin = Conv(op.weight, op.input_shape, dtype=op.dtype, **kwargs)
    return twin if twin.shape == op.shape and fourier_applicable(twin) else None


def preconditioner(
    op: ConvOperator, damp: float, *, kind: str = "auto", max_bytes: int | None = None
) -> spla.LinearOperator:
    """An SPD approximation of :math:`(A^H A + \\text{damp}^2 I)^{-1}`, for
    :func:`scipy.sparse.linalg.cg`'s ``M`` on the normal equations.

    Parameters
    ----------
    op : Conv or ConvTranspose
    damp : float
        :math:`> 0`.
    kind : {"auto", "circulant", "cosine"}
        ``"circulant"``: the block circulant counterpart (see the module);
        ``"cosine"``: the cosine form of :mod:`toeplitz_conv.solve.cosine` (the exact
        inverse for replicate padding <= 1 with symmetric kernels and stride 1;
        for reflect padding with symmetric kernels and stride 1, an SPD
        preconditioner within a factor :math:`2^a` of the inverse, :math:`a` the
        axes); ``"auto"``: the exact circulant one for a circular layer, else the
        cosine one where it applies, else the circulant counterpart.
    max_bytes : int, optional
        Memory budget of the per-frequency inverses.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator
        ``n x n`` with ``n = op.shape[1]``; the exact inverse for a circular layer.

    Raises
    ------
    ParameterError
        For ``damp <= 0``, an unknown ``kind``, or a layer without a circulant
        counterpart of its shape (a stride that does not divide the size, or an
        output that is not ``n / stride``).
    """
    if kind not in KINDS:
        raise ParameterError("kind", f"kind must be one of {KINDS}; got {kind!r}")
    if nonnegative(damp, "damp") == 0:
        raise ParameterError("damp", f"damp must be a number > 0; got {damp!r}")
    cosine, why = cosine_class(op)
    if kind == "cosine" or (kind == "auto" and cosine and not fourier_applicable(op)):
        if cosine is None:
            raise ParameterError("kind", f"kind='cosine' does not apply to this layer: {why}")
        apply = cosine_preconditioner(op, float(damp), max_bytes=max_bytes)
    else:
        twin = circulant_counterpart(op)
        if twin is None:
            raise ParameterError(
                "op",
                "this layer has no circulant counterpart of its shape (its stride must divide "
                "the size, with output size n / stride)",
            )
        apply = normal_inverse(twin, float(damp), max_bytes=max_bytes)
    n = op.shape[1]
    dtype = np.result_type(op.dtype, np.float64)
    return spla.LinearOperator((n, n), matvec=apply, rmatvec=apply, dtype=dtype)
