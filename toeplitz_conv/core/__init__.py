"""The layer's geometry and its matrix: the bottom of the package.

Owns what a conv layer *is* before any product is computed: the parameter
errors (:mod:`.errors`), the padding modes (:mod:`.padding`), shapes and index
maps (:mod:`.geometry`), weights (:mod:`.weights`), the scalar Toeplitz and
circulant blocks (:mod:`.blocks`) and the block matrix assembled from them
(:mod:`.block_matrix`, with its compiled fill in :mod:`._assembly_numba`), and
the services every layer uses: the memory guard (:mod:`.memory`), progress bars
(:mod:`.progress`), numba and threads (:mod:`.jit`), safe files (:mod:`.files`).

Imports only numpy, scipy and the standard library (numba where installed): no
other subpackage of ``toeplitz_conv``.
"""

from .exports import lazy_exports

# each public name and the module below this one that defines it (imported on first use)
_HOMES = {
    "Geometry": "geometry",
    "conv_geometry": "geometry",
    "transpose_geometry": "transposition",
    "kernel_block": "blocks",
    "PADDING_MODES": "padding",
    "ParameterError": "errors",
    "ParameterTypeError": "errors",
    "MatrixTooLargeError": "memory",
    "memory_budget": "memory",
    "set_memory_budget": "memory",
    "blas_on_one_thread": "jit",
    "set_progress": "progress",
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
__all__ = sorted(_HOMES)
