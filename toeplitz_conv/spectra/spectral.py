"""Spectral analysis of conv layers: exact singular values and operator norms.

Circular padding makes every block circulant, so the DFT diagonalises all of
them at once (Sedghi, Gupta & Long, ICLR 2019): with :math:`F` the
:math:`d`-dimensional DFT,

.. math::

    A = (I_{C_\\text{out}} \\otimes F^H)\\, P^T \\,
        \\operatorname{blockdiag}_f \\hat W(f) \\, P\\, (I_{C_\\text{in}} \\otimes F),
    \\qquad
    \\hat W(f)_{ij} = \\sum_t w_{ij}[t]\\, e^{2\\pi i \\langle f, c_t \\rangle / n},

with :math:`c_t` the offset each tap reads and :math:`P` permutations, so the
singular values of :math:`A` are those of the :math:`C_\\text{out} \\times
C_\\text{in}` matrices :math:`\\hat W(f)` over all frequencies :math:`f`
(per group: the others are zero blocks). With stride :math:`s` dividing
:math:`n`, the polyphase split :math:`x_r[q] = x[qs + r]` turns the layer into a
stride-1 circular layer on :math:`n/s` with :math:`C_\\text{in} s^d` input
channels and the same singular values. Other padding modes use a dense SVD when
small, or an iterative (Lanczos) method on the operator.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.fft
import scipy.sparse.linalg as spla

from ..core.errors import ParameterError, ParameterTypeError
from ..core.geometry import Geometry
from ..core.jit import fft_workers
from ..core.memory import check_budget, checked_max_bytes
from ..layers.conv import ConvOperator

__all__ = [
    "as_linear_operator",
    "fft_applicable",
    "fft_covers",
    "frequency_matrices",
    "singular_values",
    "spectral_norm",
]

# complex arrays of the spectrum's size alive at once on the FFT path (the placed taps,
# the transform, its reordering, and LAPACK's copy in the batched SVD)
FFT_COPIES = 4
DENSE_LIMIT = 4096  # largest min(shape) for a dense SVD when k is not given
SMALL_DENSE = 64  # spectral_norm of layers with min(shape) up to this uses a dense SVD


def fft_applicable(geometry: Geometry) -> bool:
    """Whether the exact FFT method applies: circular, stride dividing n, m = n / s."""
    return geometry.padding_mode == "circular" and all(
        n % s == 0 and m * s == n
        for n, m, s in zip(geometry.input_spatial, geometry.output_spatial, geometry.stride)
    )


def fft_covers(op: ConvOperator) -> bool:
    """Whether the per-frequency (FFT) form covers the operator's whole matrix:
    :func:`fft_applicable`, and not a conv-transpose that is a submatrix of its conv's
    transpose (``output_padding >= stride`` leaves rows out)."""
    whole = not op.transposed or tuple(op.output_shape) == tuple(op.geometry.input_shape)
    return fft_applicable(op.geometry) and whole


def frequency_matrices_nbytes(geometry: Geometry) -> int:
    """Peak bytes of :func:`frequency_matrices` and the SVD of its result."""
    channels = geometry.out_channels * geometry.in_per_group
    return FFT_COPIES * 16 * channels * geometry.input_pixels


def frequency_matrices(
    geometry: Geometry, weight: np.ndarray, *, max_bytes: int | None = None, half: bool = False
) -> np.ndarray:
    """The per-frequency channel matrices :math:`\\hat W(f)` of a circular layer.

    Parameters
    ----------
    geometry : Geometry
        A layer for which :func:`fft_applicable` holds.
    weight : numpy.ndarray
        ``geometry.weight_shape``.
    max_bytes : int, optional
        Memory budget (default :func:`toeplitz_conv.memory_budget`), checked
        against :func:`frequency_matrices_nbytes` before anything is allocated.
    half : bool
        Only the frequencies :math:`0 \\le f_d \\le M_d / 2` of the last axis (a real
        ``weight`` only: the others are their complex conjugates), computed by a
        real FFT.

    Returns
    -------
    numpy.ndarray
        Complex, shape ``(groups, n_freq, C_out/G, C_in/G * prod(stride))``,
        ``n_freq = prod(n / stride)`` (with ``half``, the last axis's
        ``M_d // 2 + 1``), a view of frequency-last memory.
    """
    if not fft_applicable(geometry):
        raise ParameterError(
            "op", "the FFT method needs circular padding with output size n / stride"
        )
    check_budget(
        frequency_matrices_nbytes(geometry),
        f"per-frequency channel matrices of a {geometry.matrix_shape} layer",
        max_bytes=max_bytes,
    )
    d, s = geometry.ndim, geometry.stride
    coarse = tuple(n // si for n, si in zip(geometry.input_spatial, s))
    phases = int(np.prod(s))
    c_out, c_group = geometry.out_channels, geometry.in_per_group
    taps = np.stack(np.unravel_index(np.arange(geometry.taps), geometry.kernel), axis=1)
    offset = taps * np.array(geometry.dilation) - np.array([pb for pb, _ in geometry.pads])
    phase = np.ravel_multi_index(tuple((offset % s).T), s)
    shift = tuple((offset // s % coarse).T)
    if half and np.iscomplexobj(weight):
        raise ParameterError("half", "half=True needs a real weight")
    value_type = np.result_type(weight, np.float64 if half else complex)
    placed = np.zeros((c_out, c_group, phases, *coarse), dtype=value_type)
    # taps that land on the same phase and shift (kernel wider than the grid) add up
    everywhere = (slice(None), slice(None))
    np.add.at(placed, (*everywhere, phase, *shift), weight.reshape(c_out, c_group, -1))
    axes = tuple(range(3, 3 + d))
    if half:  # the unnormalised inverse DFT of a real array: the conjugate forward one
        spectrum = np.conj(scipy.fft.rfftn(placed, axes=axes, workers=fft_workers(placed)))
    else:
        spectrum = scipy.fft.ifftn(
            placed, axes=axes, norm="forward", overwrite_x=True, workers=fft_workers(placed)
        )
    spectrum = spectrum.reshape(c_out, c_group * phases, -1)
    groups = geometry.groups
    return spectrum.reshape(groups, c_out // groups, c_group * phases, -1).transpose(0, 3, 1, 2)


def singular_values(
    op: ConvOperator,
    k: int | None = None,
    *,
    method: str = "auto",
    tol: float = 0.0,
    max_bytes: int | None = None,
) -> np.ndarray:
    """Singular values of a conv layer's matrix, in descending order.

    Parameters
    ----------
    op : Conv or ConvTranspose
        The layer (a conv-transpose has the singular values of its conv).
    k : int, optional
        Only the largest ``k``; default all ``min(op.shape)``.
    method : {"auto", "fft", "dense", "iterative"}
        ``"fft"``: exact, for circular padding with stride dividing the size
        (Sedghi et al. 2019, with the polyphase split for stride > 1);
        ``"dense"``: :func:`numpy.linalg.svd` of the (memory-guarded) dense
        matrix; ``"iterative"``: Lanczos (:func:`scipy.sparse.linalg.eigsh`) on the
        Gram operator of the smaller side, the dense SVD if ARPACK breaks down on
        a rank-deficient layer (needs ``k < min(op.shape)``; the values are accurate
        to about :math:`\\sqrt{\\epsilon}\\,\\sigma_{\\max}` in absolute terms, so use
        it for the largest ones; like every single-vector Lanczos method it can miss
        copies of a repeated value, which symmetric layers have: ``"fft"`` or
        ``"dense"`` count them). ``"auto"`` picks ``"fft"`` when it
        applies, else ``"dense"`` when ``min(op.shape) <= 4096`` or ``k`` is
        not given, else ``"iterative"``.
    tol : float
        Tolerance of the iterative method (0: machine precision).
    max_bytes : int, optional
        Memory budget of the FFT and dense methods (default
        :func:`toeplitz_conv.memory_budget`).

    Returns
    -------
    numpy.ndarray
        float64, length ``k`` or ``min(op.shape)``.
    """
    _check_operator(op)
    tol = _checked_tolerance(tol, "tol", zero_allowed=True)
    max_bytes = None if max_bytes is None else checked_max_bytes(max_bytes)
    size = min(op.shape)
    if k is not None and (
        isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= size
    ):
        raise ParameterError(
            "k", f"k must be an int between 1 and min(op.shape) = {size}; got {k!r}"
        )
    k = None if k is None else int(k)
    method = _choose_method(op, k, method, max_bytes)
    if method == "fft":
        matrices = frequency_matrices(op.geometry, op.weight, max_bytes=max_bytes)
        values = np.linalg.svd(matrices, compute_uv=False).ravel()
        values = np.sort(values)[::-1]
    elif method == "dense":
        values = np.linalg.svd(op.todense(max_bytes=max_bytes), compute_uv=False)
    else:
        if k is None or k >= size:
            raise ParameterError(
                "k", f"the iterative method needs k < min(op.shape) = {size}; got k={k}"
            )
        values = _top_singular_values(op, k, tol, max_bytes)
    values = np.asarray(values, dtype=np.float64)
    return values if k is None else values[:k]


def _checked_tolerance(value: object, name: str, *, zero_allowed: bool) -> float:
    """``value`` as a float in (0, 1), or [0, 1) where 0 means machine precision."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(name, f"{name} must be a real number; got {value!r}")
    low = 0.0 <= value if zero_allowed else 0.0 < value
    if not (low and value < 1.0):
        allowed = "[0, 1) (0: machine precision)" if zero_allowed else "(0, 1)"
        raise ParameterError(name, f"{name} must be in {allowed}; got {value!r}")
    return float(value)


def spectral_norm(op, *, rtol: float = 1e-8, max_bytes: int | None = None) -> float:
    """Operator 2-norm (largest singular value, the Lipschitz constant) of a linear operator.

    .. math::

        \\|A\\|_2 = \\max_{x \\neq 0} \\frac{\\|Ax\\|_2}{\\|x\\|_2} = \\sigma_1(A)
                  = \\sqrt{\\lambda_\\text{max}(A^H A)}.

    Exact (FFT) for a conv layer with circular padding and stride dividing the
    size; otherwise Lanczos (:func:`scipy.sparse.linalg.eigsh`) on :math:`A^H A`
    (or :math:`A A^H`, the smaller), matrix-free, to relative tolerance ``rtol``,
    and a dense SVD when the smaller side has at most 64 entries.

    Parameters
    ----------
    op : Conv, ConvTranspose or any linear operator
        A toeplitz_conv layer, or anything :func:`scipy.sparse.linalg.aslinearoperator`
        accepts with ``matvec`` and ``rmatvec`` (a pylops operator, a composition
        such as ``2 * op`` or ``op2 @ op1``, a matrix).
    rtol : float
        Relative tolerance of the iterative method.
    max_bytes : int, optional
        Memory budget of the exact (FFT, dense) paths.

    Returns
    -------
    float
    """
    rtol = _checked_tolerance(rtol, "rtol", zero_allowed=False)
    max_bytes = None if max_bytes is None else checked_max_bytes(max_bytes)
    if isinstance(op, ConvOperator) and fft_applicable(op.geometry):
        return float(singular_values(op, k=1, method="fft", max_bytes=max_bytes)[0])
    linear = as_linear_operator(op)
    n = min(linear.shape)
    if n <= SMALL_DENSE:  # ARPACK breaks down on tiny Gram matrices; a dense SVD is exact
        return _dense_norm(op, linear, max_bytes)
    # the Gram matrix of the smaller side: A^H A, or A A^H
    first, then = (
        (linear.matvec, linear.rmatvec)
        if linear.shape[1] <= linear.shape[0]
        else (linear.rmatvec, linear.matvec)
    )
    dtype = np.result_type(linear.dtype, np.float32)
    gram = spla.LinearOperator((n, n), matvec=lambda x: then(first(x)), dtype=dtype)
    # a seeded random start: a constant vector is shift-invariant, and for shift-invariant
    # (circular) layers its Krylov space would never leave the zero-frequency subspace
    start = np.random.default_rng(0).standard_normal(n).astype(dtype)
    try:
        top = spla.eigsh(gram, k=1, which="LA", tol=rtol, v0=start, return_eigenvectors=False)
        largest = float(np.real(top[0]))
    except spla.ArpackError:
        # ARPACK cannot restart once Lanczos has spanned the range of a rank-deficient
        # Gram matrix ("starting vector is zero"): dense when it fits, else power iteration
        if n <= DENSE_LIMIT:
            return _dense_norm(op, linear, max_bytes)
        largest = _power_iteration(gram.matvec, start, rtol)
    return float(np.sqrt(max(largest, 0.0)))


def _top_singular_values(op: ConvOperator, k: int, tol: float, max_bytes) -> np.ndarray:
    """The ``k`` largest singular values by Lanczos on the Gram matrix of the smaller side
    (seeded random start); when ARPACK cannot (a rank-deficient or zero layer spans its
    range, or ``k`` is all but one value), the dense SVD if it fits the budget."""
    n = min(op.shape)
    first, then = (op.matvec, op.rmatvec) if op.shape[1] <= op.shape[0] else (op.rmatvec, op.matvec)
    dtype = np.result_type(op.dtype, np.float32)
    gram = spla.LinearOperator((n, n), matvec=lambda x: then(first(x)), dtype=dtype)
    start = np.random.default_rng(0).standard_normal(n).astype(dtype)
    try:
        if k >= n - 1:  # ARPACK's limit for complex matrices (eigs): all but one value
            raise spla.ArpackError(-3)
        squares = spla.eigsh(gram, k=k, which="LA", tol=tol, v0=start, return_eigenvectors=False)
    except spla.ArpackError:
        return np.linalg.svd(op.todense(max_bytes=max_bytes), compute_uv=False)[:k]
    return np.sort(np.sqrt(np.maximum(np.real(squares), 0.0)))[::-1]


def as_linear_operator(op) -> spla.LinearOperator:
    """``op`` as a :class:`scipy.sparse.linalg.LinearOperator` with an adjoint.

    Parameters
    ----------
    op : linear operator, matrix or toeplitz_conv layer

    Raises
    ------
    ParameterTypeError
        When ``op`` is not a 2-D linear operator with ``matvec`` and ``rmatvec``.
    """
    try:
        linear = spla.aslinearoperator(op)
    except TypeError:
        linear = None
    if linear is None or len(linear.shape) != 2 or linear.dtype is None:
        raise ParameterTypeError(
            "op",
            "op must be a linear operator with shape, dtype, matvec and rmatvec (a toeplitz_conv"
            f" layer, a pylops or scipy LinearOperator, a matrix); got {type(op).__name__}",
        )
    return linear


def _dense_norm(op, linear: spla.LinearOperator, max_bytes: int | None) -> float:
    """Largest singular value from the dense matrix of the smaller side."""
    if isinstance(op, ConvOperator):
        return float(singular_values(op, method="dense", max_bytes=max_bytes)[0])
    rows, cols = linear.shape
    itemsize = np.dtype(np.result_type(linear.dtype, np.float32)).itemsize
    check_budget(
        rows * cols * itemsize, f"dense matrix of shape {linear.shape}", max_bytes=max_bytes
    )
    if cols <= rows:
        dense = linear.matmat(np.eye(cols, dtype=linear.dtype))
    else:
        dense = linear.rmatmat(np.eye(rows, dtype=linear.dtype))
    return float(np.linalg.norm(np.asarray(dense), 2))


def _power_iteration(gram, start: np.ndarray, rtol: float, max_iterations: int = 100_000) -> float:
    """Largest eigenvalue of a Hermitian positive semi-definite map, to relative ``rtol``."""
    v = start / np.linalg.norm(start)
    previous = 0.0
    for _ in range(max_iterations):
        w = gram(v)
        value = float(np.linalg.norm(w))
        if value == 0.0 or abs(value - previous) <= rtol * value:
            return value
        v, previous = w / value, value
    raise RuntimeError(f"power iteration did not reach rtol={rtol} in {max_iterations} steps")


def _choose_method(op: ConvOperator, k: int | None, method: str, max_bytes: int | None) -> str:
    methods = ("auto", "fft", "dense", "iterative")
    if method not in methods:
        raise ParameterError("method", f"method must be one of {methods}; got {method!r}")
    if method == "fft" and not fft_applicable(op.geometry):
        raise ParameterError(
            "method",
            "method='fft' needs padding_mode='circular' with each spatial size divisible by "
            "the stride and output size n / stride",
        )
    if method != "auto":  # "dense" is memory-guarded by op.todense()
        return method
    if fft_applicable(op.geometry):
        return "fft"
    if k is None or min(op.shape) <= DENSE_LIMIT:
        check_budget(
            op.shape[0] * op.shape[1] * op.dtype.itemsize,
            f"dense matrix of shape {op.shape} for the SVD (pass k for the top k)",
            max_bytes=max_bytes,
        )
        return "dense"
    return "iterative"


def _check_operator(op: object) -> None:
    if not isinstance(op, ConvOperator):
        raise ParameterTypeError(
            "op", f"op must be a toeplitz_conv Conv or ConvTranspose; got {type(op)}"
        )
