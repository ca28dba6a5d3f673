"""Pictures of a layer (matplotlib, the ``plot`` extra): panels (:mod:`.plot`), whole
figures saved atomically (:mod:`.figures`), and the binned matrix computed from the
layer's structure, in memory bounded by the picture (:mod:`.raster`).

Imports :mod:`toeplitz_conv.core` and :mod:`toeplitz_conv.layers`.
"""

__all__: list[str] = []
