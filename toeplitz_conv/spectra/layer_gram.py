"""One group of a layer as a layer of its own, its Gram side, and its top vector.

Shared by the proofs that factor a Gram matrix (:mod:`toeplitz_conv.spectra.certified`,
:mod:`toeplitz_conv.spectra.singular_bounds`): a grouped layer is block diagonal, so
every proof runs group by group on a ``groups=1`` layer with the same weight
rows, and chooses the side (:math:`A^H A` or :math:`A A^H`) by the cost of its
band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..core.padding import PADDING_MODES
from ..layers.conv import ConvOperator
from .banded import BandedGram, band_cost, banded_gram
from .symbol import gamma

__all__ = [
    "GroupLayer",
    "absolute_norm_bound",
    "assembly_error",
    "band_cost_of",
    "block_gram",
    "explicit_ratio_bounds",
    "factorization_fits",
    "group_layers",
    "read_multiplicity",
    "top_vector",
]

MAX_FACTOR_FLOPS = 1.5e12  # a banded factorization past this is too slow
LANCZOS_TOL = 1e-9


@dataclass(frozen=True)
class GroupLayer:
    operator: ConvOperator  # one group as a layer of its own (groups=1)
    side: str
    channels: int
    spatial: tuple[int, ...]


def group_layers(op: ConvOperator, side: str | None = None) -> list[GroupLayer]:
    """Each group as a layer of its own, with the side whose Gram band is cheaper."""
    g = op.geometry
    if side is None:
        side = min(("columns", "rows"), key=lambda s: band_cost_of(op, s)[1])
    shape = op.input_shape if side == "columns" else op.output_shape
    rows = g.out_channels // g.groups  # the weight's rows of one group
    blocks = []
    for k in range(g.groups):
        weight = op.weight[k * rows : (k + 1) * rows]
        channels_in = op.input_shape[0] // g.groups
        single = op.with_weight(weight, input_shape=(channels_in, *op.input_shape[1:]), groups=1)
        blocks.append(GroupLayer(single, side, shape[0] // g.groups, tuple(shape[1:])))
    return blocks


def band_cost_of(op: ConvOperator, side: str) -> tuple[int, float]:
    """Bytes and flops of one group's banded Gram matrix on ``side`` (estimated from the
    kernel's reach in pixel-major order)."""
    g = op.geometry
    shape = op.input_shape if side == "columns" else op.output_shape
    conv_input = (side == "columns") != op.transposed
    channels, spatial = shape[0] // g.groups, tuple(shape[1:])
    reach = []
    for k, d, s, n in zip(g.kernel, g.dilation, g.stride, spatial):
        span = d * (k - 1)
        reach.append(min(n - 1, span if conv_input else -(-span // s)))
    if g.padding_mode == "circular":  # wrap-around couples the first and last pixels
        reach = [n - 1 for n in spatial]
    order = sorted(range(len(spatial)), key=lambda a: -spatial[a])
    width, step = channels - 1, channels
    for a in reversed(order):
        width += reach[a] * step
        step *= spatial[a]
    return band_cost(channels * math.prod(spatial), width, np.iscomplexobj(op.weight))


def block_gram(block: GroupLayer, budget: int) -> tuple[sp.csr_array, BandedGram]:
    """One group's assembled matrix and its banded Gram matrix, charged with the
    assembly's distance from the exact matrix (:func:`assembly_error`)."""
    matrix = sp.csr_array(block.operator.tosparse(max_bytes=budget))
    gram = banded_gram(
        matrix,
        block.side,
        block.channels,
        block.spatial,
        max_bytes=budget,
        matrix_error=assembly_error(block.operator),
    )
    return matrix, gram


def factorization_fits(op: ConvOperator, budget: int) -> bool:
    nbytes, flops = min((band_cost_of(op, s) for s in ("columns", "rows")), key=lambda c: c[1])
    # the matrix, one group's Gram matrix as COO (a few times its band) and the band
    return flops <= MAX_FACTOR_FLOPS and op.nbytes + 4 * nbytes <= budget


def top_vector(block: GroupLayer, rtol: float) -> np.ndarray:
    """The top eigenvector of the group's Gram matrix on its side (Lanczos on the layer's
    engine; dense for tiny sides)."""
    single = block.operator
    first, then = (single.matvec, single.rmatvec)
    if block.side == "rows":
        first, then = then, first
    n = single.shape[1] if block.side == "columns" else single.shape[0]
    if n <= 64:
        dense = single.todense()
        gram = dense.conj().T @ dense if block.side == "columns" else dense @ dense.conj().T
        return np.linalg.eigh(gram)[1][:, -1]
    gram = spla.LinearOperator((n, n), matvec=lambda x: then(first(x)), dtype=single.dtype)
    start = np.random.default_rng(0).standard_normal(n).astype(single.dtype)
    try:
        tol = min(LANCZOS_TOL, rtol * 1e-3)
        _, vectors = spla.eigsh(gram, k=1, which="LA", tol=tol, v0=start, ncv=min(n - 1, 48))
        return vectors[:, 0]
    except spla.ArpackError:
        return _power(gram, start)


def explicit_ratio_bounds(
    block: GroupLayer, matrix: sp.csr_array, vector: np.ndarray
) -> tuple[float, float]:
    """Proven bounds of :math:`\\|A v\\| / \\|v\\|` (:math:`\\|A^H v\\|/\\|v\\|` on the rows side)
    for the exact matrix :math:`A`, computed with its assembled ``matrix`` (whose distance
    from :math:`A` is charged by :func:`assembly_error`): a lower bound of
    :math:`\\sigma_{\\max}` and an upper bound of :math:`\\sigma_{\\min}` of the group."""
    transposed = matrix if block.side == "columns" else sp.csr_array(matrix.conj().T)
    image = transposed @ vector
    length = int(np.diff(transposed.indptr).max(initial=1)) + 4
    absolute = abs(matrix)
    bound = math.sqrt(float(absolute.sum(axis=0).max()) * float(absolute.sum(axis=1).max()))
    bottom = float(np.linalg.norm(vector))
    if bottom == 0:
        return 0.0, math.inf
    # the product's rounding, and the assembled matrix's distance from the exact one
    rounding = (gamma(length) * bound + assembly_error(block.operator)) * bottom
    top = float(np.linalg.norm(image))
    size = gamma(image.size + vector.size + 8)
    lower = max(0.0, (top - rounding) * (1 - size) / (bottom * (1 + size)))
    upper = (top + rounding) * (1 + size) / (bottom * (1 - size))
    return lower, upper


def absolute_norm_bound(op: ConvOperator, magnitudes: np.ndarray | None = None) -> float:
    """A bound of :math:`\\| |A| \\|_2 \\le \\sqrt{\\|A\\|_1 \\|A\\|_\\infty}` from the taps.

    :math:`|A|` here sums the absolute taps folded into each entry (so it bounds the
    matrix of any weight of these ``magnitudes``, default ``|op.weight|``). A row sums
    at most the absolute taps of one output channel; a column at most those of one
    input channel, each read at most :math:`\\prod_a m_a` times
    (:func:`read_multiplicity`).
    """
    g = op.geometry
    magnitudes = np.abs(op.weight) if magnitudes is None else magnitudes
    w = magnitudes.reshape(g.out_channels, g.in_per_group, -1).sum(axis=-1)
    rows = float(w.sum(axis=1).max())
    per_input = w.reshape(g.groups, g.out_per_group, g.in_per_group).sum(axis=1)
    columns = float(per_input.max()) * math.prod(read_multiplicity(g))
    return math.sqrt(rows * columns)


def read_multiplicity(geometry) -> tuple[int, ...]:
    """Per axis, the most padded positions that read one input sample (1 for zeros)."""
    mode = PADDING_MODES[geometry.padding_mode]
    counts = []
    for (before, after), n in zip(geometry.pads, geometry.input_spatial):
        if mode.drops_reads:
            counts.append(1)
        elif n + before + after > 1 << 24:  # too long to count: every pad could land on one
            counts.append(1 + before + after)
        else:
            folded = mode.fold(np.arange(-before, n + after), n)
            counts.append(int(np.bincount(folded[folded >= 0], minlength=n).max()))
    return tuple(counts)


FOLD_COUNT_LIMIT = 1 << 22  # (outputs x taps) of one axis counted exactly; beyond, all taps


def folded_taps(geometry) -> int:
    """The most taps of one scalar kernel that land on one entry of the matrix.

    1 when no two taps of a window read the same sample (zero padding always,
    circular padding that does not wrap onto the window); more where reflect,
    replicate or a wrapping circular boundary folds taps together. Counted per
    axis from the index maps (the fold is separable, so the most is the product).
    """
    if geometry.mode.drops_reads:
        return 1
    most = 1
    for axis, (m, k) in enumerate(zip(geometry.output_spatial, geometry.kernel)):
        if k == 1:
            continue
        if m * k > FOLD_COUNT_LIMIT:
            most *= k
            continue
        read = np.sort(geometry.axis_index_map(axis), axis=1)
        starts = np.ones(read.shape, dtype=bool)
        starts[:, 1:] = read[:, 1:] != read[:, :-1]
        edges = np.flatnonzero(np.append(starts.ravel(), True))
        most *= int(np.diff(edges).max())
    return most


def assembly_error(op: ConvOperator) -> float:
    """A bound of :math:`\\|\\mathrm{fl}(A) - A\\|_2` for the assembled matrix of ``op``.

    An entry that receives :math:`m > 1` folded taps is their floating-point sum,
    within :math:`\\gamma_{m-1} \\sum_t |w_t|` of the exact sum in any order (Higham,
    Accuracy and Stability, eq. 4.4; componentwise, so times :math:`\\sqrt 2` for
    complex taps). With :math:`M` the most taps on one entry,
    :math:`|\\mathrm{fl}(A) - A| \\le \\gamma_{M-1} |A|_{\\text{taps}}` entrywise, and the
    2-norm of that non-negative matrix is at most :func:`absolute_norm_bound`.
    Zero when no taps fold (the entries are the taps themselves).
    """
    most = folded_taps(op.geometry)
    if most == 1:
        return 0.0
    complex_factor = math.sqrt(2) if np.iscomplexobj(op.weight) else 1.0
    return complex_factor * gamma(most - 1) * absolute_norm_bound(op) * (1 + 4 * gamma(1))


def _power(gram, start: np.ndarray, steps: int = 500) -> np.ndarray:
    v = start / np.linalg.norm(start)
    for _ in range(steps):
        w = gram.matvec(v)
        norm = np.linalg.norm(w)
        if norm == 0:
            return v
        v = w / norm
    return v
