"""What BLAS on one thread buys a solver loop around a layer's products
(``tc.blas_on_one_thread``), measured side by side in one run.

OpenBLAS's idle threads keep spinning for a while after each multithreaded call and
take the cores from the products and FFTs that follow. Per row, the same loop timed
with and without the limit, in turn (five pairs, medians), and their ratio:

- plain conjugate gradients on the Tikhonov normal equations of a zero-padded 3 -> 3
  7x7 blur of n x n pixels (``scipy.sparse.linalg.cg``, 30 iterations), for the sizes
  around ``toeplitz_conv.solve.iterative.BLAS_ONE_THREAD_SIZE``;
- the demo's 60 LSQR iterations (pylops) on its reflect-padded 3 x 150 x 128 blur.

A second table times scipy.fft's real 2-D transform of 3 x n x n images on one thread
and on every core (``workers=1`` against ``-1``), for the sizes around
``toeplitz_conv.core.jit.FFT_THREADED_SIZE``, from which the solvers' transforms take
every core.

Run: python benchmarks/bench_blas.py
"""

from __future__ import annotations

import time

import numpy as np
import pylops.optimization.basic
import scipy.fft
import scipy.sparse.linalg as spla
from environment import describe_environment  # benchmarks/environment.py, beside this

import toeplitz_conv as tc
from toeplitz_conv.core.jit import FFT_THREADED_SIZE
from toeplitz_conv.pictures import cross_channel_blur, sample_image
from toeplitz_conv.solve.iterative import BLAS_ONE_THREAD_SIZE

PAIRS = 5


def blur(n: int, mode: str = "zeros") -> tc.Conv:
    return tc.Conv(cross_channel_blur(), (3, n, n), padding=3, padding_mode=mode)


def cg_loop(op: tc.Conv):
    n = op.shape[1]
    gram = spla.LinearOperator((n, n), matvec=lambda v: op.rmatvec(op.matvec(v)) + 1e-4 * v)
    rhs = op.rmatvec(np.random.default_rng(0).standard_normal(op.shape[0]))
    return lambda: spla.cg(gram, rhs, rtol=1e-30, maxiter=30)


def lsqr_loop():
    image = sample_image()
    op = tc.Conv(cross_channel_blur(), image.shape, padding="same", padding_mode="reflect")
    data = op.apply(image).ravel()
    return lambda: pylops.optimization.basic.lsqr(
        op, data, damp=0.02, niter=60, atol=0, btol=0, conlim=1e12, calc_var=False
    )


def fft_loop(n: int, workers: int):
    """100 real 2-D FFTs of a 3 x n x n image."""
    image = np.random.default_rng(0).random((3, n, n))

    def loop():
        for _ in range(100):
            scipy.fft.rfftn(image, axes=(-2, -1), workers=workers)

    return loop


def fft_table() -> None:
    print(f"\nscipy.fft on every core from {FFT_THREADED_SIZE} entries on")
    print(
        f"{'100 rfft2 of 3 x n x n':<44}{'entries':>9}{'one core':>12}{'all cores':>13}{'ratio':>7}"
    )
    for n in (16, 64, 128, 160, 192, 224, 256, 512):
        times = []
        for _ in range(PAIRS):
            pair = []
            for workers in (1, -1):
                start = time.perf_counter()
                fft_loop(n, workers)()
                pair.append(time.perf_counter() - start)
            times.append(pair)
        one, every = np.median(times, axis=0)
        print(f"{'n = ' + str(n):<44}{3 * n * n:>9}{one:>11.3f}s{every:>12.3f}s{one / every:>7.2f}")


def in_turn(loop) -> tuple[float, float]:
    """Median seconds of ``loop`` with BLAS on one thread, and with its own threads."""

    def limited():
        with tc.blas_on_one_thread():
            loop()

    times = []
    for call in (limited, loop):  # warm-up
        call()
    for _ in range(PAIRS):
        pair = []
        for call in (limited, loop):
            start = time.perf_counter()
            call()
            pair.append(time.perf_counter() - start)
        times.append(pair)
    one, own = np.median(times, axis=0)
    return float(one), float(own)


def main() -> None:
    print(describe_environment())
    print(f"solve_tikhonov limits BLAS from {BLAS_ONE_THREAD_SIZE} unknowns on")
    print(f"{'loop':<44}{'unknowns':>9}{'one thread':>12}{'own threads':>13}{'ratio':>7}")
    rows = [
        (f"CG, 30 it, zeros 3x{n}x{n}", blur(n).shape[1], cg_loop(blur(n)))
        for n in (32, 64, 96, 128, 256, 512)
    ]
    rows.append(("demo: 60 LSQR it, reflect 3x150x128", 3 * 150 * 128, lsqr_loop()))
    for name, unknowns, loop in rows:
        one, own = in_turn(loop)
        print(f"{name:<44}{unknowns:>9}{one:>11.3f}s{own:>12.3f}s{one / own:>7.2f}")
    fft_table()


if __name__ == "__main__":
    main()
