"""Other libraries: PyTorch modules as operators (:mod:`.torch_interop`), a PyTorch
model's conv layers and their proven Lipschitz report (:mod:`.networks`), the adjoint
check against PyTorch and autograd (:mod:`.adjoint`), and operators spread over MPI ranks
with pylops-mpi (:mod:`.mpi`). Each imports its library on use.

Imports :mod:`toeplitz_conv.core`, :mod:`toeplitz_conv.engines`,
:mod:`toeplitz_conv.layers` and :mod:`toeplitz_conv.spectra`.
"""

from ..core.exports import lazy_exports

# each public name and the module below this one that defines it (imported on first use)
_HOMES = {
    "from_torch": "torch_interop",
    "conv_layers": "networks",
    "lipschitz_report": "networks",
    "LipschitzReport": "networks",
    "check_adjoint": "adjoint",
    "AdjointCheck": "adjoint",
    "distribute": "mpi",
    "scatter": "mpi",
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
__all__ = sorted(_HOMES)
