"""The package's plan holds: subpackages import one way, modules stay small and say what
they export."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "toeplitz_conv"
# each subpackage and what it may import of the package (itself always)
MAY_IMPORT = {
    "core": set(),
    "engines": {"core"},
    "layers": {"core", "engines"},
    "spectra": {"core", "engines", "layers"},
    "pictures": {"core", "engines", "layers"},
    "interop": {"core", "engines", "layers", "spectra"},
    "solve": {"core", "engines", "layers", "spectra"},
    "cli": {"core", "engines", "layers", "spectra", "interop", "pictures", "solve"},
}
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)
MAX_LINES = 450


def _subpackage(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


def _imported_subpackages(path: Path) -> set[str]:
    """The subpackages of toeplitz_conv a module imports (relative or absolute)."""
    tree = ast.parse(path.read_text())
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 1 for toeplitz_conv/x/module.py
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").startswith("toeplitz_conv."):
                found.add(node.module.split(".")[1])
            elif node.level > depth:  # reaches the top package: toeplitz_conv.<name>
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("toeplitz_conv."):
                    found.add(alias.name.split(".")[1])
    return found


def test_every_module_lives_in_a_known_subpackage():
    assert {_subpackage(p) for p in MODULES} == set(MAY_IMPORT)
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py"], top  # the top holds only the public names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way_between_subpackages(path):
    own = _subpackage(path)
    allowed = MAY_IMPORT[own] | {own, "__version__"}
    assert _imported_subpackages(path) <= allowed, (own, _imported_subpackages(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_are_small_and_declare_their_exports(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_LINES, len(text.splitlines())
    if path.name != "__main__.py":
        assert "__all__" in text
