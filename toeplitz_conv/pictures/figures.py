"""Whole pictures of a layer, and saving them safely (matplotlib, the ``plot`` extra).

:mod:`toeplitz_conv.pictures.plot` draws one panel on an axes; this module composes
panels into the figures that ``toeplitz-conv show``, the demo and the README
use, and saves figures atomically (a temporary file, checked, then renamed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..core.files import write_atomically
from ..layers.conv import ConvOperator

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PICTURE_SUFFIXES", "layer_figure", "require_matplotlib", "save_figure"]

# formats matplotlib writes with its default dependencies
PICTURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".tif", ".tiff", ".eps", ".ps")
DPI = 110
# no creation dates or versions in the files: the same picture gives the same bytes
REPRODUCIBLE_METADATA = {
    ".png": {"Software": None},
    ".pdf": {"CreationDate": None, "Producer": None, "Creator": None},
    ".svg": {"Date": None, "Creator": None},
}


def require_matplotlib() -> None:
    """Raise :class:`ImportError` naming matplotlib when it is not installed."""
    import matplotlib

    matplotlib.use("Agg")


def layer_figure(op: ConvOperator, *, max_bytes: int | None = None) -> Figure:
    """The grid of kernels beside the whole matrix, with one colour per group.

    Drawn from the layer's structure, in memory bounded by the picture and the
    pattern of one block, never by the matrix.

    Parameters
    ----------
    op : Conv or ConvTranspose
    max_bytes : int, optional
        Memory budget for the pattern and the raster.
    """
    import matplotlib.pyplot as plt

    from .plot import plot_block_pattern, plot_matrix

    fig, axes = plt.subplots(1, 2, figsize=(11, 5), width_ratios=(1, 1.6), layout="constrained")
    plot_block_pattern(op, axes[0])
    plot_matrix(op, axes[1], max_bytes=max_bytes)
    return fig


def save_figure(fig: Figure, path: Path | str, *, dpi: int = DPI) -> Path:
    """Save ``fig`` to ``path`` atomically, check the file, and close the figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : path-like
        Its suffix (one of ``PICTURE_SUFFIXES``) sets the format.
    dpi : int

    Returns
    -------
    pathlib.Path
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    suffix = path.suffix.lower()

    def write(temporary: Path) -> None:
        fig.savefig(
            temporary,
            format=suffix.lstrip("."),
            dpi=dpi,
            bbox_inches="tight",
            metadata=REPRODUCIBLE_METADATA.get(suffix),
        )

    try:
        return write_atomically(path, write, _verify_picture)
    finally:
        plt.close(fig)


def _verify_picture(path: Path) -> None:
    if path.stat().st_size == 0:
        raise OSError(f"{path}: the picture is empty")
    if path.suffix.lower() == ".png":
        import matplotlib.image

        matplotlib.image.imread(path)
