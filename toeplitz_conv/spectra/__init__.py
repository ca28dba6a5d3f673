"""Singular values of layers: exact ones (:mod:`.spectral`: FFT, dense, Lanczos) and
proven brackets (:mod:`.certified`: the spectral norm; :mod:`.singular_bounds`: the
smallest singular value, condition numbers, counts), with their proofs: per-frequency
Cholesky proofs of circular layers (:mod:`.symbol`), the banded Gram matrix with
verified Cholesky and LDL^H inertia (:mod:`.banded`), one group as a layer and the
rounding of the assembled matrix (:mod:`.layer_gram`).

Imports :mod:`toeplitz_conv.core` and :mod:`toeplitz_conv.layers`.
"""

__all__: list[str] = []
