"""README stays true: its example prints what its comments say, Quickstart has two commands
(which CI runs), and every other command in it runs as written."""

import contextlib
import importlib.util
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


def test_the_solve_example_prints_what_its_comment_says():
    code = _fenced_block("Solving with a layer as the forward model", "python")
    expected = [line.split("# ", 1)[1] for line in code.splitlines() if line.startswith("print(")]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README solve example", "exec"), {})
    assert out.getvalue().splitlines() == expected


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


CI_ITSELF = "bash .ci/run"  # the commands a test cannot run: they run the tests
SLOW_TESTS = "HYPOTHESIS_PROFILE=ci python -m pytest -m slow --ignore=tests/mpi"
RUN_BY_CI = (CI_ITSELF, SLOW_TESTS)  # .ci/run runs the second as written (tested below)
COMMANDS = [
    (heading, line)
    for heading, block in _bash_blocks()
    if heading != "Quickstart"  # .ci/run runs these two, exactly as written
    for line in block.splitlines()
    if line.strip() and line.strip() not in RUN_BY_CI
]
# a line that installs an extra first: the test never installs; it checks that the extra
# is there (else it skips, naming it) and runs the rest of the line
INSTALL = re.compile(r'^python -m pip install -e "\.\[(\w+)\]" && (.+)$')
EXTRA_MODULES = {
    "fast": ("numba",),
    "docs": ("sphinx", "numpydoc", "sphinx_gallery", "sphinx-mathjax-offline"),  # its import name
    "mpi": ("mpi4py", "pylops_mpi"),
    "plot": ("matplotlib",),
}
# lines that take minutes or start other programs: benchmarks, the docs, MPI, examples
SLOW = ("benchmarks/", "sphinx-build", "mpiexec", "examples/", "docs/", "toeplitz-conv compile")


def _param(heading: str, line: str):
    marks = [pytest.mark.slow] if any(part in line for part in SLOW) else []
    return pytest.param(heading, line, marks=marks, id=line[:60])


# commands that make files in the current folder run in a fresh one, in README's order
IN_A_FRESH_FOLDER = ("toeplitz-conv", "python -c")


def test_commands_in_prose_are_in_a_block_that_the_tests_run():
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))
    runnable = [
        c for c in spans if re.match(r"(python|toeplitz-conv|sphinx-build|mpiexec|bash) ", c)
    ]
    for command in runnable:
        assert command in RUN_BY_CI or any(command in line for _, line in COMMANDS), command
    assert (ROOT / ".ci" / "run").exists() and CI_ITSELF in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert SLOW_TESTS in README and f"\n{SLOW_TESTS}\n" in ci


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


def _without_install(line: str) -> str:
    """The command after its install step, once the extra it installs is known present."""
    match = INSTALL.match(line)
    if match is None:
        assert "pip install" not in line, f"an install the test does not know: {line}"
        return line
    extra, rest = match.groups()
    missing = [m for m in EXTRA_MODULES[extra] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"needs the [{extra}] extra ({', '.join(missing)}): pip install -e '.[{extra}]'"
        )
    return rest


@pytest.mark.parametrize("heading, line", [_param(h, line) for h, line in COMMANDS])
def test_every_readme_command_runs_as_written(heading, line, fresh_folder):
    line = _without_install(line)
    cwd = fresh_folder if line.startswith(IN_A_FRESH_FOLDER) else ROOT
    result = _shell(line, cwd)
    assert result.returncode == 0, (
        f"{heading}: {line}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )
    assert "Traceback" not in result.stderr
    if " -o " in line:
        written = shlex.split(line)[shlex.split(line).index("-o") + 1]
        assert (cwd / written).stat().st_size > 0 and f"wrote {written}" in result.stdout
