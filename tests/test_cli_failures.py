"""The command line as a careless user meets it: one line on stderr, an exit status, no
traceback, and no file that was not written in full."""

import errno
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import scipy.sparse

import toeplitz_conv
from toeplitz_conv.cli.main import main, make_parser

SMALL = ["--random", "4,2,3,3", "--input-shape", "2,8,7", "--padding", "1"]


def _run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _assert_one_line(err: str, *fragments: str) -> None:
    assert err.count("\n") == 1 and err.startswith("toeplitz-conv: error:"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def _save_header_only(path, shape, descr="<f8"):
    """A .npy file whose header claims ``shape`` but which holds 100 bytes of data."""
    with open(path, "wb") as handle:
        header = {"descr": descr, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(b"\0" * 100)


@pytest.fixture
def weight_files(tmp_path):
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "text.npy").write_text("0.1 0.2 0.3\n")
    np.savez(tmp_path / "archive.npz", kernel=np.ones((2, 2, 3, 3)), bias=np.ones(2))
    np.save(tmp_path / "flat.npy", np.ones((3, 3)))
    np.save(tmp_path / "letters.npy", np.array(["a", "b"]))
    np.save(tmp_path / "objects.npy", np.array([{}, 1], dtype=object), allow_pickle=True)
    _save_header_only(tmp_path / "huge.npy", (100_000, 100_000, 3, 3))
    return tmp_path


@pytest.mark.parametrize(
    "name, fragments",
    [
        ("empty.npy", ["--weight", "is empty"]),
        ("text.npy", ["--weight", "is not a .npy file"]),
        ("archive.npz", ["--weight", "is an .npz archive", "'kernel'", "'bias'"]),
        ("flat.npy", ["--weight", "shape (3, 3)", "3 to 5"]),
        ("letters.npy", ["--weight", "dtype <U1"]),
        ("objects.npy", ["--weight", "Python objects"]),
        ("huge.npy", ["--weight", "truncated", "720.0 GB"]),
        ("missing.npy", ["--weight", "does not exist"]),
        (".", ["--weight", "is a directory"]),
    ],
)
def test_a_bad_weight_file_is_described(weight_files, capsys, name, fragments):
    argv = ["show", "--weight", str(weight_files / name), "--input-shape", "2,8,8"]
    status, out, err = _run(argv, capsys)
    assert status == 2 and out == ""
    _assert_one_line(err, *fragments)


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (
            ["show", "--random", "100000,100000,3,3", "--input-shape", "100000,8,8"],
            ["--max-memory"],
        ),
        (["check", "--random", "1,1,3,3", "--input-shape", "1,100000,100000"], ["test vectors"]),
        (["check", *SMALL, "--seed", "-1"], ["--seed", ">= 0"]),
        (["check", *SMALL, "--padding", "99999999999999999999"], ["--padding", "<= 2147483647"]),
        (["check", *SMALL, "--stride", "99999999999999999999"], ["--stride", "<= 2147483647"]),
        (["check", *SMALL, "--groups", "99999999999999999999"], ["--groups"]),
        (["check", "--random", "4,2,0,3", "--input-shape", "2,8,7"], ["--random", ">= 1"]),
        (
            ["check", "--random", "4,2", "--input-shape", "2,8", "--transpose"],
            ["C_in,C_out/groups"],
        ),
        (["check", *SMALL, "--max-memory", "lots"], ["--max-memory", "500M"]),
        (["demo", "--iterations", "-5"], ["--iterations", ">= 1"]),
        (["demo", "--iterations", "0"], ["--iterations", ">= 1"]),
    ],
)
def test_bad_sizes_are_refused_before_any_allocation(argv, fragments, capsys):
    status, _, err = _run(argv, capsys)
    assert status == 2
    _assert_one_line(err, *fragments)


@pytest.mark.parametrize(
    "command, target, fragments",
    [
        ("show", "missing/dir/layer.png", ["-o/--output", "does not exist"]),
        ("export", "missing/dir/layer.npz", ["-o/--output", "does not exist"]),
        ("export", "missing/dir/layer.mtx", ["-o/--output", "does not exist"]),
        ("show", "folder.png", ["-o/--output", "is a directory"]),
        ("show", "layer.txt", ["-o/--output", ".png"]),
        ("show", "layer.xyz", ["-o/--output", ".png"]),
        ("export", "layer.csv", ["-o/--output", ".npz, .mtx"]),
    ],
)
def test_bad_outputs_are_refused_before_any_work(tmp_path, capsys, command, target, fragments):
    (tmp_path / "folder.png").mkdir()
    status, out, err = _run([command, *SMALL, "-o", str(tmp_path / target)], capsys)
    assert status == 2 and out == ""  # not even the summary: nothing was built
    _assert_one_line(err, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.png"]


@pytest.mark.parametrize("command, name", [("show", "x.png"), ("export", "x.npz")])
def test_a_folder_where_no_file_can_be_created_is_bad_input_named_as_given(
    capsys, command, name
):
    """/proc passes ``os.access`` for root but takes no new file: refused before any work
    (status 2, the user's folder named), never a failure reported under the hidden
    temporary name (#34)."""
    status, out, err = _run([command, *SMALL, "-o", f"/proc/{name}"], capsys)
    assert status == 2 and out == ""
    _assert_one_line(err, "-o/--output", "cannot write into directory '/proc'")
    assert "/proc/." not in err


def test_a_write_that_fails_names_the_users_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(
        scipy.sparse, "save_npz", _failing_writer(FileNotFoundError(errno.ENOENT, "gone"))
    )
    target = tmp_path / "layer.npz"
    code, out, err = _run(["export", *SMALL, "-o", str(target)], capsys)
    assert code == 1 and "wrote" not in out
    _assert_one_line(err, str(target))
    assert f"{tmp_path}/." not in err


def test_demo_into_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    status, _, err = _run(["demo", "--out", str(tmp_path / "taken")], capsys)
    assert status == 2
    _assert_one_line(err, "--out", "not a directory")


def test_demo_creates_a_missing_output_folder(tmp_path, capsys):
    out = tmp_path / "new" / "pictures"
    assert main(["--quiet", "demo", "--out", str(out), "--iterations", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "block.png",
        "block_pattern.png",
        "images.png",
        "matrix.png",
    ]
    assert "pictures:" in capsys.readouterr().out


def _failing_writer(exception):
    def write(path, *args, **kwargs):
        with open(path, "wb") as handle:  # a partial file, then the failure
            handle.write(b"PK\x03\x04partial")
        raise exception

    return write


@pytest.mark.parametrize(
    "exception, status, fragment",
    [
        (OSError(errno.ENOSPC, "No space left on device"), 1, "No space left on device"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_a_failed_or_interrupted_export_leaves_no_file(
    tmp_path, capsys, monkeypatch, exception, status, fragment
):
    monkeypatch.setattr(scipy.sparse, "save_npz", _failing_writer(exception))
    code, out, err = _run(["export", *SMALL, "-o", str(tmp_path / "layer.npz")], capsys)
    assert code == status and "wrote" not in out
    _assert_one_line(err, fragment)
    assert list(tmp_path.iterdir()) == []


def test_an_export_that_does_not_read_back_is_not_reported(tmp_path, capsys, monkeypatch):
    # mmwrite returning normally without writing (as it does for a missing directory)
    monkeypatch.setattr(scipy.io, "mmwrite", lambda *args, **kwargs: None)
    code, out, err = _run(["export", *SMALL, "-o", str(tmp_path / "layer.mtx")], capsys)
    assert code == 1 and "wrote" not in out
    _assert_one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_picture_leaves_no_file(tmp_path, capsys, monkeypatch):
    import matplotlib.figure

    write = _failing_writer(KeyboardInterrupt())
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda self, *a, **k: write(*a, **k))
    code, out, err = _run(["show", *SMALL, "-o", str(tmp_path / "layer.png")], capsys)
    assert code == 130 and "wrote" not in out
    assert list(tmp_path.iterdir()) == []


def test_outputs_are_written_with_the_usual_permissions(tmp_path):
    target = tmp_path / "layer.npz"
    assert main(["export", *SMALL, "-o", str(target)]) == 0
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["layer.npz"]


def test_max_memory_sets_the_budget_of_the_command(tmp_path, capsys):
    target = tmp_path / "layer.npz"
    status, _, err = _run(["export", *SMALL, "--max-memory", "10K", "-o", str(target)], capsys)
    assert status == 2
    _assert_one_line(err, "--max-memory", "10.0 kB")
    suggested = re.search(r"--max-memory (\S+),", err).group(1)
    assert main(["export", *SMALL, "--max-memory", suggested, "-o", str(target)]) == 0
    assert target.exists()
    assert toeplitz_conv.memory_budget() > 10_000  # the budget was the command's alone


def test_an_unexpected_error_is_one_line_with_status_1(capsys, monkeypatch):
    def broken(args):
        raise RuntimeError("something broke")

    monkeypatch.setattr("toeplitz_conv.cli.flags.build_layer", broken)
    status, _, err = _run(["check", *SMALL], capsys)
    assert status == 1
    _assert_one_line(err, "RuntimeError: something broke", "TOEPLITZ_CONV_TRACEBACK")


def test_the_console_script_prints_no_traceback(tmp_path):
    (tmp_path / "empty.npy").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "toeplitz_conv.cli", "check", "--weight", "empty.npy"]
        + ["--input-shape", "2,8,8"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_version(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.strip() == f"toeplitz-conv {toeplitz_conv.__version__}"


def _subparsers(parser):
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


@pytest.mark.parametrize("command", ["demo", "show", "check", "norm", "export", "compile"])
def test_help_describes_every_flag_in_plain_text(command):
    parser = _subparsers(make_parser())[command]
    assert parser.description and "example" in parser.epilog
    for action in parser._actions:
        assert action.help, action.option_strings
        if action.default not in (None, False) and action.dest != "help":
            assert "default" in action.help, action.option_strings
    text = parser.format_help()
    assert "``" not in text and ":math:" not in text


def _machine_memory() -> int:
    with open("/proc/meminfo") as meminfo:
        return next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemTotal:"))


def test_a_budget_beyond_the_machines_memory_is_warned_about(capsys):
    """--max-memory 1000T on a machine of some GB would let a 38 GB build start (#34)."""
    beyond = 2 * _machine_memory()
    status, out, err = _run(["check", *SMALL, "--max-memory", str(beyond)], capsys)
    assert status == 0 and "PASSED" in out
    assert err.count("\n") == 1 and err.startswith("toeplitz-conv: warning: --max-memory:"), err
    status, _, err = _run(["check", *SMALL, "--max-memory", str(_machine_memory() // 2)], capsys)
    assert status == 0 and err == ""
    with pytest.warns(toeplitz_conv.core.memory.BudgetAboveMemoryWarning, match="machine's memory"):
        with toeplitz_conv.core.memory.using_memory_budget(beyond):
            pass
