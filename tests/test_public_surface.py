"""The public surface is curated (#31): every name the package or a subpackage exports is
documented in the API page, dir() shows the public names, and paths that moved still
import, with a DeprecationWarning naming the new one."""

import importlib
import re
import warnings
from pathlib import Path

import pytest

import toeplitz_conv as tc
from toeplitz_conv.core.exports import MOVED

ROOT = Path(__file__).resolve().parents[1]
API = (ROOT / "docs" / "api.rst").read_text()
SUBPACKAGES = ["core", "engines", "layers", "spectra", "pictures", "interop", "solve", "cli"]
DOCUMENTED = set(re.findall(r"^\.\. auto\w+:: [\w.]*?(\w+)$", API, re.M)) | {
    name.strip()
    for members in re.findall(r":members: (.*(?:\n      .*)*)", API)
    for name in members.replace("\n", " ").split(",")
} | set(re.findall(r":func:`~?toeplitz_conv\.[\w.]*?(\w+)`", API))


def _exports():
    yield "toeplitz_conv", tc.__all__
    for name in SUBPACKAGES:
        module = importlib.import_module(f"toeplitz_conv.{name}")
        yield module.__name__, module.__all__


@pytest.mark.parametrize("package, names", list(_exports()), ids=lambda v: str(v)[:30])
def test_every_exported_name_is_documented_in_the_api_page(package, names):
    missing = sorted(set(names) - DOCUMENTED)
    assert not missing, f"{package} exports names docs/api.rst does not document: {missing}"


@pytest.mark.parametrize("package, names", list(_exports()), ids=lambda v: str(v)[:30])
def test_every_exported_name_resolves(package, names):
    module = importlib.import_module(package)
    for name in names:
        assert getattr(module, name) is not None


def test_dir_shows_the_public_names_and_nothing_of_the_machinery():
    listed = dir(tc)
    assert set(tc.__all__) <= set(listed)
    for private in ("TYPE_CHECKING", "annotations", "importlib", "_HOMES"):
        assert private not in listed


@pytest.mark.parametrize("old, new", sorted(MOVED.items()))
def test_a_moved_module_imports_from_its_old_path_with_a_warning(old, new):
    if new.endswith(".mpi") and importlib.util.find_spec("mpi4py") is None:
        new_module = None  # its import needs the [mpi] extra: the warning still comes first
    with pytest.warns(DeprecationWarning, match=f"{re.escape(old)} moved to {re.escape(new)}"):
        try:
            module = importlib.import_module(old)
        except ImportError:
            return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new_module = importlib.import_module(new)
    assert module is new_module and module.__spec__.name == new
