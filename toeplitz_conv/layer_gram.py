"""One group of a layer as a layer of its own, its Gram side, and its top vector.

Shared by the proofs that factor a Gram matrix (:mod:`toeplitz_conv.certified`,
:mod:`toeplitz_conv.singular_bounds`): a grouped layer is block diagonal, so
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

from .banded import band_cost
from .operators import Conv, ConvOperator, ConvTranspose
from .symbol import gamma

__all__ = [
    "GroupLayer",
    "band_cost_of",
    "explicit_ratio_bounds",
    "factorization_fits",
    "group_layers",
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
    kwargs = dict(g.layer_kwargs(), groups=1)
    blocks = []
    for k in range(g.groups):
        weight = op.weight[k * rows : (k + 1) * rows]
        channels_in = op.input_shape[0] // g.groups
        if op.transposed:
            single = ConvTranspose(
                weight,
                (channels_in, *op.input_shape[1:]),
                output_padding=g.transpose_output_padding,
                dtype=op.dtype,
                **kwargs,
            )
        else:
            single = Conv(weight, (channels_in, *op.input_shape[1:]), dtype=op.dtype, **kwargs)
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
    """Proven bounds of :math:`\\|A v\\| / \\|v\\|` (:math:`\\|A^H v\\|/\\|v\\|` on the rows side),
    computed with the exact matrix: a lower bound of :math:`\\sigma_{\\max}` and an upper
    bound of :math:`\\sigma_{\\min}` of the group."""
    exact = matrix if block.side == "columns" else sp.csr_array(matrix.conj().T)
    image = exact @ vector
    length = int(np.diff(exact.indptr).max(initial=1)) + 4
    absolute = abs(matrix)
    bound = math.sqrt(float(absolute.sum(axis=0).max()) * float(absolute.sum(axis=1).max()))
    bottom = float(np.linalg.norm(vector))
    if bottom == 0:
        return 0.0, math.inf
    rounding = gamma(length) * bound * bottom
    top = float(np.linalg.norm(image))
    size = gamma(image.size + vector.size + 8)
    lower = max(0.0, (top - rounding) * (1 - size) / (bottom * (1 + size)))
    upper = (top + rounding) * (1 + size) / (bottom * (1 - size))
    return lower, upper


def _power(gram, start: np.ndarray, steps: int = 500) -> np.ndarray:
    v = start / np.linalg.norm(start)
    for _ in range(steps):
        w = gram.matvec(v)
        norm = np.linalg.norm(w)
        if norm == 0:
            return v
        v = w / norm
    return v
