"""Layers as linear operators: :class:`~.layer.Layer` owns a layer's state and caches,
:class:`~.conv_operator.ConvOperator` is the ``pylops.LinearOperator`` view of it, and
:mod:`.conv` defines :class:`~.conv.Conv` and :class:`~.conv.ConvTranspose`;
:mod:`.summary` describes one in text.

Imports :mod:`toeplitz_conv.core` and :mod:`toeplitz_conv.engines` (the engines a layer
binds), and pylops.
"""

from ..core.exports import lazy_exports

# each public name and the module below this one that defines it (imported on first use)
_HOMES = {
    "Conv": "conv",
    "ConvTranspose": "conv",
    "ConvOperator": "conv",
    "Layer": "layer",
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
__all__ = sorted(_HOMES)
