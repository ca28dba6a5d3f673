"""README stays true: its example prints what its comments say, Quickstart has two commands
(which CI runs), and every other command in it runs as written."""

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

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


def _bash_blocks() -> list[tuple[str, str]]:
    """(section heading, block) for every ```bash block."""
    blocks = []
    for section in re.split(r"^## ", README, flags=re.M)[1:]:
        heading = section.splitlines()[0].strip()
        blocks += [(heading, b) for b in re.findall(r"```bash\n(.*?)```", section, re.S)]
    return blocks


CI_ITSELF = "bash .ci/run"  # the one command a test cannot run: it runs the tests
COMMANDS = [
    (heading, line)
    for heading, block in _bash_blocks()
    if heading != "Quickstart"  # .ci/run runs these two, exactly as written
    for line in block.splitlines()
    if line.strip() and line.strip() != CI_ITSELF
]
# commands that make files in the current folder run in a fresh one, in README's order
IN_A_FRESH_FOLDER = ("toeplitz-conv", "python -c")


def test_commands_in_prose_are_in_a_block_that_the_tests_run():
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))
    runnable = [
        c for c in spans if re.match(r"(python|toeplitz-conv|sphinx-build|mpiexec|bash) ", c)
    ]
    for command in runnable:
        assert command == CI_ITSELF or any(command in line for _, line in COMMANDS), command
    assert (ROOT / ".ci" / "run").exists() and CI_ITSELF in README


def _shell(line: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", line],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def fresh_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("readme")


@pytest.mark.parametrize("heading, line", COMMANDS, ids=[line[:60] for _, line in COMMANDS])
def test_every_readme_command_runs_as_written(heading, line, fresh_folder):
    cwd = fresh_folder if line.startswith(IN_A_FRESH_FOLDER) else ROOT
    result = _shell(line, cwd)
    assert result.returncode == 0, (
        f"{heading}: {line}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )
    assert "Traceback" not in result.stderr
    if " -o " in line:
        written = shlex.split(line)[shlex.split(line).index("-o") + 1]
        assert (cwd / written).stat().st_size > 0 and f"wrote {written}" in result.stdout
