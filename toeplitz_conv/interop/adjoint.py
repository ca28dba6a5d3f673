"""Checking that conv-transpose is the adjoint of conv: :func:`check_adjoint`.

For a layer with matrix :math:`A` the report holds

.. math::

    \\varepsilon_\\text{dot} =
    \\frac{|\\langle A x, y\\rangle - \\langle x, A^H y\\rangle|}
         {\\max\\big(|\\langle A x, y\\rangle|, |\\langle x, A^H y\\rangle|,
               10^{-3} (\\|y\\| \\|A x\\| + \\|A^H y\\| \\|x\\|)\\big)}

(inner products in double precision; the floor keeps a cancelling pair from turning
the products' own rounding into a failure), the matrix identity
``ConvTranspose(w, m, ...).tosparse() == Conv(w, n, ...).tosparse().T`` (largest entry
difference, both built from the public constructors), and, when
PyTorch is installed, the largest relative differences against PyTorch's
conv, its conv-transpose (zero padding) and autograd's vector-Jacobian product.
"""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import dataclass, field

import numpy as np

from ..core.block_matrix import assembly_workspace_nbytes
from ..core.memory import MatrixTooLargeError, check_budget
from ..engines import installed_engines
from ..layers.conv import Conv, ConvOperator, ConvTranspose
from ..spectra.spectral import as_linear_operator

__all__ = ["AdjointCheck", "check_adjoint"]

# vectors of the operator's input or output size alive at once in the check (the test
# vectors, their images, both engines' results, PyTorch's copies and autograd's)
VECTOR_COPIES = 12
CHUNK = 1 << 20  # entries compared per step of the matrix identity
DOT_FLOOR = 1e-3  # the dot test's smallest denominator, as a share of the Cauchy-Schwarz scale


@dataclass
class AdjointCheck:
    """Result of :func:`check_adjoint`: relative errors (``None`` where not measured).

    Attributes
    ----------
    operator : str
        ``repr`` of the checked operator.
    dot_test : float
        Relative error of :math:`\\langle Ax, y\\rangle = \\langle x, A^H y\\rangle`
        (denominator at least :math:`10^{-3} (\\|y\\| \\|Ax\\| + \\|A^H y\\| \\|x\\|)`).
    matrix_identity : float or None
        Largest entry difference between this layer's matrix and the transposed
        matrix of its partner (conv for a conv-transpose and back).
    engine_agreement : float or None
        Relative max difference between the sparse engine and each matrix-free
        engine installed (direct, and numba when installed), ``matvec`` and
        ``rmatvec`` (``None`` when the matrix is over budget).
    torch_forward, torch_conv_transpose, torch_autograd : float or None
        Relative max difference of ``matvec`` against PyTorch's conv (with the
        padding mode), of the conv-transpose direction against PyTorch's
        ``conv_transpose`` (zero padding only), and of the adjoint against autograd.
    rtol : float
        Tolerance every measured error is compared with.
    notes : list of str
        Why a check was skipped.
    """

    operator: str
    dot_test: float
    matrix_identity: float | None
    engine_agreement: float | None
    torch_forward: float | None
    torch_conv_transpose: float | None
    torch_autograd: float | None
    rtol: float
    notes: list[str] = field(default_factory=list)

    def errors(self) -> dict[str, float]:
        """The measured errors by name."""
        names = (
            "dot_test",
            "matrix_identity",
            "engine_agreement",
            "torch_forward",
            "torch_conv_transpose",
            "torch_autograd",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    @property
    def passed(self) -> bool:
        """Whether every measured error is within ``rtol``."""
        return all(err <= self.rtol for err in self.errors().values())

    def __repr__(self) -> str:
        lines = [
            f"AdjointCheck({'PASSED' if self.passed else 'FAILED'}, rtol={self.rtol:.0e})",
            f"  operator: {self.operator}",
        ]
        for name, err in self.errors().items():
            mark = "ok" if err <= self.rtol else "FAIL"
            lines.append(f"  {name:<22}{err:10.2e}  {mark}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def check_adjoint(
    op,
    *,
    rtol: float | None = None,
    seed: int | None = None,
    raise_on_failure: bool = False,
    max_bytes: int | None = None,
) -> AdjointCheck:
    """Check that an operator's ``rmatvec`` is its adjoint; for a layer, also against PyTorch.

    On any linear operator (a pylops or scipy ``LinearOperator``, a composition
    such as ``2 * op``, a matrix) this is the dot test alone, and the report's
    notes say so. On a toeplitz_conv layer it adds the matrix identity, the
    agreement of the sparse and matrix-free engines and the PyTorch parity.

    Parameters
    ----------
    op : Conv, ConvTranspose or any linear operator
        The operator.
    rtol : float, optional
        Tolerance; default ``1e-4`` for single and ``1e-10`` for double precision.
    seed : int, optional
        Seed of the random test vectors.
    raise_on_failure : bool
        Raise :class:`AssertionError` with the report when a check fails.
    max_bytes : int, optional
        Memory budget (default :func:`toeplitz_conv.memory_budget`): the test
        vectors must fit (else :class:`MatrixTooLargeError`); the matrix identity
        and the engine agreement, which hold two matrices at a time, run when
        those fit too and are skipped with a note otherwise.

    Returns
    -------
    AdjointCheck
    """
    linear = as_linear_operator(op)
    dtype = np.dtype(np.result_type(linear.dtype, np.float32))
    single = dtype in (np.float32, np.complex64)
    rtol = (1e-4 if single else 1e-10) if rtol is None else float(rtol)
    rows, cols = linear.shape
    vectors = VECTOR_COPIES * (rows + cols) * 16
    check_budget(
        vectors, f"test vectors of the adjoint check on {linear.shape}", max_bytes=max_bytes
    )
    rng = np.random.default_rng(seed)
    x = _random(rng, cols, dtype)
    y = _random(rng, rows, dtype)
    ax, ahy = np.asarray(linear.matvec(x)).ravel(), np.asarray(linear.rmatvec(y)).ravel()
    # inner products accumulated in double precision; relative to the larger of them, but
    # never to less than DOT_FLOOR of the Cauchy-Schwarz scale ||y|| ||Ax|| + ||A^H y|| ||x||,
    # where cancellation leaves only the products' own rounding
    wide = np.complex128 if dtype.kind == "c" else np.float64
    x64, y64, ax64, ahy64 = (v.astype(wide) for v in (x, y, ax, ahy))
    lhs, rhs = np.vdot(y64, ax64), np.vdot(ahy64, x64)
    scale = _norm(y64) * _norm(ax64) + _norm(ahy64) * _norm(x64)
    report = AdjointCheck(
        operator=repr(op) if isinstance(op, ConvOperator) else _describe(linear, op),
        dot_test=float(
            abs(lhs - rhs) / max(abs(lhs), abs(rhs), DOT_FLOOR * scale, np.finfo(float).tiny)
        ),
        matrix_identity=None,
        engine_agreement=None,
        torch_forward=None,
        torch_conv_transpose=None,
        torch_autograd=None,
        rtol=rtol,
    )
    if not isinstance(op, ConvOperator):
        report.notes.append(
            "dot test only: the matrix identity, engine agreement and PyTorch parity "
            "apply to toeplitz_conv layers (Conv, ConvTranspose)"
        )
    else:
        _check_layer(op, x, y, ax, ahy, report, vectors, max_bytes)
    if raise_on_failure and not report.passed:
        raise AssertionError(repr(report))
    return report


def _check_layer(op, x, y, ax, ahy, report: AdjointCheck, vectors: int, max_bytes) -> None:
    """The checks that need a layer: matrix identity, engine agreement, PyTorch parity."""
    try:
        check_budget(
            vectors + _matrices_nbytes(op),
            f"two {op.shape} matrices for the matrix identity",
            max_bytes=max_bytes,
        )
        report.matrix_identity = _matrix_identity_error(op)
        report.engine_agreement = _engine_disagreement(op, x, y)
    except MatrixTooLargeError as error:
        report.notes.append(f"matrix identity and engine agreement skipped: {error}")
    if importlib.util.find_spec("torch") is None:
        report.notes.append("PyTorch comparisons skipped: torch is not installed")
    else:
        _compare_with_torch(op, x, y, ax, ahy, report)


def _norm(v: np.ndarray) -> float:
    return float(np.linalg.norm(v))


def _describe(linear, op) -> str:
    return f"{type(op).__name__} of shape {linear.shape}, dtype {linear.dtype}"


def _random(rng: np.random.Generator, n: int, dtype: np.dtype) -> np.ndarray:
    v = rng.standard_normal(n)
    if dtype.kind == "c":
        v = v + 1j * rng.standard_normal(n)
    return v.astype(dtype)


def _partner(op: ConvOperator) -> ConvOperator:
    """The other layer with the same weight, built from the public constructor."""
    g = op.geometry
    if not op.transposed:
        return ConvTranspose(
            op.weight,
            op.output_shape,
            output_padding=g.transpose_output_padding,
            dtype=op.dtype,
            **g.layer_kwargs(),
        )
    return Conv(op.weight, op.output_shape, dtype=op.dtype, **g.layer_kwargs())


def _truncated(op: ConvOperator) -> bool:
    """A conv-transpose whose partner conv has outputs it never reads."""
    return op.transposed and any(
        o >= s for o, s in zip(op.geometry.transpose_output_padding, op.geometry.stride)
    )


def _matrices_nbytes(op: ConvOperator) -> int:
    """Peak of the matrix identity: two matrices (three when rows must be selected)."""
    workspace = assembly_workspace_nbytes(op.geometry, transposed=True)
    return (3 if _truncated(op) else 2) * op.nbytes + workspace


def _matrix_identity_error(op: ConvOperator) -> float:
    """Largest entry difference between the conv's matrix and the conv-transpose's, transposed.

    The conv-transpose's CSR matrix comes from the transposed assembly; scipy's own
    conversion transposes it back, and the result is compared with the conv's,
    array by array (both are canonical CSR).
    """
    partner = _partner(op)
    transposed, straight = (op, partner) if op.transposed else (partner, op)
    conversion = transposed.tosparse().T.tocsr()
    conversion.sort_indices()
    matrix = straight.tosparse()
    if _truncated(op):
        # with output_padding >= stride the conv has extra outputs this layer never reads
        keep = np.zeros(partner.output_shape, dtype=bool)
        keep[(slice(None), *(slice(0, m) for m in op.input_shape[1:]))] = True
        matrix = matrix[np.flatnonzero(keep)]
    same_pattern = (
        matrix.shape == conversion.shape
        and np.array_equal(matrix.indptr, conversion.indptr)
        and np.array_equal(matrix.indices, conversion.indices)
    )
    if not same_pattern:
        return float(np.abs((matrix - conversion).data).max(initial=np.inf))
    largest = 0.0
    for lo in range(0, matrix.nnz, CHUNK):
        part = matrix.data[lo : lo + CHUNK] - conversion.data[lo : lo + CHUNK]
        largest = max(largest, float(np.abs(part).max(initial=0.0)))
    return largest


def _engine_disagreement(op: ConvOperator, x: np.ndarray, y: np.ndarray) -> float:
    """Largest relative difference between the sparse engine and each matrix-free engine
    installed (direct, numba), both directions.

    A copy of the operator runs them, so the sparse engine's matrix is freed with it
    instead of staying in the caller's layer.
    """
    fresh = copy.deepcopy(op)
    sparse = fresh.with_engine("sparse")
    matrix_free = [fresh.with_engine(e) for e in installed_engines() if e != "sparse"]
    return max(
        max(_relative(other.matvec(x), sparse.matvec(x)) for other in matrix_free),
        max(_relative(other.rmatvec(y), sparse.rmatvec(y)) for other in matrix_free),
    )


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.abs(b).max(initial=0.0)), np.finfo(float).tiny)
    return float(np.abs(a - b).max(initial=0.0) / scale)


def _compare_with_torch(op, x, y, ax, ahy, report: AdjointCheck) -> None:
    from .torch_interop import torch_conv, torch_conv_transpose, torch_conv_vjp

    g, weight = op.geometry, op.weight
    if not op.transposed:  # A x and A^H y
        report.torch_forward = _relative(
            ax, torch_conv(g, weight, x.reshape(1, *op.input_shape)).ravel()
        )
        report.torch_autograd = _relative(
            ahy, torch_conv_vjp(g, weight, y.reshape(1, *op.output_shape)).ravel()
        )
        adjoint_input, adjoint_output, conj = y, ahy, True
    else:  # A^T x = conj(A^H conj x) and (A^T)^H y = conj(A conj y)
        report.torch_autograd = _relative(
            ax, np.conj(torch_conv_vjp(g, weight, np.conj(x).reshape(1, *op.input_shape))).ravel()
        )
        report.torch_forward = _relative(
            ahy, np.conj(torch_conv(g, weight, np.conj(y).reshape(1, *op.output_shape))).ravel()
        )
        adjoint_input, adjoint_output, conj = x, ax, False
    if g.padding_mode != "zeros":
        report.notes.append(f"PyTorch has no conv_transpose with padding_mode={g.padding_mode!r}")
        return
    # PyTorch's conv_transpose is the transpose A^T: for a Conv, A^H y = conj(A^T conj y)
    source = np.conj(adjoint_input) if conj else adjoint_input
    reference = torch_conv_transpose(g, weight, source.reshape(1, *g.output_shape)).ravel()
    report.torch_conv_transpose = _relative(
        adjoint_output, np.conj(reference) if conj else reference
    )
