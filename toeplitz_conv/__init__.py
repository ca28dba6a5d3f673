"""toeplitz_conv: deep-learning conv layers as explicit sparse linear operators.

The package follows the picture of a conv layer as a channel-wise matrix-vector
product of convolutions, from geometry to operator, with the leaves beside it; each
subpackage imports only those above it in this list:

- :mod:`~toeplitz_conv.core`: padding modes, geometry and index maps, one kernel as a
  Toeplitz/circulant/folded block, the block matrix, the memory guard;
- :mod:`~toeplitz_conv.engines`: how products are computed (sparse, direct, numba);
- :mod:`~toeplitz_conv.layers`: :class:`Layer` (a layer's state and caches) and the
  operators :class:`Conv`, :class:`ConvTranspose`;
- :mod:`~toeplitz_conv.spectra`: singular values and proven norm brackets;
- :mod:`~toeplitz_conv.pictures`: plots of kernels, matrices and blocks (matplotlib);
- :mod:`~toeplitz_conv.interop`: PyTorch, Lipschitz reports, the adjoint check, MPI;
- :mod:`~toeplitz_conv.solve`: structured solves on the layer's diagonal form;
- :mod:`~toeplitz_conv.cli`: the ``toeplitz-conv`` command.

The public names of every subpackage are re-exported by it (``toeplitz_conv.pictures.
plot_matrix``), the most used ones here at the top.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from .core.exports import install_moved_modules, lazy_exports

# each public name and the module that defines it: imported on first use, so that
# `import toeplitz_conv` (and the command line's --help) does not pay for scipy,
# pylops and torch until an operator is built
_HOMES = {
    "AdjointCheck": "interop.adjoint",
    "check_adjoint": "interop.adjoint",
    "kernel_block": "core.blocks",
    "NormBounds": "spectra.brackets",
    "norm_bounds": "spectra.certified",
    "installed_engines": "engines",
    "ParameterError": "core.errors",
    "ParameterTypeError": "core.errors",
    "Geometry": "core.geometry",
    "conv_geometry": "core.geometry",
    "transpose_geometry": "core.transposition",
    "Layer": "layers.layer",
    "MatrixTooLargeError": "core.memory",
    "memory_budget": "core.memory",
    "set_memory_budget": "core.memory",
    "conv_layers": "interop.networks",
    "lipschitz_report": "interop.networks",
    "Conv": "layers.conv",
    "ConvOperator": "layers.conv",
    "ConvTranspose": "layers.conv",
    "PADDING_MODES": "core.padding",
    "condition_number_bounds": "spectra.singular_bounds",
    "count_singular_values": "spectra.singular_bounds",
    "min_singular_value_bounds": "spectra.singular_bounds",
    "singular_values": "spectra.spectral",
    "spectral_norm": "spectra.spectral",
    "from_torch": "interop.torch_interop",
    "SolveResult": "solve.tikhonov",
    "solve_tikhonov": "solve.tikhonov",
    "preconditioner": "solve.preconditioners",
    "choose_damp": "solve.parameters",
    "solve_penalized": "solve.penalized",
    "solve_tv": "solve.tv",
    "TVResult": "solve.tv",
    "total_variation": "solve.tv",
    "LeastSquaresProx": "solve.prox",
    "Gradient": "solve.gradient",
    "tv_norm_bounds": "solve.steps",
    "blas_on_one_thread": "core.jit",
    "set_progress": "core.progress",
}

if TYPE_CHECKING:  # for type checkers and editors: the eager imports
    from .core.blocks import kernel_block
    from .core.errors import ParameterError, ParameterTypeError
    from .core.geometry import Geometry, conv_geometry
    from .core.jit import blas_on_one_thread
    from .core.memory import MatrixTooLargeError, memory_budget, set_memory_budget
    from .core.padding import PADDING_MODES
    from .core.progress import set_progress
    from .core.transposition import transpose_geometry
    from .engines import installed_engines
    from .interop.adjoint import AdjointCheck, check_adjoint
    from .interop.networks import conv_layers, lipschitz_report
    from .interop.torch_interop import from_torch
    from .layers.conv import Conv, ConvOperator, ConvTranspose
    from .layers.layer import Layer
    from .solve.gradient import Gradient
    from .solve.parameters import choose_damp
    from .solve.penalized import solve_penalized
    from .solve.preconditioners import preconditioner
    from .solve.prox import LeastSquaresProx
    from .solve.steps import tv_norm_bounds
    from .solve.tikhonov import SolveResult, solve_tikhonov
    from .solve.tv import TVResult, solve_tv, total_variation
    from .spectra.brackets import NormBounds
    from .spectra.certified import norm_bounds
    from .spectra.singular_bounds import (
        condition_number_bounds,
        count_singular_values,
        min_singular_value_bounds,
    )
    from .spectra.spectral import singular_values, spectral_norm


_public, _ = lazy_exports(__name__, _HOMES)
install_moved_modules()  # old module paths work for a release, with a DeprecationWarning


def __getattr__(name: str):
    if name in _HOMES:
        return _public(name)
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
        value = importlib.import_module(f".{name}", __name__)  # a subpackage: tc.solve, ...
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, "__version__"})


__all__ = [
    "PADDING_MODES",
    "SolveResult",
    "AdjointCheck",
    "Conv",
    "ConvOperator",
    "ConvTranspose",
    "Geometry",
    "Gradient",
    "Layer",
    "LeastSquaresProx",
    "MatrixTooLargeError",
    "NormBounds",
    "TVResult",
    "ParameterError",
    "ParameterTypeError",
    "blas_on_one_thread",
    "check_adjoint",
    "choose_damp",
    "condition_number_bounds",
    "conv_geometry",
    "conv_layers",
    "count_singular_values",
    "from_torch",
    "installed_engines",
    "kernel_block",
    "lipschitz_report",
    "memory_budget",
    "min_singular_value_bounds",
    "norm_bounds",
    "preconditioner",
    "set_memory_budget",
    "set_progress",
    "singular_values",
    "solve_penalized",
    "solve_tikhonov",
    "solve_tv",
    "spectral_norm",
    "total_variation",
    "tv_norm_bounds",
    "transpose_geometry",
]
__version__ = "0.1.0"
