"""Memory budget: refuse to build a matrix that would not fit.

Every explicit matrix (sparse or dense) is sized before it is allocated and
compared with a budget. The default budget is a fraction of the memory
available when the check runs; :func:`set_memory_budget` or a ``max_bytes``
argument overrides it.
"""

from __future__ import annotations

import os

__all__ = [
    "MatrixTooLargeError",
    "available_memory",
    "check_budget",
    "format_bytes",
    "memory_budget",
    "set_memory_budget",
]

DEFAULT_FRACTION = 0.5
_budget_override: int | None = None


class MatrixTooLargeError(MemoryError):
    """An explicit matrix would exceed the memory budget."""


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
    """
    global _budget_override
    if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes <= 0):
        raise ValueError(f"max_bytes must be a positive int or None; got {max_bytes!r}")
    _budget_override = max_bytes


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
    budget = memory_budget() if max_bytes is None else max_bytes
    if nbytes > budget:
        raise MatrixTooLargeError(
            f"refusing to build the {what}: it needs {format_bytes(nbytes)} "
            f"({nbytes} bytes) but the memory budget is {format_bytes(budget)}; "
            f"pass max_bytes=... or call toeplitz_conv.set_memory_budget() to allow it, "
            f"or use the operator matrix-free"
        )


def format_bytes(nbytes: float) -> str:
    """Human-readable size, e.g. ``'28.9 GB'``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(nbytes) < 1000 or unit == "TB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1000
    raise AssertionError("unreachable")
