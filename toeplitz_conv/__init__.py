"""toeplitz_conv: deep-learning conv layers as explicit sparse linear operators.

The package follows the picture of a conv layer as a channel-wise
matrix-vector product of convolutions, module by module:

- :mod:`~toeplitz_conv.padding`: the table of padding modes and their boundary rules;
- :mod:`~toeplitz_conv.geometry`: shapes, paddings and index maps of a layer;
- :mod:`~toeplitz_conv.blocks`: one scalar kernel as a sparse Toeplitz/circulant block;
- :mod:`~toeplitz_conv.block_matrix`: the ``C_out x C_in`` grid of blocks as one matrix;
- :mod:`~toeplitz_conv.layer`: a layer's state and caches, owned in one place;
- :mod:`~toeplitz_conv.engines`: how products are computed (sparse, direct, numba);
- :mod:`~toeplitz_conv.operators`: :class:`Conv` and :class:`ConvTranspose` operators.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

# each public name and the module that defines it: imported on first use, so that
# `import toeplitz_conv` (and the command line's --help) does not pay for scipy,
# pylops and torch until an operator is built
_HOMES = {
    "AdjointCheck": "adjoint",
    "check_adjoint": "adjoint",
    "kernel_block": "blocks",
    "NormBounds": "certified",
    "norm_bounds": "certified",
    "installed_engines": "engines",
    "ParameterError": "errors",
    "ParameterTypeError": "errors",
    "Geometry": "geometry",
    "conv_geometry": "geometry",
    "transpose_geometry": "geometry",
    "Layer": "layer",
    "MatrixTooLargeError": "memory",
    "memory_budget": "memory",
    "set_memory_budget": "memory",
    "conv_layers": "networks",
    "lipschitz_report": "networks",
    "Conv": "operators",
    "ConvOperator": "operators",
    "ConvTranspose": "operators",
    "PADDING_MODES": "padding",
    "condition_number_bounds": "singular_bounds",
    "count_singular_values": "singular_bounds",
    "min_singular_value_bounds": "singular_bounds",
    "singular_values": "spectral",
    "spectral_norm": "spectral",
    "from_torch": "torch_interop",
}

if TYPE_CHECKING:  # for type checkers and editors: the eager imports
    from .adjoint import AdjointCheck, check_adjoint
    from .blocks import kernel_block
    from .certified import NormBounds, norm_bounds
    from .engines import installed_engines
    from .errors import ParameterError, ParameterTypeError
    from .geometry import Geometry, conv_geometry, transpose_geometry
    from .layer import Layer
    from .memory import MatrixTooLargeError, memory_budget, set_memory_budget
    from .networks import conv_layers, lipschitz_report
    from .operators import Conv, ConvOperator, ConvTranspose
    from .padding import PADDING_MODES
    from .singular_bounds import (
        condition_number_bounds,
        count_singular_values,
        min_singular_value_bounds,
    )
    from .spectral import singular_values, spectral_norm
    from .torch_interop import from_torch


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
    "check_adjoint",
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
    "set_memory_budget",
    "singular_values",
    "spectral_norm",
    "transpose_geometry",
]
__version__ = "0.1.0"
