"""The toeplitz-conv command line: each subcommand, and one-line errors with exit status 2."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import scipy.sparse

import toeplitz_conv as tc
from toeplitz_conv.cli import main

LAYER = [
    "--random",
    "4,2,3,3",
    "--seed",
    "3",
    "--input-shape",
    "4,6,5",
    "--groups",
    "2",
    "--padding",
    "1",
    "--padding-mode",
    "reflect",
]


def _expected_op():
    w = np.random.default_rng(3).standard_normal((4, 2, 3, 3))
    return tc.Conv(w, (4, 6, 5), groups=2, padding=1, padding_mode="reflect")


def test_demo_runs_and_writes_its_pictures(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--iterations", "8"]) == 0
    out = capsys.readouterr().out
    assert "AdjointCheck(PASSED" in out and "PSNR" in out and "###" in out
    for name in ("block_pattern.png", "matrix.png", "block.png", "images.png"):
        assert (tmp_path / name).stat().st_size > 5000


def test_show_prints_the_summary_and_writes_a_png(tmp_path, capsys):
    picture = tmp_path / "layer.png"
    assert main(["show", *LAYER, "-o", str(picture)]) == 0
    assert capsys.readouterr().out.startswith(_expected_op().summary())
    assert picture.stat().st_size > 5000


def test_check_reports_adjoint_and_torch_parity(capsys):
    assert main(["check", *LAYER]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "torch_forward" in out and "torch_autograd" in out
    assert "engine_agreement" in out


@pytest.mark.parametrize("suffix", [".npz", ".mtx"])
def test_export_writes_the_matrix(tmp_path, suffix):
    path = tmp_path / f"layer{suffix}"
    assert main(["export", *LAYER, "-o", str(path)]) == 0
    loaded = scipy.sparse.load_npz(path) if suffix == ".npz" else scipy.io.mmread(path)
    np.testing.assert_allclose(loaded.toarray(), _expected_op().todense())


def test_export_of_a_transposed_layer_from_a_weight_file(tmp_path):
    w = np.random.default_rng(0).standard_normal((3, 2, 3))
    np.save(tmp_path / "w.npy", w)
    path = tmp_path / "t.npz"
    args = [
        "export",
        "--weight",
        str(tmp_path / "w.npy"),
        "--input-shape",
        "3,5",
        "--transpose",
        "--stride",
        "2",
        "--output-padding",
        "1",
        "-o",
        str(path),
    ]
    assert main(args) == 0
    expected = tc.ConvTranspose(w, (3, 5), stride=2, output_padding=1).todense()
    np.testing.assert_allclose(scipy.sparse.load_npz(path).toarray(), expected)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["show", "--random", "4,4,3,3", "--input-shape", "4,6,5", "--stride", "0"], "--stride"),
        (["show", "--random", "4,2,3,3", "--input-shape", "4,6,5"], "--input-shape"),
        (["show", "--random", "4,2,3,3", "--input-shape", "4,6,5", "--groups", "3"], "--groups"),
        (["show", "--random", "4,2,3", "--input-shape", "4,6,5", "--groups", "2"], "--input-shape"),
        (["show", "--random", "4,x", "--input-shape", "4,6"], "--random"),
        (["show", *LAYER[:-2], "--padding-mode", "wrap"], "--padding-mode"),
        (
            ["show", "--random", "4,4,3,3", "--input-shape", "4,6,5", "--padding", "full"],
            "--padding",
        ),
        (["show", "--input-shape", "4,6,5"], "--weight"),
        (["show", "--random", "4,4,3,3"], "--input-shape"),
        (["export", *LAYER, "-o", "layer.txt"], "--output"),
        (["show", "--weight", "missing.npy", "--input-shape", "4,6,5"], "--weight"),
        (["show", *LAYER, "--output-padding", "1"], "--output-padding"),
        (["frobnicate"], "invalid choice"),
        (["compile", "--dtype", "float16"], "--dtype"),
        (["compile", "--dtype", "float64,"], "--dtype"),
    ],
)
def test_bad_flags_give_one_line_naming_the_flag_and_exit_2(argv, flag, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("toeplitz-conv: error:")
    assert flag in err and "Traceback" not in err


def test_matrix_over_budget_is_refused_with_its_size(capsys):
    try:
        tc.set_memory_budget(5000)  # the weight fits, the matrix does not
        assert main(["export", *LAYER, "-o", "never.npz"]) == 2
    finally:
        tc.set_memory_budget(None)
    assert "nonzeros" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", [[], ["demo"], ["show"], ["check"], ["norm"], ["export"], ["compile"]]
)
def test_help_on_every_subcommand(command):
    result = subprocess.run(
        [sys.executable, "-m", "toeplitz_conv.cli", *command, "--help"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "usage: toeplitz-conv" in result.stdout


def test_norm_prints_a_bracket_that_holds_the_dense_norm(capsys):
    assert main(["norm", *LAYER]) == 0
    out = capsys.readouterr().out
    lower, upper = (float(v) for v in out.split("in [")[1].split("]")[0].split(","))
    exact = np.linalg.norm(_expected_op().todense(), 2)
    assert lower <= exact * (1 + 1e-12) and exact <= upper * (1 + 1e-12)
    assert "proof:" in out


def test_the_demos_structured_solve_beats_its_lsqr_run(tmp_path):
    from toeplitz_conv.cli.demo import channel_means, run_demo

    result = run_demo(tmp_path, echo=lambda *_: None)
    assert result.psnr_tikhonov > result.psnr_recovered > result.psnr_blurred + 3
    image = np.arange(24.0).reshape(2, 3, 4)
    prior = channel_means(image).reshape(image.shape)
    np.testing.assert_array_equal(prior[0], 5.5)
    np.testing.assert_array_equal(prior[1], 17.5)
