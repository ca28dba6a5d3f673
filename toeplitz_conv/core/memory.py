"""Memory budget: refuse to build a matrix that would not fit.

Every explicit matrix (sparse or dense) is sized before it is allocated and
compared with a budget. The default budget is a fraction of the memory
available when the check runs; :func:`set_memory_budget` or a ``max_bytes``
argument overrides it.
"""

from __future__ import annotations

import numbers
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import ParameterError, ParameterTypeError

__all__ = [
    "BudgetAboveMemoryWarning",
    "MatrixTooLargeError",
    "available_memory",
    "check_budget",
    "checked_max_bytes",
    "format_bytes",
    "memory_budget",
    "parse_size",
    "resolve_budget",
    "set_memory_budget",
    "using_memory_budget",
]

DEFAULT_FRACTION = 0.5
PYTHON_HINT = (
    "pass max_bytes=... or call toeplitz_conv.set_memory_budget() to allow it, "
    "or use the operator matrix-free"
)
SIZE_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_budget_override: int | None = None


class MatrixTooLargeError(MemoryError):
    """An explicit matrix (or other large array) would exceed the memory budget.

    Parameters
    ----------
    what : str
        What was about to be built.
    nbytes : int
        Its size in bytes.
    budget : int
        The budget it exceeds.
    hint : str
        How to allow it (the command line names its flag instead).
    """

    def __init__(self, what: str, nbytes: int, budget: int, hint: str = PYTHON_HINT) -> None:
        self.what, self.nbytes, self.budget = what, int(nbytes), int(budget)
        super().__init__(self.describe(hint))

    def describe(self, hint: str) -> str:
        """The refusal as one sentence ending in ``hint``."""
        return (
            f"refusing to build the {self.what}: it needs {format_bytes(self.nbytes)} "
            f"({self.nbytes} bytes) but the memory budget is {format_bytes(self.budget)}; {hint}"
        )

    def __reduce__(self):
        return type(self), (self.what, self.nbytes, self.budget)


class BudgetAboveMemoryWarning(RuntimeWarning):
    """A memory budget larger than the machine's memory: it no longer stops a build
    that cannot fit (the process would swap or be killed instead)."""


def total_memory() -> int:
    """Bytes of physical memory of this machine."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def budget_above_memory(max_bytes: int) -> str:
    """A sentence saying that ``max_bytes`` exceeds the machine's memory, or ``""``."""
    total = total_memory()
    if max_bytes <= total:
        return ""
    return (
        f"the memory budget {format_bytes(max_bytes)} is more than this machine's memory "
        f"({format_bytes(total)}): it will not stop a build that cannot fit"
    )


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` on Linux)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def set_memory_budget(max_bytes: int | None) -> None:
    """Set the default budget in bytes for explicit matrices (``None``: automatic).

    Parameters
    ----------
    max_bytes : int or None
        The budget; ``None`` restores ``DEFAULT_FRACTION`` of available memory.

    Warns
    -----
    BudgetAboveMemoryWarning
        When ``max_bytes`` is more than the machine's physical memory.
    """
    global _budget_override
    _budget_override = None if max_bytes is None else checked_max_bytes(max_bytes)
    beyond = None if max_bytes is None else budget_above_memory(_budget_override)
    if beyond:
        warnings.warn(beyond, BudgetAboveMemoryWarning, stacklevel=2)


@contextmanager
def using_memory_budget(max_bytes: int | None) -> Iterator[None]:
    """Within the block, the default budget is ``max_bytes`` (``None``: unchanged).

    Parameters
    ----------
    max_bytes : int or None
    """
    global _budget_override
    previous = _budget_override
    if max_bytes is not None:
        set_memory_budget(max_bytes)
    try:
        yield
    finally:
        _budget_override = previous


def parse_size(text: str) -> int:
    """Bytes from a size such as ``"500M"``, ``"2G"``, ``"1.5GB"`` or ``"4096"``.

    Units are decimal: K = 10**3, M = 10**6, G = 10**9, T = 10**12.

    Parameters
    ----------
    text : str

    Raises
    ------
    ValueError
        When ``text`` is not a positive size.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]?)B?\s*", text, re.IGNORECASE)
    if match is None:
        raise ValueError(f"expected a size such as 500M, 2G or 4096 (bytes); got {text!r}")
    nbytes = int(float(match.group(1)) * SIZE_UNITS[match.group(2).upper()])
    if nbytes < 1:
        raise ValueError(f"a size must be at least 1 byte; got {text!r}")
    return nbytes


def checked_max_bytes(max_bytes: object, parameter: str = "max_bytes") -> int:
    """``max_bytes`` as an ``int`` when it is a whole number of bytes >= 1 (numpy integers
    too), else a parameter error naming it (``True`` is no size)."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral):
        raise ParameterTypeError(
            parameter,
            f"{parameter} must be a whole number of bytes (or None); got {max_bytes!r}"
            + (
                " (parse sizes such as '1G' with toeplitz_conv.core.memory.parse_size)"
                if isinstance(max_bytes, str)
                else ""
            ),
        )
    if max_bytes < 1:
        raise ParameterError(parameter, f"{parameter} must be at least 1 byte; got {max_bytes!r}")
    return int(max_bytes)


def resolve_budget(max_bytes: object = None) -> int:
    """The budget of one call: :func:`memory_budget` for ``None``, else ``max_bytes``
    checked by :func:`checked_max_bytes`."""
    return memory_budget() if max_bytes is None else checked_max_bytes(max_bytes)


def memory_budget() -> int:
    """The budget in force, in bytes."""
    if _budget_override is not None:
        return _budget_override
    return int(DEFAULT_FRACTION * available_memory())


def check_budget(nbytes: int, what: str, *, max_bytes: int | None = None) -> None:
    """Raise :class:`MatrixTooLargeError` when ``nbytes`` exceeds the budget.

    Parameters
    ----------
    nbytes : int
        Size of the object about to be built.
    what : str
        Description for the message (e.g. ``"CSR matrix with 2.4e9 nonzeros"``).
    max_bytes : int, optional
        Budget for this call; default :func:`memory_budget`.
    """
    budget = resolve_budget(max_bytes)
    if nbytes > budget:
        raise MatrixTooLargeError(what, nbytes, budget)


def format_bytes(nbytes: float) -> str:
    """Human-readable size, e.g. ``'28.9 GB'``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(nbytes) < 1000 or unit == "TB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1000
    raise AssertionError("unreachable")
