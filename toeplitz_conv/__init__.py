"""toeplitz_conv: deep-learning conv layers as explicit sparse linear operators.

The package follows the picture of a conv layer as a channel-wise
matrix-vector product of convolutions, module by module:

- :mod:`~toeplitz_conv.core.padding`: the table of padding modes and their boundary rules;
- :mod:`~toeplitz_conv.core.geometry`: shapes, paddings and index maps of a layer;
- :mod:`~toeplitz_conv.core.blocks`: one scalar kernel as a sparse Toeplitz/circulant block;
- :mod:`~toeplitz_conv.core.block_matrix`: the ``C_out x C_in`` grid of blocks as one matrix;
- :mod:`~toeplitz_conv.layers.layer`: a layer's state and caches, owned in one place;
- :mod:`~toeplitz_conv.engines`: how products are computed (sparse, direct, numba);
- :mod:`~toeplitz_conv.layers.conv`: :class:`Conv` and :class:`ConvTranspose` operators.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

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
    "blas_on_one_thread": "core.jit",
}

if TYPE_CHECKING:  # for type checkers and editors: the eager imports
    from .core.blocks import kernel_block
    from .core.errors import ParameterError, ParameterTypeError
    from .core.geometry import Geometry, conv_geometry
    from .core.jit import blas_on_one_thread
    from .core.memory import MatrixTooLargeError, memory_budget, set_memory_budget
    from .core.padding import PADDING_MODES
    from .core.transposition import transpose_geometry
    from .engines import installed_engines
    from .interop.adjoint import AdjointCheck, check_adjoint
    from .interop.networks import conv_layers, lipschitz_report
    from .interop.torch_interop import from_torch
    from .layers.conv import Conv, ConvOperator, ConvTranspose
    from .layers.layer import Layer
    from .solve.parameters import choose_damp
    from .solve.preconditioners import preconditioner
    from .solve.tikhonov import SolveResult, solve_tikhonov
    from .spectra.brackets import NormBounds
    from .spectra.certified import norm_bounds
    from .spectra.singular_bounds import (
        condition_number_bounds,
        count_singular_values,
        min_singular_value_bounds,
    )
    from .spectra.spectral import singular_values, spectral_norm


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is not None:
        value = getattr(importlib.import_module(f".{home}", __name__), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
        value = importlib.import_module(f".{name}", __name__)  # a submodule: tc.memory, ...
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "PADDING_MODES",
    "SolveResult",
    "AdjointCheck",
    "Conv",
    "ConvOperator",
    "ConvTranspose",
    "Geometry",
    "Layer",
    "MatrixTooLargeError",
    "NormBounds",
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
    "singular_values",
    "solve_tikhonov",
    "spectral_norm",
    "transpose_geometry",
]
__version__ = "0.1.0"
