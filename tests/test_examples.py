"""The gallery's examples as the docs show them: no stray output (their lines fit the page:
``examples/ruff.toml`` sets 88 columns)."""

import ast
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
QUIET_CALLS = {"print", "show"}  # calls whose value sphinx-gallery does not print


def _cells(path: Path) -> list[list[ast.stmt]]:
    """The top-level statements of each ``# %%`` cell."""
    text = path.read_text()
    starts = [n for n, line in enumerate(text.splitlines(), 1) if line.startswith("# %%")]
    cells: list[list[ast.stmt]] = [[] for _ in range(len(starts) + 1)]
    for statement in ast.parse(text).body:
        cells[sum(statement.lineno > s for s in starts)].append(statement)
    return [cell for cell in cells if cell]


def _called_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        function = node.func
        return (
            function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
        )
    return None


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_no_cell_ends_in_an_expression_whose_repr_the_page_would_print(path):
    for cell in _cells(path):
        last = cell[-1]
        if isinstance(last, ast.Expr) and not isinstance(last.value, ast.Constant):
            assert _called_name(last.value) in QUIET_CALLS, (path.name, last.lineno)
