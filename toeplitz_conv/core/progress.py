"""Progress bars for long work (tqdm): on a terminal by default, silent otherwise."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["progress_bar", "progress_enabled", "set_progress"]

_enabled: bool | None = None


def set_progress(enabled: bool | None) -> None:
    """Show progress bars always (``True``), never (``False``) or on a terminal (``None``)."""
    global _enabled
    if enabled not in (True, False, None):
        raise ValueError(f"enabled must be True, False or None; got {enabled!r}")
    _enabled = enabled


def progress_enabled() -> bool:
    """Whether progress bars are shown now."""
    if _enabled is None:
        return sys.stderr.isatty()
    return _enabled


def progress_bar(total: int, description: str, unit: str = "it", delay: float = 0.0) -> tqdm:
    """A tqdm bar on stderr that is disabled unless :func:`progress_enabled` (and appears
    only after ``delay`` seconds)."""
    return tqdm(
        delay=delay,
        total=total,
        desc=description,
        unit=unit,
        unit_scale=True,
        disable=not progress_enabled(),
        file=sys.stderr,
        leave=False,
    )
