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

__all__: list[str] = []
