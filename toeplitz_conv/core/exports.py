"""How the package and its subpackages export their public names, and where the paths
that moved lead.

Public names are imported on first use (:func:`lazy_exports`), so that ``import
toeplitz_conv`` and the command line's ``--help`` do not pay for scipy, pylops, torch or
matplotlib until they are needed. Modules that moved keep their old import path for a
release, with a :class:`DeprecationWarning` (:class:`MovedModules`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from collections.abc import Callable

__all__ = ["MOVED", "install_moved_modules", "lazy_exports"]

# old module path -> new one (the reorganisation into subpackages, 2026-12-05)
MOVED = {
    f"toeplitz_conv.{old}": f"toeplitz_conv.{new}"
    for old, new in {
        "adjoint": "interop.adjoint",
        "banded": "spectra.banded",
        "block_matrix": "core.block_matrix",
        "blocks": "core.blocks",
        "demo": "cli.demo",
        "errors": "core.errors",
        "files": "core.files",
        "geometry": "core.geometry",
        "jit": "core.jit",
        "layer": "layers.layer",
        "layer_gram": "spectra.layer_gram",
        "memory": "core.memory",
        "mpi": "interop.mpi",
        "networks": "interop.networks",
        "operators": "layers.conv",
        "padding": "core.padding",
        "plot": "pictures.plot",
        "progress": "core.progress",
        "raster": "pictures.raster",
        "singular_bounds": "spectra.singular_bounds",
        "spectral": "spectra.spectral",
        "summary": "layers.summary",
        "symbol": "spectra.symbol",
        "torch_interop": "interop.torch_interop",
        "weights": "core.weights",
    }.items()
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import toeplitz_conv.mpi`` (an old path of :data:`MOVED`) gives the module at
    its new path, with a :class:`DeprecationWarning` naming it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; the old path works for one more release",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(new)
        self._specs = {**getattr(self, "_specs", {}), spec.name: module.__spec__}
        return module

    def exec_module(self, module) -> None:
        """Nothing to run (the module is the one at the new path, already imported); the
        import system set its ``__spec__`` to the old path's, which is put back."""
        module.__spec__ = self._specs.pop(module.__spec__.name)


def install_moved_modules() -> None:
    """Add :class:`MovedModules` to the import system once."""
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())


def lazy_exports(package: str, homes: dict[str, str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package``: each name of ``homes`` (name -> module
    below ``package``) is imported from its module on first use and kept, as is a
    module of the package asked for by name (``tc.solve.steps``, as a plain package
    allows once it is imported); ``dir()`` lists the public names."""

    def __getattr__(name: str):
        home = homes.get(name)
        if home is None:
            if not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}"):
                return importlib.import_module(f"{package}.{name}")
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(homes)

    return __getattr__, __dir__
