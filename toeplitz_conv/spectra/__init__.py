"""Singular values of layers: exact ones (:mod:`.spectral`: FFT, dense, Lanczos) and
proven brackets (:mod:`.certified`: the spectral norm; :mod:`.singular_bounds`: the
smallest singular value, condition numbers, counts), with their proofs: per-frequency
Cholesky proofs of circular layers (:mod:`.symbol`), the Collatz-Wielandt bound of
layers with taps of one sign (:mod:`.perron`), the banded Gram matrix with
verified Cholesky and LDL^H inertia (:mod:`.banded`), one group as a layer and the
rounding of the assembled matrix (:mod:`.layer_gram`).

Imports :mod:`toeplitz_conv.core` and :mod:`toeplitz_conv.layers`.
"""

from ..core.exports import lazy_exports

# each public name and the module below this one that defines it (imported on first use)
_HOMES = {
    "norm_bounds": "certified",
    "NormBounds": "brackets",
    "CertifiedWidthWarning": "brackets",
    "spectral_norm": "spectral",
    "singular_values": "spectral",
    "frequency_matrices": "spectral",
    "min_singular_value_bounds": "singular_bounds",
    "condition_number_bounds": "singular_bounds",
    "count_singular_values": "singular_bounds",
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
__all__ = sorted(_HOMES)
