"""Padding modes: the one table of boundary rules, and how paddings are resolved.

A padding mode says which input sample a padded position :math:`q` reads, for an
axis of size :math:`n`:

.. math::

    \\text{zeros: } q \\text{ if } 0 \\le q < n \\text{, else none}; \\quad
    \\text{circular: } q \\bmod n; \\quad
    \\text{replicate: } \\min(\\max(q, 0), n - 1); \\quad
    \\text{reflect: } |q| \\text{ mirrored at } n - 1.

Every module that needs to know something about a mode (the geometry's checks,
the block structure, the engines, the summary, PyTorch's name for it) reads it
from :data:`PADDING_MODES`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError, ParameterTypeError

__all__ = [
    "PADDING_MODES",
    "PaddingLike",
    "PaddingMode",
    "axis_nnz",
    "check_int",
    "output_size",
    "padding_mode",
    "resolve_padding",
]

PaddingLike = int | str | Sequence[int] | Sequence[Sequence[int]]
PADDING_STRINGS = ("valid", "same")
INT_LIMIT = 2**31 - 1  # largest size, pad, stride or dilation accepted
EDGE_CHUNK = 2**20  # reads of edge rows counted per step by axis_nnz


def _zeros(q: np.ndarray, n: int) -> np.ndarray:
    return np.where((q >= 0) & (q < n), q, -1)


def _circular(q: np.ndarray, n: int) -> np.ndarray:
    return np.mod(q, n)


def _replicate(q: np.ndarray, n: int) -> np.ndarray:
    return np.clip(q, 0, n - 1)


def _reflect(q: np.ndarray, n: int) -> np.ndarray:
    # the edge sample is not repeated; pads < n, so one reflection suffices
    q = np.abs(q)
    return np.where(q > n - 1, 2 * (n - 1) - q, q)


@dataclass(frozen=True)
class PaddingMode:
    """One boundary rule.

    Attributes
    ----------
    name : str
        The ``padding_mode`` value (PyTorch's).
    torch_pad_mode : str or None
        ``torch.nn.functional.pad``'s name for it (``None``: not through ``F.pad``,
        as circular padding that wraps more than once).
    block : str
        What a scalar block becomes: "Toeplitz", "circulant", ...
    description : str
        One line on what reads outside the input see.
    pad_below_size : bool
        Whether each pad must be smaller than the axis (reflect, as in PyTorch).
    fold : callable
        ``fold(q, n)``: the input index read at padded positions ``q`` (``-1``: a zero).
    """

    name: str
    torch_pad_mode: str | None
    block: str
    description: str
    pad_below_size: bool
    fold: Callable[[np.ndarray, int], np.ndarray]

    @property
    def drops_reads(self) -> bool:
        """Whether reads outside the input are zeros (no matrix entry) rather than folded."""
        return self.name == "zeros"

    def check_pads(self, pads: Sequence[tuple[int, int]], spatial: Sequence[int]) -> None:
        """Refuse pads this mode cannot apply (reflect: each pad below the axis size)."""
        if not self.pad_below_size:
            return
        for axis, ((pb, pa), n) in enumerate(zip(pads, spatial)):
            if max(pb, pa) >= n:
                raise ParameterError(
                    "padding",
                    f"padding_mode={self.name!r} needs each pad < input size (as PyTorch); "
                    f"spatial axis {axis} has size {n} and pads ({pb}, {pa})",
                )


PADDING_MODES: dict[str, PaddingMode] = {
    mode.name: mode
    for mode in (
        PaddingMode(
            "zeros", "constant", "Toeplitz", "reads outside the input are zero", False, _zeros
        ),
        PaddingMode(
            "circular",
            None,
            "circulant",
            "reads wrap around to the other side (any number of times)",
            False,
            _circular,
        ),
        PaddingMode(
            "reflect",
            "reflect",
            "Toeplitz, boundary folded",
            "reads outside are mirrored back in (edge not repeated)",
            True,
            _reflect,
        ),
        PaddingMode(
            "replicate",
            "replicate",
            "Toeplitz, boundary folded",
            "reads outside are clamped to the edge sample",
            False,
            _replicate,
        ),
    )
}


def padding_mode(name: object) -> PaddingMode:
    """The :class:`PaddingMode` called ``name``, or a :class:`ParameterError` naming them."""
    if not isinstance(name, str) or name not in PADDING_MODES:
        raise ParameterError(
            "padding_mode", f"padding_mode must be one of {tuple(PADDING_MODES)}; got {name!r}"
        )
    return PADDING_MODES[name]


def check_int(value: object, name: str, *, minimum: int, maximum: int = INT_LIMIT) -> int:
    """``value`` as an int in ``[minimum, maximum]``, or an error naming the parameter.

    The default ``maximum`` (``2**31 - 1``) bounds sizes, pads, strides and
    dilations far beyond any layer, so that no later product of them overflows.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterTypeError(name, f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ParameterError(name, f"{name} must be >= {minimum}; got {value}")
    if value > maximum:
        raise ParameterError(name, f"{name} must be <= {maximum}; got {value}")
    return int(value)


def resolve_padding(
    padding: PaddingLike,
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> tuple[tuple[int, int], ...]:
    """Turn any accepted ``padding`` form into ``(before, after)`` pairs per axis."""
    d = len(spatial)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * d
        if padding == "same":
            return tuple(
                same_pads(n, k, s, dil) for n, k, s, dil in zip(spatial, kernel, stride, dilation)
            )
        raise ParameterError(
            "padding",
            f"padding must be an int, a per-axis tuple, per-axis (before, after) pairs, "
            f"or one of {PADDING_STRINGS}; got {padding!r}",
        )
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        p = check_int(padding, "padding", minimum=0)
        return ((p, p),) * d
    if not isinstance(padding, Sequence) or len(padding) != d:
        raise ParameterError(
            "padding",
            f"padding must be an int, {d} per-axis ints, {d} (before, after) pairs, "
            f"'valid' or 'same'; got {padding!r}",
        )
    pairs = []
    for item in padding:
        if isinstance(item, Sequence) and not isinstance(item, str):
            if len(item) != 2:
                raise ParameterError(
                    "padding", f"each padding pair must be (before, after); got {item!r}"
                )
            pairs.append(tuple(check_int(v, "padding", minimum=0) for v in item))
        else:
            p = check_int(item, "padding", minimum=0)
            pairs.append((p, p))
    return tuple(pairs)


def same_pads(n: int, k: int, s: int, dil: int) -> tuple[int, int]:
    """``(before, after)`` pads of ``padding="same"`` for one axis.

    Stride 1: total :math:`\\delta (k - 1)`, ``total // 2`` before (PyTorch).
    Stride > 1: ONNX ``SAME_UPPER``, output :math:`\\lceil n / s \\rceil`.
    """
    m = -(-n // s)
    total = max(0, (m - 1) * s + dil * (k - 1) + 1 - n)
    return (total // 2, total - total // 2)


def count_in_range(m: int, s: int, offset: int, n: int) -> int:
    """How many ``o`` in ``[0, m)`` have ``0 <= o s + offset < n``."""
    lo = max(0, -(offset // s))
    hi = min(m - 1, (n - 1 - offset) // s)
    return max(0, hi - lo + 1)


def axis_nnz(m: int, s: int, k: int, dil: int, before: int, n: int, mode: PaddingMode) -> int:
    """Distinct (output, input) pairs of one axis: the nonzeros of its 1-D block.

    Closed form for zeros (reads in range) and circular (every row reads a
    translate of :math:`\\{t \\delta \\bmod n\\}`); for the folding modes the rows
    that read no pad hold ``k`` entries and the rows at the edges are counted
    through the fold rule, ``EDGE_CHUNK`` reads at a time (no index arrays of the
    axis's size).
    """
    if mode.name == "zeros":
        return sum(count_in_range(m, s, t * dil - before, n) for t in range(k))
    if mode.name == "circular":
        return m * len({(t * dil) % n for t in range(k)})
    span = dil * (k - 1)
    first_interior = min(m, -(-before // s))  # rows before it read a pad before the input
    first_high = min(m, max(0, -(-(n + before - span) // s)))  # from it on: a pad after
    edges = ((0, first_interior), (max(first_interior, first_high), m))
    total = max(0, first_high - first_interior) * k
    taps = np.arange(k) * dil - before
    step = max(1, EDGE_CHUNK // k)
    for start, stop in edges:
        for lo in range(start, stop, step):
            rows = np.arange(lo, min(lo + step, stop))
            read = np.sort(mode.fold(rows[:, None] * s + taps[None, :], n), axis=1)
            total += rows.size + int(np.count_nonzero(np.diff(read, axis=1)))
    return total


def output_size(n: int, k: int, s: int, dil: int, total_pad: int, axis: int) -> int:
    """Outputs of one axis, or a :class:`ParameterError` when the kernel does not fit."""
    span = dil * (k - 1) + 1
    if span > n + total_pad:
        raise ParameterError(
            "input_shape",
            f"kernel (dilated size {span}) is larger than the padded input "
            f"({n} + padding {total_pad}) along spatial axis {axis}; "
            f"use a smaller kernel or dilation, or more padding",
        )
    return (n + total_pad - span) // s + 1
