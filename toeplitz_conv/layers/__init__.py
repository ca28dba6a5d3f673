"""Layers as linear operators: :class:`~.layer.Layer` owns a layer's state and caches,
:class:`~.conv_operator.ConvOperator` is the ``pylops.LinearOperator`` view of it, and
:mod:`.conv` defines :class:`~.conv.Conv` and :class:`~.conv.ConvTranspose`;
:mod:`.summary` describes one in text.

Imports :mod:`toeplitz_conv.core` and :mod:`toeplitz_conv.engines` (the engines a layer
binds), and pylops.
"""

__all__: list[str] = []
