"""Timings of one machine stay out of the code (#31): a comment says why and names the
benchmark that anyone can rerun; the numbers live in the docs' benchmarks page."""

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "toeplitz_conv"
# a duration with its unit, a speed-up factor, or a measurement of "this machine"
TIMING = re.compile(
    r"\b\d+(\.\d+)?(-\d+(\.\d+)?)? ?(ms|µs|us)\b"
    r"|\b\d+(\.\d+)?(-\d+(\.\d+)?)? s\b(?! *[=:])"
    r"|\b\d+(\.\d+)?x (faster|slower)\b"
    r"|\b(on this machine|here\)|on two cores|on 2 cores)"
)
MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_timing_of_one_machine_in_the_code(path):
    found = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if TIMING.search(line)
    ]
    assert not found, "\n".join(found)
