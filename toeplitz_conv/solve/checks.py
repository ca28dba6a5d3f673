"""The checks of the solvers' arguments: each bad value a parameter error naming it."""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike

from ..core.errors import ParameterError, ParameterTypeError
from ..core.weights import as_numeric
from ..layers.conv import ConvOperator

__all__ = [
    "batch",
    "checked_operator",
    "iterations_limit",
    "nonnegative",
    "real_number",
    "tolerance",
    "vector",
]


def checked_operator(op: object) -> ConvOperator:
    if not isinstance(op, ConvOperator):
        raise ParameterTypeError(
            "op", f"op must be a toeplitz_conv Conv or ConvTranspose; got {type(op).__name__}"
        )
    return op


def real_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(name, f"{name} must be a real number; got {value!r}")
    return float(value)


def nonnegative(value: object, name: str) -> float:
    number = real_number(value, name)
    if not (math.isfinite(number) and number >= 0):
        raise ParameterError(name, f"{name} must be a finite number >= 0; got {value!r}")
    return number


def tolerance(rtol: object) -> float:
    number = real_number(rtol, "rtol")
    if not 0 < number < 1:
        raise ParameterError("rtol", f"rtol must be in (0, 1); got {rtol!r}")
    return number


def iterations_limit(maxiter: object) -> int | None:
    if maxiter is None:
        return None
    if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral) or maxiter < 1:
        raise ParameterError("maxiter", f"maxiter must be a whole number >= 1; got {maxiter!r}")
    return int(maxiter)


def vector(values: ArrayLike, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``values`` as a flat, read-only float64 or complex128 view (of the caller's memory
    where it is such already), when it is flat or of the layer's ``shape``
    ``(C, *spatial)``: any other shape of that size (an image in ``(H, W, C)``) is
    refused, not silently read as another layout."""
    array = as_numeric(values, name)
    length = math.prod(shape)
    if array.shape not in ((length,), tuple(shape)):
        raise ParameterError(
            name,
            f"{name} must have {length} entries, flat, or shape {tuple(shape)} (channels "
            f"first, as the layer's products take it); got shape {np.shape(array)}"
            + (" (channels last? move them first)" if array.size == length else ""),
        )
    if not np.all(np.isfinite(array)):
        raise ParameterError(name, f"{name} must be finite (it has infinite or NaN entries)")
    flat = np.asarray(array, dtype=np.result_type(array, np.float64)).reshape(-1)
    view = flat.view()  # the caller's memory, if it is float: read-only, never copied
    view.flags.writeable = False
    return view


def batch(values: ArrayLike, shape: tuple[int, ...], name: str) -> np.ndarray | None:
    """``values`` as ``(B, L)`` rows when it is a batch: ``(B, L)`` flat rows (``B > 1``
    or not the layer's ``shape``) or ``(B, *shape)``; ``None`` for one vector (flat or of
    ``shape``), which :func:`vector` checks."""
    array = as_numeric(values, name)
    length = math.prod(shape)
    if array.shape in ((length,), tuple(shape)):
        return None
    if (
        array.ndim == len(shape) + 1
        and array.shape[1:] == tuple(shape)
        or (array.ndim == 2 and array.shape[1] == length)
    ):
        if not len(array):
            raise ParameterError(name, f"a batch {name} must hold one item at least; got none")
        if not np.all(np.isfinite(array)):
            raise ParameterError(name, f"{name} must be finite (it has infinite or NaN entries)")
        return np.asarray(array, dtype=np.result_type(array, np.float64)).reshape(len(array), -1)
    if array.ndim >= 2 and array.size % length == 0 and array.shape[0] * length == array.size:
        raise ParameterError(
            name,
            f"a batch {name} must be (B, {length}) or (B, {', '.join(map(str, shape))}); got "
            f"shape {array.shape}",
        )
    return None  # not a batch: vector() says what is wrong
