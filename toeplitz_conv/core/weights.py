"""Weights and dtypes: turn user arrays into the operator's numeric type."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .errors import ParameterError, ParameterTypeError

__all__ = [
    "SUPPORTED_DTYPES",
    "as_numeric",
    "as_weight",
    "largest_exponent",
    "real_parts",
    "times_power_of_two",
    "working_dtype",
]

SUPPORTED_DTYPES = (np.float32, np.float64, np.complex64, np.complex128)
NUMERIC_KINDS = "biufc"  # bool, signed and unsigned int, float, complex


def as_numeric(values: ArrayLike, name: str) -> np.ndarray:
    """``values`` as a numpy array of numbers, or a :class:`ParameterTypeError` naming ``name``.

    Lists, tuples and objects with ``__array__`` are accepted, as by scipy; a
    PyTorch tensor is detached and moved to the CPU first (bfloat16 becomes
    float32). Strings, dates and Python objects are refused.
    """
    if hasattr(values, "detach") and type(values).__module__.startswith("torch"):
        values = values.detach().cpu().resolve_conj()
        if str(values.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            values = values.float()
        values = values.numpy()
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:
        raise ParameterTypeError(name, f"{name} must be an array of numbers: {error}") from None
    if array.dtype.kind not in NUMERIC_KINDS:
        raise ParameterTypeError(
            name,
            f"{name} must hold numbers (bool, int, float or complex); got dtype {array.dtype}",
        )
    return array


def as_weight(
    weight: ArrayLike, dtype: DTypeLike | None = None, *, name: str = "weight"
) -> tuple[np.ndarray, np.dtype]:
    """Validate a numeric weight array and resolve the operator dtype.

    Parameters
    ----------
    weight : array_like
        Real or complex numbers, all finite (integers are promoted to float64).
        A PyTorch tensor is accepted, also one that requires grad.
    dtype : data-type, optional
        One of float32, float64, complex64, complex128, in any byte order (the
        operator computes in the machine's own). Default: the weight's own floating
        type (float16 becomes float32, integers float64).
    name : str
        Parameter name used in error messages.

    Returns
    -------
    (numpy.ndarray, numpy.dtype)
        The weight as an array of ``dtype`` (maybe the caller's own array: the
        operators copy it) and ``dtype`` itself.

    Raises
    ------
    ParameterError
        For infinite or NaN entries: with zero padding the matrix has no entry
        where a tap reads the padding, while any matrix-free product computes
        ``inf * 0 = nan`` there, so no engine could stand for the matrix.
    """
    array = as_numeric(weight, name)
    natural = np.promote_types(array.dtype, np.float32)
    try:
        resolved = natural if dtype is None else np.dtype(dtype)
    except TypeError as error:
        raise ParameterTypeError("dtype", f"dtype is not a data type: {error}") from None
    resolved = resolved.newbyteorder("=")  # '>f8' holds float64s: computed in native order
    if resolved.type not in SUPPORTED_DTYPES:
        allowed = ", ".join(np.dtype(t).name for t in SUPPORTED_DTYPES)
        raise ParameterTypeError("dtype", f"dtype must be one of {allowed}; got {resolved}")
    if array.dtype.kind == "c" and resolved.kind != "c":
        raise ParameterTypeError(
            name, f"{name} is complex but dtype={resolved} is real; pass a complex dtype"
        )
    array = np.ascontiguousarray(array, dtype=resolved)
    bad = np.size(array) - np.count_nonzero(np.isfinite(array))
    if bad:
        raise ParameterError(name, f"{name} must be finite; it has {bad} infinite or NaN entries")
    return array, resolved


def working_dtype(operator_dtype: np.dtype, x_dtype: np.dtype) -> np.dtype:
    """Dtype in which an operator of ``operator_dtype`` applies to data of ``x_dtype``:
    :func:`numpy.result_type` of the two, as :mod:`scipy.sparse.linalg`'s operators do.

    Neither is narrowed: a float32 layer applied to float64 data computes and returns
    float64 (the caller's precision is kept), float32 data stays float32, and complex
    data is never cast to real.
    """
    return np.result_type(operator_dtype, x_dtype)


def times_power_of_two(values, exponent: int):
    """``values`` times :math:`2^e` (a number or an array, real or complex): exact in
    floating point, one rounding where a result falls below the normal range, ``inf``
    past the largest double (:func:`numpy.ldexp` on each real and imaginary part)."""
    if exponent == 0:
        return values
    array = np.asarray(values)
    if array.dtype.kind != "c":
        scaled = np.ldexp(array, exponent)
    else:
        scaled = np.empty_like(array)
        scaled.real = np.ldexp(array.real, exponent)
        scaled.imag = np.ldexp(array.imag, exponent)
    return scaled if array.ndim else scaled[()]


def real_parts(values) -> np.ndarray:
    """``values`` if real, else their real and imaginary parts side by side (a view of
    contiguous complex memory, no copy)."""
    array = np.asarray(values)
    if array.dtype.kind == "c":
        return np.ascontiguousarray(array).view(array.real.dtype)
    return array


def largest_exponent(values) -> int | None:
    """:math:`e` with :math:`2^{-e} m` in :math:`[1/2, 1)` for the largest magnitude
    :math:`m` of a real or imaginary part (:func:`math.frexp`'s exponent); ``None`` if
    :math:`m` is 0 or not finite (or ``values`` is empty). Two passes, no temporary."""
    parts = real_parts(values)
    if parts.size == 0:
        return None
    largest = max(float(np.max(parts)), -float(np.min(parts)))
    if largest == 0.0 or not math.isfinite(largest):
        return None
    return math.frexp(largest)[1]
