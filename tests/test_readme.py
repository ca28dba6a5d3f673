"""README stays true: its example prints what its comments say; Quickstart has two commands."""

import contextlib
import io
import re
import shlex
from pathlib import Path

import numpy as np

from toeplitz_conv.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _fenced_block(heading: str, language: str) -> str:
    section = README.split(f"## {heading}", 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def test_ten_line_example_prints_what_its_comments_say():
    code = _fenced_block("A ten-line example", "python")
    expected = [
        line.split("# ", 1)[1].split(":")[0].strip()
        for line in code.splitlines()
        if line.startswith("print(")
    ]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README example", "exec"), {})
    assert out.getvalue().splitlines() == expected
    assert len(code.strip().splitlines()) <= 10


def test_quickstart_holds_exactly_two_commands_and_ci_runs_them():
    commands = [c for c in _fenced_block("Quickstart", "bash").splitlines() if c.strip()]
    assert len(commands) == 2
    assert "pytest" in commands[1] and ".[test]" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "## Quickstart" in ci and "torch==2.13.0" in ci


def test_every_command_line_example_runs_as_written(tmp_path, monkeypatch, capsys):
    """Each line of "The command line" block, in a fresh folder with the w.npy it names."""
    monkeypatch.chdir(tmp_path)
    np.save("w.npy", np.random.default_rng(0).standard_normal((8, 16, 3, 3)))
    lines = [c for c in _fenced_block("The command line", "bash").splitlines() if c.strip()]
    assert len(lines) == 3
    for line in lines:
        program, *argv = shlex.split(line)
        assert program == "toeplitz-conv"
        assert main(argv) == 0, f"{line}\n{capsys.readouterr().err}"
        out = capsys.readouterr().out
        if "-o" in argv:
            written = argv[argv.index("-o") + 1]
            assert (tmp_path / written).stat().st_size > 0 and f"wrote {written}" in out
