"""solve_tikhonov against other Python tools, each on the problem it can do, in one run.

The same Tikhonov problem, min ||A x - b||^2 + d^2 ||x||^2 with d = 1e-2 sigma_max, a
7x7 Gaussian blur (sigma 1.6) of one 512x512 channel, noise 0.003:

- circular padding: scikit-image's ``restoration.wiener`` with the identity as
  regulariser (``reg`` an all-ones transfer function, ``balance = d^2``,
  ``clip=False``), against ``method="fourier"`` (first call, then a repeated call);
- zero padding: pylops' ``cgls`` on ``Convolve2D`` (its ``tol`` set to stop where our
  ``rtol`` does: the normal-equation residual below ``rtol * ||A^T b||``), against
  ``method="pcg"`` with no preconditioner, the circulant one and the cosine one.

- circular padding: DeepInverse's ``BlurFFT.prox_l2`` (the filter as a float64
  tensor, ``gamma = 1 / d^2``, ``z = 0``), which solves the same problem by FFT.

Per row: seconds (median of 3 calls; a preconditioner is built at the first and kept by
the layer), iterations, and max |x - ours| and the relative error
against ours: the exact solution, or for zero padding ours to rtol 1e-12.

Needs scikit-image and deepinv (optional; their rows are skipped without them).
deepinv imports torchvision, whose wheels do not load beside the CPU build of torch
2.13.0 that the tests use; a separate environment with ``torch==2.14.1
torchvision==0.29.1 deepinv`` runs it. Run:
python benchmarks/bench_anchors.py [--size 512]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pylops
from environment import describe_environment  # benchmarks/environment.py, beside this
from pylops.optimization.basic import cgls

import toeplitz_conv as tc

RTOL = 1e-8


def kernel(size: int = 7, sigma: float = 1.6) -> np.ndarray:
    t = np.arange(size) - size // 2
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def timed(call, repeats: int = 3):
    result, times = None, []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return result, float(np.median(times)), times[0]


def line(name, seconds, iterations, x, ours, reference):
    gap = np.abs(x - ours).max()
    error = np.linalg.norm(x - reference) / np.linalg.norm(reference)
    print(f"{name:<46}{seconds:>9.3f}{iterations:>7}{gap:>12.1e}{error:>12.1e}", flush=True)


def problem(size: int, mode: str):
    h = kernel()
    op = tc.Conv(h[None, None], (1, size, size), padding=3, padding_mode=mode)
    rng = np.random.default_rng(0)
    truth = rng.random(op.shape[1])
    b = op @ truth + 0.003 * rng.standard_normal(op.shape[0])
    damp = 1e-2 * tc.spectral_norm(op, rtol=1e-6)
    return h, op, b, damp


def circular_rows(size: int) -> None:
    h, op, b, damp = problem(size, "circular")
    start = time.perf_counter()
    first = tc.solve_tikhonov(op, b, damp)
    first_seconds = time.perf_counter() - start
    ours, seconds, _ = timed(lambda: tc.solve_tikhonov(op, b, damp).x)
    line("ours, fourier (exact), first call", first_seconds, 0, first.x, ours, ours)
    line("ours, fourier (exact), repeated", seconds, 0, ours, ours, ours)
    scikit_image_row(h, b, damp, size, ours)
    deepinv_row(h, b, damp, size, ours)


def scikit_image_row(h, b, damp, size, ours) -> None:
    try:
        from skimage.restoration import wiener
    except ImportError:
        print("scikit-image is not installed: its row is skipped")
        return
    image = b.reshape(size, size)
    identity = np.ones((size, size // 2 + 1), dtype=complex)  # a transfer function
    x, seconds, _ = timed(lambda: wiener(image, h, damp**2, reg=identity, clip=False).ravel())
    line("scikit-image wiener (reg = identity)", seconds, 0, x, ours, ours)


def deepinv_row(h, b, damp, size, ours) -> None:
    try:
        import torch
        from deepinv.physics import BlurFFT
    except Exception as error:  # not installed, or torchvision's operators fail to load
        print(f"deepinv is not usable here ({type(error).__name__}: {error}): its row is skipped")
        return
    y = torch.from_numpy(b.reshape(1, 1, size, size))
    physics = BlurFFT(img_size=(1, size, size), filter=torch.from_numpy(h[None, None].copy()))
    z = torch.zeros_like(y)
    # argmin gamma/2 ||Ax - y||^2 + 1/2 ||x - z||^2: ours with damp^2 = 1 / gamma
    x, seconds, _ = timed(lambda: physics.prox_l2(z, y, 1 / damp**2).numpy().ravel())
    line(f"DeepInverse BlurFFT.prox_l2 ({x.dtype})", seconds, 0, x, ours, ours)


def zero_rows(size: int) -> None:
    h, op, b, damp = problem(size, "zeros")
    reference = tc.solve_tikhonov(op, b, damp, rtol=1e-12, preconditioner="cosine").x
    results = {}
    for choice in (None, "circulant", "cosine"):
        result, seconds, _ = timed(
            lambda choice=choice: tc.solve_tikhonov(op, b, damp, rtol=RTOL, preconditioner=choice)
        )
        results[choice] = (result, seconds)
    ours = reference
    for choice, (result, seconds) in results.items():
        line(
            f"ours, pcg, preconditioner={choice!r}",
            seconds,
            result.iterations,
            result.x,
            ours,
            reference,
        )
    blur = pylops.signalprocessing.Convolve2D((size, size), h=h, offset=(3, 3))
    agreement = np.abs(blur @ ours - op @ ours).max()
    tol = (RTOL * np.linalg.norm(blur.rmatvec(b))) ** 2  # cgls compares its squared norm
    (x, _, iterations, *_), seconds, _ = timed(
        lambda: cgls(blur, b, niter=100_000, damp=damp, tol=tol)
    )
    line("pylops cgls on Convolve2D", seconds, iterations, x.ravel(), ours, reference)
    print(f"(pylops' Convolve2D and ours differ by {agreement:.1e} on one vector)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    print(describe_environment())
    print(f"{'solver':<46}{'seconds':>9}{'iters':>7}{'max|x-ours|':>12}{'rel error':>12}")
    print(f"-- circular, {args.size}x{args.size}, one channel")
    circular_rows(args.size)
    print(f"-- zero padding, {args.size}x{args.size}, one channel, rtol {RTOL:g}")
    zero_rows(args.size)


if __name__ == "__main__":
    main()
