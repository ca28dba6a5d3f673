"""Weights and dtypes: turn user arrays into the operator's numeric type."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

SUPPORTED_DTYPES = (np.float32, np.float64, np.complex64, np.complex128)


def as_weight(
    weight: ArrayLike, dtype: DTypeLike | None = None, *, name: str = "weight"
) -> tuple[np.ndarray, np.dtype]:
    """Validate a numeric weight array and resolve the operator dtype.

    Parameters
    ----------
    weight : array_like
        Real or complex numbers (integers are promoted to float64). A torch
        tensor is accepted when it converts with ``numpy.asarray``.
    dtype : data-type, optional
        One of float32, float64, complex64, complex128. Default: the weight's
        own floating type (float16 becomes float32, integers float64).
    name : str
        Parameter name used in error messages.

    Returns
    -------
    (numpy.ndarray, numpy.dtype)
        The weight as an array of ``dtype`` and ``dtype`` itself.
    """
    array = np.asarray(weight)
    kind = array.dtype.kind
    if kind not in "iufc":
        raise TypeError(
            f"{name} must hold real or complex numbers (int, float, complex); "
            f"got dtype {array.dtype}"
        )
    natural = np.promote_types(array.dtype, np.float32)
    resolved = natural if dtype is None else np.dtype(dtype)
    if resolved.type not in SUPPORTED_DTYPES:
        allowed = ", ".join(np.dtype(t).name for t in SUPPORTED_DTYPES)
        raise TypeError(f"dtype must be one of {allowed}; got {resolved}")
    if kind == "c" and resolved.kind != "c":
        raise TypeError(f"{name} is complex but dtype={resolved} is real; pass a complex dtype")
    return np.ascontiguousarray(array, dtype=resolved), resolved


def working_dtype(operator_dtype: np.dtype, x_dtype: np.dtype) -> np.dtype:
    """Dtype in which an operator of ``operator_dtype`` applies to data of ``x_dtype``.

    The operator's precision wins (a float32 operator computes in float32), but
    complex data is never cast to real: it gets the complex type of that precision.
    """
    if np.dtype(x_dtype).kind == "c" and operator_dtype.kind != "c":
        return np.result_type(operator_dtype, np.complex64)
    return operator_dtype
