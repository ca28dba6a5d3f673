"""The main job, ``toeplitz-conv demo``: see a conv layer's matrix and invert it.

On an embedded image (matplotlib's sample photograph, no network), a
3 -> 3-channel layer blurs each colour channel and leaks some of it into the
others. The demo prints the layer and its block pattern (beside the
depthwise ``groups=3`` pattern), checks that its conv-transpose is its adjoint,
draws the matrix, one block and the images, and recovers the image from the
blurred, noisy one with damped LSQR through the operator, reporting the PSNR.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.jit import blas_on_one_thread
from ..core.progress import progress_bar
from ..interop.adjoint import check_adjoint
from ..layers.conv import Conv
from ..layers.summary import block_pattern_text
from ..pictures.samples import cross_channel_blur, psnr, sample_image
from ..solve.parameters import choose_damp
from ..solve.tikhonov import solve_tikhonov

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    """What the demo measured and wrote."""

    psnr_blurred: float
    psnr_recovered: float
    adjoint_passed: bool
    pictures: list[Path]
    psnr_tikhonov: float = float("nan")  # solve_tikhonov toward the channel means, GCV


def channel_means(image: np.ndarray) -> np.ndarray:
    """The flat prior :math:`x_0` of the demo's Tikhonov solve: each channel's mean.

    :math:`\\min_x \\|Ax - b\\|^2 + d^2 \\|x - x_0\\|^2` shrinks the detail the data
    cannot resolve toward the mean brightness of each colour instead of toward
    black; with :math:`x = x_0 + z` it is the plain problem in :math:`z` for the data
    :math:`b - A x_0`, on which GCV chooses ``damp``.
    """
    means = image.mean(axis=tuple(range(1, image.ndim)), keepdims=True)
    return np.broadcast_to(means, image.shape).ravel().copy()


def run_demo(
    out_dir: Path = Path("toeplitz_conv_demo"),
    *,
    iterations: int = 60,
    noise: float = 0.003,
    damp: float = 0.02,
    seed: int = 0,
    echo=print,
) -> DemoResult:
    """Run the demo; write its pictures into ``out_dir``.

    Parameters
    ----------
    out_dir : pathlib.Path
        Folder for the PNG pictures (created).
    iterations : int
        LSQR iterations.
    noise : float
        Standard deviation of the Gaussian noise added to the blurred image.
    damp : float
        LSQR's Tikhonov damping :math:`\\lambda` in
        :math:`\\min_x \\|Ax - y\\|^2 + \\lambda^2 \\|x\\|^2`.
    seed : int
        Seed of the noise.
    echo : callable
        Where text goes.

    Returns
    -------
    DemoResult
    """
    import pylops.optimization.basic

    from ..pictures.figures import require_matplotlib

    require_matplotlib()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)  # before the work: a bad folder fails at once
    image = sample_image()
    op = Conv(cross_channel_blur(), image.shape, padding="same", padding_mode="reflect")
    echo(op.summary())
    depthwise = Conv(np.ones((3, 1, 7, 7)), image.shape, padding="same", groups=3)
    echo("with groups=3 (depthwise) instead, only the diagonal blocks remain:")
    echo("  " + block_pattern_text(depthwise.geometry).replace("\n", "\n  "))

    report = check_adjoint(op, seed=seed)
    echo(repr(report))

    rng = np.random.default_rng(seed)
    blurred = op.apply(image) + noise * rng.standard_normal(image.shape)
    bar = progress_bar(iterations, "lsqr", "it")

    def show_progress(x: np.ndarray) -> None:
        bar.set_postfix_str(f"PSNR {psnr(x.reshape(image.shape), image):.2f} dB")
        bar.update(1)

    started = time.perf_counter()
    with bar, blas_on_one_thread():  # as solve_tikhonov's own iterations run
        recovered = pylops.optimization.basic.lsqr(
            op,
            blurred.ravel(),
            damp=damp,
            niter=iterations,
            atol=0,
            btol=0,
            conlim=1e12,
            calc_var=False,
            callback=show_progress,
        )[0].reshape(image.shape)
    lsqr_seconds = time.perf_counter() - started
    result = DemoResult(psnr(blurred, image), psnr(recovered, image), report.passed, [])
    echo(
        f"PSNR: blurred and noisy {result.psnr_blurred:.2f} dB -> recovered with "
        f"{iterations} LSQR iterations (damp {damp}) {result.psnr_recovered:.2f} dB "
        f"in {lsqr_seconds:.3f} s"
    )
    started = time.perf_counter()
    prior = channel_means(blurred)
    data = blurred.ravel()
    chosen = choose_damp(op, data - op.matvec(prior), rule="gcv")
    solved = solve_tikhonov(op, data, chosen, x0=prior, rtol=1e-6)
    tikhonov_seconds = time.perf_counter() - started
    tikhonov = solved.x.reshape(image.shape)
    result.psnr_tikhonov = psnr(tikhonov, image)
    echo(
        f"      solve_tikhonov toward the channel means, damp {chosen:.4f} by GCV, "
        f"{_how(solved)}: {result.psnr_tikhonov:.2f} dB in {tikhonov_seconds:.3f} s"
    )
    recoveries = {
        f"{iterations} LSQR iterations": (recovered, lsqr_seconds),
        "solve_tikhonov, GCV, x0 = means": (tikhonov, tikhonov_seconds),
    }
    result.pictures = _draw(op, depthwise, image, blurred, recoveries, out_dir)
    echo("pictures: " + ", ".join(str(p) for p in result.pictures))
    return result


def _how(solved) -> str:
    """How :func:`solve_tikhonov` solved, as the demo prints it."""
    if solved.exact:
        return f"exact ({solved.method})"
    with_what = {
        "dct1": "preconditioned by the DCT-I form",
        None: "without a preconditioner",
    }.get(solved.preconditioner, f"preconditioned by {solved.preconditioner!r}")
    return f"{solved.iterations} conjugate-gradient iterations {with_what}"


def _draw(op, depthwise, image, blurred, recoveries, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    from ..pictures.plot import plot_block, plot_block_pattern, plot_matrix

    paths = []

    fig, axes = plt.subplots(1, 2, figsize=(7, 3.6), layout="constrained")
    plot_block_pattern(op, axes[0])
    plot_block_pattern(depthwise, axes[1])
    axes[0].set_title("this layer: groups = 1")
    axes[1].set_title("depthwise: groups = 3")
    fig.suptitle("the 3 x 3 grid of kernels $h_{ij}$: colour = group, white = zero block")
    paths.append(_save(fig, out_dir / "block_pattern.png"))

    paths.append(_save(plot_matrix(op), out_dir / "matrix.png"))
    paths.append(_save(plot_block(op, 0, 0), out_dir / "block.png"))

    fig, axes = plt.subplots(1, 4, figsize=(14, 4.4), layout="constrained")
    pictures = [image, blurred] + [picture for picture, _ in recoveries.values()]
    titles = ["original", f"blurred + noise\n{psnr(blurred, image):.2f} dB"] + [
        f"{name}\n{psnr(picture, image):.2f} dB in {seconds:.2f} s"
        for name, (picture, seconds) in recoveries.items()
    ]
    for ax, picture, title in zip(axes, pictures, titles):
        ax.imshow(np.clip(picture.transpose(1, 2, 0), 0, 1))
        ax.set_title(title)
        ax.axis("off")
    paths.append(_save(fig, out_dir / "images.png"))
    return paths


def _save(fig, path: Path) -> Path:
    from ..pictures.figures import save_figure

    return save_figure(fig, path)
