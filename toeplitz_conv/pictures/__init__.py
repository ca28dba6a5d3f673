"""Pictures of a layer (matplotlib, the ``plot`` extra): panels (:mod:`.plot`), whole
figures saved atomically (:mod:`.figures`), and the binned matrix computed from the
layer's structure, in memory bounded by the picture (:mod:`.raster`).

Imports :mod:`toeplitz_conv.core` and :mod:`toeplitz_conv.layers`.
"""

from ..core.exports import lazy_exports

# each public name and the module below this one that defines it (imported on first use)
_HOMES = {
    "plot_block": "plot",
    "plot_block_pattern": "plot",
    "plot_matrix": "plot",
    "plot_singular_values": "plot",
    "layer_figure": "figures",
    "save_figure": "figures",
    "cross_channel_blur": "samples",
    "psnr": "samples",
    "sample_image": "samples",
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
__all__ = sorted(_HOMES)
