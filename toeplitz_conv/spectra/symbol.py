"""Certified norms of periodic (circulant) layers, frequency by frequency.

A conv layer with circular padding on a period :math:`N` (per axis) and a stride
:math:`s` dividing :math:`N` is block-diagonalised by the DFT after the polyphase
split (Sedghi, Gupta & Long, ICLR 2019): its singular values are those of the
per-frequency channel matrices

.. math::

    \\hat W(f)_{i,(j,r)} = \\sum_{t:\\ t\\delta \\bmod s = r} w_{ij}[t]\\,
        e^{2\\pi i \\langle f,\\ \\lfloor t\\delta / s \\rfloor\\rangle / M},
    \\qquad f \\in \\{0, \\dots, M-1\\}^d,\\ M = N / s,

one per group. Its norm is :math:`\\max_f \\|\\hat W(f)\\|_2`, and this module
brackets it rigorously: each :math:`\\hat W(f)` is summed directly from the taps
(entrywise error at most :math:`\\gamma_{2T+12} \\|w_{ij}\\|_1`), and
:math:`\\|\\hat W(f)\\|_2 < \\mu` is proven for every :math:`f` by a floating-point
Cholesky factorization of :math:`\\mu^2 I - \\hat W^H \\hat W` shifted by its
rounding error (Rump, "Verification of positive definiteness", BIT 46, 2006).
The frequencies are taken in chunks, so the memory stays within a budget
whatever :math:`N`.

A shift of the input or output is a permutation, so pads do not change the
singular values of a periodic layer; they are not parameters here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.memory import check_budget, resolve_budget

__all__ = [
    "PeriodicLayer",
    "gamma",
    "periodic_grams",
    "periodic_min_bracket",
    "periodic_norm_bracket",
]

UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2
EXACT_ESTIMATE_FLOPS = 1e10  # up to this, every frequency's norm is estimated exactly
SUB_CHUNK = 64  # matrices per batched Cholesky; a failing batch is examined alone
REFINED_SAMPLES = 4  # best coarse samples whose neighbourhoods are searched in full


def gamma(n: float) -> float:
    """Higham's :math:`\\gamma_n = n u / (1 - n u)`, the bound of ``n`` rounding errors."""
    nu = n * UNIT_ROUNDOFF
    if nu >= 0.5:
        raise ValueError(f"gamma_{n} is not small: the problem is too large for double precision")
    return nu / (1 - nu)


@dataclass(frozen=True)
class PeriodicLayer:
    """A conv layer with circular padding on ``period``, stride dividing it.

    Attributes
    ----------
    weight : numpy.ndarray
        ``(C_out, C_in / groups, *kernel)``, float64 or complex128.
    groups : int
    stride, dilation, period : tuple of int
        Per spatial axis; each stride divides its period.
    """

    weight: np.ndarray
    groups: int
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    period: tuple[int, ...]

    @property
    def coarse(self) -> tuple[int, ...]:
        """Frequencies per axis, ``period / stride``."""
        return tuple(n // s for n, s in zip(self.period, self.stride))

    @property
    def n_frequencies(self) -> int:
        return math.prod(self.coarse)

    @property
    def matrix_shape(self) -> tuple[int, int]:
        """Rows and columns of one group's :math:`\\hat W(f)`."""
        c_out = self.weight.shape[0] // self.groups
        return c_out, self.weight.shape[1] * math.prod(self.stride)

    @property
    def gram_size(self) -> int:
        return min(self.matrix_shape)


def _tap_tables(layer: PeriodicLayer) -> tuple[np.ndarray, np.ndarray]:
    """Each tap's polyphase component and its coarse shift, ``(taps,)`` and ``(taps, d)``."""
    kernel = layer.weight.shape[2:]
    taps = np.stack(np.unravel_index(np.arange(math.prod(kernel)), kernel), axis=1)
    offset = taps * np.array(layer.dilation)
    stride = np.array(layer.stride)
    phase = np.ravel_multi_index(tuple((offset % stride).T), layer.stride)
    return phase, offset // stride


def _placed_weight(layer: PeriodicLayer, phase: np.ndarray) -> np.ndarray:
    """``(taps, C_out, C_in/G * phases)``: each tap's weight in its phase's columns."""
    c_out, c_group = layer.weight.shape[:2]
    phases = math.prod(layer.stride)
    taps = layer.weight.reshape(c_out, c_group, -1)
    placed = np.zeros((taps.shape[-1], c_out, c_group, phases), dtype=np.complex128)
    placed[np.arange(taps.shape[-1]), :, :, phase] = np.moveaxis(taps, -1, 0)
    return placed.reshape(taps.shape[-1], c_out, c_group * phases)


def _symbol_chunk(layer, placed, shift, frequencies: np.ndarray) -> np.ndarray:
    """:math:`\\hat W(f)` for a chunk of flat frequency indices: ``(F, G, rows, cols)``."""
    exponentials = _exponentials(layer, shift, frequencies)
    values = exponentials @ placed.reshape(placed.shape[0], -1)
    rows, cols = layer.matrix_shape
    return values.reshape(len(frequencies), layer.groups, rows, cols)


def _exponentials(layer: PeriodicLayer, offsets: np.ndarray, frequencies: np.ndarray):
    """:math:`e^{2\\pi i \\langle f, c\\rangle / M}`, ``(F, offsets)``, angles reduced exactly."""
    coarse = np.array(layer.coarse)
    f = np.stack(np.unravel_index(frequencies, layer.coarse), axis=1)
    turns = ((f[:, None, :] * offsets[None, :, :]) % coarse / coarse).sum(axis=-1)
    return np.exp(2j * np.pi * turns)


@dataclass(frozen=True)
class _GramSeries:
    """The smaller Gram matrix of every group's :math:`\\hat W(f)`, from the weight's
    autocorrelation:

    .. math:: G(f) = \\sum_\\Delta R_\\Delta e^{2\\pi i \\langle f, \\Delta\\rangle / M}.
    """

    lags: np.ndarray  # (L, d)
    terms: np.ndarray  # (L, G * k * k)
    size: int  # k
    error: float  # bound on ||G_computed(f) - G(f)||_2, every f

    def at(self, layer: PeriodicLayer, frequencies: np.ndarray) -> np.ndarray:
        values = _exponentials(layer, self.lags, frequencies) @ self.terms
        return values.reshape(len(frequencies) * layer.groups, self.size, self.size)


def _gram_series(layer: PeriodicLayer, max_bytes: int | None) -> _GramSeries:
    phase, shift = _tap_tables(layer)
    c_out, c_group = layer.weight.shape[:2]
    rows = c_out // layer.groups
    taps = np.moveaxis(layer.weight.reshape(layer.groups, rows, c_group, -1), -1, 0)
    taps = taps.astype(np.complex128)  # (T, G, rows, C_in/G)
    n_taps, phases = taps.shape[0], math.prod(layer.stride)
    by_rows = rows <= c_group * phases
    k = rows if by_rows else c_group * phases
    what = f"autocorrelation of a {layer.weight.shape} weight ({n_taps}^2 tap pairs)"
    check_budget(3 * 16 * n_taps**2 * layer.groups * k * k, what, max_bytes=max_bytes)
    if by_rows:  # W W^H: pairs of taps in the same phase
        pairs = np.einsum("tgai,sgbi->tsgab", taps, np.conj(taps))
        k = rows
    else:  # W^H W: every pair of taps, placed in their phases' block
        products = np.einsum("tgia,sgib->tsgab", np.conj(taps), taps)
        k = c_group * phases
        pairs = np.zeros((n_taps, n_taps, layer.groups, k, k), dtype=np.complex128)
        for t in range(n_taps):
            for u in range(n_taps):
                block_t = slice(phase[t] * c_group, (phase[t] + 1) * c_group)
                block_u = slice(phase[u] * c_group, (phase[u] + 1) * c_group)
                pairs[t, u, :, block_t, block_u] = products[t, u]
    t, u = (
        np.nonzero(phase[:, None] == phase[None, :])
        if by_rows
        else np.indices((n_taps, n_taps)).reshape(2, -1)
    )
    lag = shift[t] - shift[u] if by_rows else shift[u] - shift[t]
    lags, index = np.unique(lag, axis=0, return_inverse=True)
    terms = np.zeros((len(lags), layer.groups * k * k), dtype=np.complex128)
    np.add.at(terms, index.ravel(), pairs[t, u].reshape(len(t), -1))
    frobenius = np.sqrt((np.abs(taps) ** 2).sum(axis=(2, 3)))  # (T, G)
    scale = float(frobenius.sum(axis=0).max()) ** 2
    length = 2 * n_taps * max(rows, c_group) + 2 * len(lags) + 16
    return _GramSeries(lags, terms, k, gamma(length) * scale)


def _entry_error(layer: PeriodicLayer) -> float:
    """Bound on :math:`\\|\\hat W_\\text{computed}(f) - \\hat W(f)\\|_2` for every f."""
    taps = math.prod(layer.weight.shape[2:])
    l1 = np.abs(layer.weight).reshape(*layer.weight.shape[:2], -1).sum(axis=-1)
    # phases exact to a few units in the last place; a sum of `taps` complex products
    return gamma(2 * taps + 12) * float(np.sqrt((l1**2).sum()))


def _chunk_size(layer: PeriodicLayer, series: _GramSeries, max_bytes: int | None) -> int:
    """Frequencies per chunk: the Gram matrices, their copies and exponentials fit half
    the budget (the series itself is checked first)."""
    k, lags = series.size, series.lags.shape[0]
    per_frequency = 16 * (lags + 4 * layer.groups * k * k)
    fixed = series.terms.nbytes
    what = f"per-frequency Gram matrices of a periodic layer ({k} x {k}, {layer.groups} groups)"
    check_budget(fixed + 256 * per_frequency, what, max_bytes=max_bytes)
    budget = resolve_budget(max_bytes)
    fit = (budget // 2 - fixed) // per_frequency
    return int(max(256, min(layer.n_frequencies, fit, 1 << 15)))


def _frequency_chunks(layer: PeriodicLayer, size: int, frequencies: np.ndarray | None = None):
    everything = _half_spectrum(layer) if frequencies is None else frequencies
    for lo in range(0, everything.size, size):
        yield everything[lo : lo + size]


def _half_spectrum(layer: PeriodicLayer) -> np.ndarray:
    """Every frequency, or one of each pair f, -f when the weight is real (G(-f) = conj G(f))."""
    everything = np.arange(layer.n_frequencies)
    if np.iscomplexobj(layer.weight):
        return everything
    f = np.stack(np.unravel_index(everything, layer.coarse), axis=0)
    negative = np.ravel_multi_index(tuple(-f % np.array(layer.coarse)[:, None]), layer.coarse)
    return everything[everything <= negative]


def periodic_norm_bracket(
    layer: PeriodicLayer, *, max_bytes: int | None = None, rtol: float = 4e-9
) -> tuple[float, float, tuple[int, int, np.ndarray]]:
    """Proven ``lower <= ||C|| <= upper`` for a periodic layer ``C``.

    Parameters
    ----------
    layer : PeriodicLayer
    max_bytes : int, optional
        Memory budget for the chunks of per-frequency matrices.
    rtol : float
        Relative width aimed at (met down to the rounding of the per-frequency
        matrices; a norm below that rounding gets the rounding as its upper end).

    Returns
    -------
    lower, upper : float
    witness : (frequency, group, vector)
        Where the largest singular value sits: a flat frequency index, a group,
        and the top right singular vector of that :math:`\\hat W(f)`.
    """
    series = _gram_series(layer, max_bytes)
    size = _chunk_size(layer, series, max_bytes)
    estimate, where, _ = _estimate(layer, series, size)
    margin = max(min(rtol / 4, 1e-9), 8 * UNIT_ROUNDOFF)
    target = _verify_below(layer, series, size, estimate * (1 + margin) + 1e-150, margin)
    phase, shift = _tap_tables(layer)
    placed = _placed_weight(layer, phase)
    lower, vector = _witness_lower(layer, placed, shift, where)
    return max(0.0, lower - _entry_error(layer)), target, (*where, vector)


def _largest_eigenvalues(layer, series, frequencies, smallest: bool = False) -> np.ndarray:
    """Per frequency and group, the largest eigenvalue of G(f) (``smallest``: minus the
    smallest, so that larger is more extreme either way)."""
    values = np.linalg.eigvalsh(series.at(layer, frequencies))
    extreme = -values[:, 0] if smallest else values[:, -1]
    return extreme.reshape(len(frequencies), layer.groups)


def _estimate(layer, series, size, smallest: bool = False) -> tuple[float, tuple[int, int], bool]:
    """Largest (or smallest) singular value of :math:`\\hat W(f)` over the frequencies
    (sampled on a coarser grid and refined around the best samples when there are
    many), and where."""
    k, d = series.size, len(layer.coarse)
    flops = 10.0 * layer.n_frequencies * layer.groups * k**3
    step = max(1, math.ceil((flops / EXACT_ESTIMATE_FLOPS) ** (1 / d)))
    if step == 1:
        candidates = _half_spectrum(layer)
    else:
        grid = np.meshgrid(*(np.arange(0, m, step) for m in layer.coarse), indexing="ij")
        coarse_points = np.ravel_multi_index(tuple(g.ravel() for g in grid), layer.coarse)
        values = np.concatenate(
            [
                _largest_eigenvalues(layer, series, c, smallest).max(axis=1)
                for c in _frequency_chunks(layer, size, coarse_points)
            ]
        )
        best = coarse_points[np.argsort(values)[-REFINED_SAMPLES:]]
        candidates = np.unique(np.concatenate([_neighbourhood(layer, b, step) for b in best]))
    top, where = -math.inf, (0, 0)
    for chunk in _frequency_chunks(layer, size, candidates):
        values = _largest_eigenvalues(layer, series, chunk, smallest)
        flat = int(np.argmax(values))
        if values.flat[flat] > top:
            f, g = np.unravel_index(flat, values.shape)
            top, where = float(values.flat[flat]), (int(chunk[f]), int(g))
    return math.sqrt(max(-top if smallest else top, 0.0)), where, step > 1


def _neighbourhood(layer: PeriodicLayer, flat: int, radius: int) -> np.ndarray:
    centre = np.unravel_index(flat, layer.coarse)
    axes = [np.arange(c - radius, c + radius + 1) % m for c, m in zip(centre, layer.coarse)]
    grid = np.meshgrid(*axes, indexing="ij")
    return np.ravel_multi_index(tuple(g.ravel() for g in grid), layer.coarse)


def _verify_below(layer, series, size, target: float, margin: float) -> float:
    """The smallest bound proven here: :math:`G(f) \\prec t^2 I` for every f (so every
    :math:`\\|\\hat W(f)\\|_2 < t`), starting at ``target`` and raised, in one pass, to
    cover any batch of frequencies where the proof fails (a batch proven below a
    bound is proven below every larger one).

    A raise goes at least to where the shifted factorization must succeed: above the
    batch's largest eigenvalue plus twice the Gram matrices' rounding (the floor for a
    norm at the rounding level); repeated failures double the step, so the pass ends."""
    k = series.size
    relative_shift = gamma(k + 4) * k + 4 * UNIT_ROUNDOFF
    for chunk in _frequency_chunks(layer, size):
        grams = series.at(layer, chunk)
        for lo in range(0, grams.shape[0], SUB_CHUNK):
            batch = grams[lo : lo + SUB_CHUNK]
            step = margin
            while not _proven_definite(batch, target**2, -1.0, series.error, target**2):
                largest = float(np.linalg.eigvalsh(batch)[:, -1].max())
                needed = (max(largest, 0.0) + 2 * series.error) / (1 - 2 * relative_shift)
                target = max(target * (1 + step), math.sqrt(needed) * (1 + margin))
                step *= 2
    return target


def _proven_definite(batch: np.ndarray, alpha: float, sign: float, error: float, scale: float):
    """Whether :math:`\\alpha I + \\text{sign}\\, G \\succ 0` is proven for every Gram matrix G
    of the batch: a Cholesky factorization that succeeds after a shift by Rump's bound for
    a k x k matrix, the Gram matrix's own ``error`` and the diagonal's rounding (``scale``
    bounds :math:`|\\alpha|` and the diagonal)."""
    k = batch.shape[-1]
    shift = gamma(k + 4) * k * scale + error + 4 * UNIT_ROUNDOFF * scale
    shifted = sign * batch
    shifted[:, np.arange(k), np.arange(k)] += alpha - shift
    try:
        np.linalg.cholesky(shifted)
    except np.linalg.LinAlgError:
        return False
    return True


def periodic_grams(layer: PeriodicLayer, *, max_bytes: int | None = None):
    """Every frequency's smaller Gram matrix, in chunks, with what a count needs.

    Yields
    ------
    grams : numpy.ndarray
        ``(F * groups, k, k)`` Hermitian matrices.
    multiplicity : numpy.ndarray
        ``(F * groups,)``: 2 where a real weight's frequency stands for itself and its
        conjugate (the same eigenvalues), else 1.
    error : float
        Bound on the 2-norm of each computed Gram matrix's error.
    """
    series = _gram_series(layer, max_bytes)
    size = _chunk_size(layer, series, max_bytes)
    coarse = np.array(layer.coarse)
    for chunk in _frequency_chunks(layer, size):
        if np.iscomplexobj(layer.weight):
            twice = np.zeros(chunk.size, dtype=bool)
        else:
            f = np.stack(np.unravel_index(chunk, layer.coarse), axis=0)
            negative = np.ravel_multi_index(tuple(-f % coarse[:, None]), layer.coarse)
            twice = negative != chunk
        multiplicity = np.repeat(np.where(twice, 2, 1), layer.groups)
        yield series.at(layer, chunk), multiplicity, series.error


def periodic_min_bracket(
    layer: PeriodicLayer, *, max_bytes: int | None = None
) -> tuple[float, float]:
    """Proven bounds of the smallest singular value of a periodic layer (the smallest of
    its ``min(shape)`` values, each frequency's ``min(rows, cols)``).

    The lower end is proven by a Cholesky factorization of
    :math:`G(f) - \\ell^2 I` at every frequency (shifted by its rounding), the upper
    end by an explicit vector at the frequency where the minimum sits.
    """
    series = _gram_series(layer, max_bytes)
    size = _chunk_size(layer, series, max_bytes)
    estimate, where, _ = _estimate(layer, series, size, smallest=True)
    target = _verify_above(layer, series, size, estimate * (1 - 1e-9))
    phase, shift = _tap_tables(layer)
    placed = _placed_weight(layer, phase)
    symbol = _symbol_chunk(layer, placed, shift, np.array([where[0]]))[0, where[1]]
    left, _, right = np.linalg.svd(symbol, full_matrices=False)
    rows, cols = symbol.shape
    vector = left[:, -1] if rows <= cols else np.conj(right[-1])
    image = np.conj(symbol.T) @ vector if rows <= cols else symbol @ vector
    rounding = gamma(max(rows, cols) + 4) * float(np.linalg.norm(symbol))
    growth = gamma(rows + cols + 8)
    upper = (float(np.linalg.norm(image)) + rounding) * (1 + growth) / (1 - growth)
    return max(0.0, target), upper + _entry_error(layer)


def _verify_above(layer, series, size, target: float) -> float:
    """The largest bound proven here: :math:`G(f) \\succ t^2 I` for every f, starting at
    ``target`` and lowered, in one pass, where a batch's proof fails (0 proves nothing
    and needs no proof)."""
    k = series.size
    scale = float(np.abs(series.terms).sum(axis=0).max())  # bounds every |G(f)_ij|
    for chunk in _frequency_chunks(layer, size):
        grams = series.at(layer, chunk)
        for lo in range(0, grams.shape[0], SUB_CHUNK):
            batch = grams[lo : lo + SUB_CHUNK]
            step = 1e-9
            while target > 0 and not _proven_definite(
                batch, -(target**2), 1.0, series.error, max(scale, target**2)
            ):
                smallest = float(np.linalg.eigvalsh(batch)[:, 0].min())
                shift = gamma(k + 4) * k * scale + series.error
                value = math.sqrt(max(smallest - 2 * shift, 0.0)) * (1 - 1e-9)
                target = min(target * (1 - step), value) if step < 0.5 else 0.0
                step *= 2
    return max(target, 0.0)


def _witness_lower(layer, placed, shift, where) -> tuple[float, np.ndarray]:
    """:math:`\\|\\hat W(f) v\\| / \\|v\\|` at the top frequency, minus its rounding."""
    frequency, group = where
    symbol = _symbol_chunk(layer, placed, shift, np.array([frequency]))[0, group]
    _, _, right = np.linalg.svd(symbol)
    vector = np.conj(right[0])
    image = symbol @ vector
    rounding = gamma(symbol.shape[1] + 4) * float(np.linalg.norm(symbol))
    value = float(np.linalg.norm(image)) / float(np.linalg.norm(vector))
    return value * (1 - gamma(2 * symbol.shape[0] + 8)) - rounding, vector
