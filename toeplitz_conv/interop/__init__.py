"""Other libraries: PyTorch modules as operators (:mod:`.torch_interop`), a PyTorch
model's conv layers and their proven Lipschitz report (:mod:`.networks`), the adjoint
check against PyTorch and autograd (:mod:`.adjoint`), and operators spread over MPI ranks
with pylops-mpi (:mod:`.mpi`). Each imports its library on use.

Imports :mod:`toeplitz_conv.core`, :mod:`toeplitz_conv.engines`,
:mod:`toeplitz_conv.layers` and :mod:`toeplitz_conv.spectra`.
"""

__all__: list[str] = []
