"""Structured solves against the targets of issue #21, measured side by side in one run.

Problems (float64): 3->3 cross-channel Gaussian blurs of a 512x512 colour image (12 %
leaking into the other channels), a 3->3 motion blur (a 7-tap diagonal streak), and a
depthwise 64-channel 5x5 blur on 256x256, each with the padding the row names.
Per row: the method solve_tikhonov takes, its iterations, its first call's time and a
repeated call's, that time over one forward product (auto engine; seven pairs timed in
turn, medians), for the exact methods the first call on a new layer over the product
(median of three layers: the factorisation, without what a process loads once, such
as numba's compiled loops), and the error against a reference (preconditioned
conjugate gradients to rtol 1e-12, for the exact methods too); and beside it plain CG
on the same normal equations to the same rtol (iterations, time), and where the padding is neither
circular nor exactly cosine, CG with tc.preconditioner's kinds (iterations, time, time
over plain CG's). damp is given relative to sigma_max (the power method).

Run: python benchmarks/bench_solve.py [--size 512] [--quick]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import scipy.sparse.linalg as spla
from environment import describe_environment  # benchmarks/environment.py, beside this

import toeplitz_conv as tc
from toeplitz_conv.core.jit import blas_on_one_thread
from toeplitz_conv.pictures import cross_channel_blur

MAXITER = 2000  # plain CG stops here (marked *)


def gaussian(size: int, sigma: float = 1.6) -> np.ndarray:
    return cross_channel_blur(size, sigma, 0.12)


def motion(size: int = 7) -> np.ndarray:
    streak = np.zeros((size, size))
    streak[np.arange(size), np.arange(size)] = 1.0
    streak[size // 2 + 1 :, : size // 2] = 0.0  # a one-sided streak: not symmetric
    streak /= streak.sum()
    mixing = np.full((3, 3), 0.12) + (1 - 3 * 0.12) * np.eye(3)
    return mixing[:, :, None, None] * streak


def seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def medians_in_turn(calls, repeats: int = 7) -> list[float]:
    """The median time of each call, timed in turn (A, B, A, B, ...) after one warm-up
    each, so that the machine's drifts reach all of them alike."""
    for call in calls:
        call()
    times = [[seconds(call) for call in calls] for _ in range(repeats)]
    return [float(t) for t in np.median(times, axis=0)]


def plain_cg(op, b, damp, rtol, preconditioner=None, maxiter=MAXITER):
    """scipy's cg on the normal equations, with BLAS on one thread as solve_tikhonov runs
    it on these sizes (2^13 unknowns or more), so that the times compare iterations and
    preconditioners, not OpenBLAS's spinning threads."""
    n = op.shape[1]
    gram = spla.LinearOperator((n, n), matvec=lambda v: op.rmatvec(op.matvec(v)) + damp**2 * v)
    count = []
    start = time.perf_counter()
    with blas_on_one_thread():
        x, info = spla.cg(
            gram,
            op.rmatvec(b),
            rtol=rtol,
            maxiter=maxiter,
            M=preconditioner,
            callback=count.append,
        )
    return x, len(count), time.perf_counter() - start, info == 0


def tight_reference(op, b, damp):
    """Conjugate gradients on the normal equations to rtol 1e-12 (``method="pcg"``: the
    layer's own products, never the exact method measured), preconditioned by the first
    of the cosine and circulant kinds that applies."""
    choice = None
    for kind in ("cosine", "circulant"):
        try:
            tc.preconditioner(op, damp, kind=kind)
        except ValueError:
            continue
        choice = kind
        break
    with warnings.catch_warnings():  # a reference that stops at the cap shows in the error
        warnings.simplefilter("ignore", RuntimeWarning)
        return tc.solve_tikhonov(
            op, b, damp, rtol=1e-12, maxiter=20_000, method="pcg", preconditioner=choice
        ).x


def first_solves(make, truth, b, damp, rtol, layers: int = 3) -> float:
    """The median first solve of ``layers`` new layers (``make()``), each after its
    product's engine is built: the factorisation, without what a process loads once
    (numba's compiled loops, the FFT's plans)."""
    times = []
    for _ in range(layers):
        op = make()
        op @ truth
        times.append(seconds(lambda: tc.solve_tikhonov(op, b, damp, rtol=rtol)))
    return float(np.median(times))


def row(name, make, damp_relative, rtol=1e-8, kinds=()):
    """One line of the table for the layer ``make()`` builds."""
    op = make()
    rng = np.random.default_rng(0)
    truth = rng.random(op.shape[1])
    b = op @ truth + 0.003 * rng.standard_normal(op.shape[0])
    top = tc.spectral_norm(op, rtol=1e-6)
    damp = damp_relative * top
    op @ truth  # the product's engine is built before the first solve
    first = time.perf_counter()
    result = tc.solve_tikhonov(op, b, damp, rtol=rtol)
    first = time.perf_counter() - first
    # a second call reuses what the first kept; long iterative solves are timed once,
    # the others in turn with the product they are compared with
    if first < 5:
        product, again = medians_in_turn(
            [lambda: op @ truth, lambda: tc.solve_tikhonov(op, b, damp, rtol=rtol)]
        )
    else:
        (product,), again = medians_in_turn([lambda: op @ truth]), first
    fresh = first_solves(make, truth, b, damp, rtol) / product if result.exact else math.nan
    reference = tight_reference(op, b, damp)
    x_cg, it_cg, t_cg, ok = plain_cg(op, b, damp, rtol)
    error = np.linalg.norm(result.x - reference) / np.linalg.norm(reference)
    line = (
        f"{name:<34}{damp_relative:>7.0e} {result.method:>8} {result.iterations:>5} "
        f"{first:>8.3f} {again:>8.3f} {again / product:>7.1f} {fresh:>7.1f} {error:>9.1e} | "
        f"{it_cg:>5}{'' if ok else '*'} {t_cg:>8.2f}"
    )
    for kind in kinds:
        m = tc.preconditioner(op, damp, kind=kind)
        _, it_p, t_p, ok_p = plain_cg(op, b, damp, rtol, preconditioner=m)
        line += f" | {kind} {it_p}{'' if ok_p else '*'} it {t_p:.2f} s ({t_p / t_cg:.2f}x)"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--quick", action="store_true", help="128x128, fewer rows")
    args = parser.parse_args()
    size = 128 if args.quick else args.size
    print(describe_environment())
    print(
        f"{'problem':<34}{'damp':>7} {'method':>8} {'iters':>5} {'first s':>8} "
        f"{'solve s':>8} {'x prod':>7} {'1st x':>7} {'error':>9} | {'CG it':>5} {'CG s':>8}"
    )
    shape = (3, size, size)
    row(
        "circular 7x7 Gaussian",
        lambda: tc.Conv(gaussian(7), shape, padding=3, padding_mode="circular"),
        1e-2,
    )
    row(
        "replicate 3x3 Gaussian (symmetric)",
        lambda: tc.Conv(gaussian(3, 0.8), shape, padding=1, padding_mode="replicate"),
        1e-2,
    )
    for damp in (1e-1, 1e-2, 1e-3):
        row(
            "reflect 7x7 Gaussian",
            lambda: tc.Conv(gaussian(7), shape, padding=3, padding_mode="reflect"),
            damp,
        )
        if args.quick:
            break
    both = ("circulant", "cosine")
    for damp in (1e-2, 1e-3):
        row("zeros 7x7 Gaussian", lambda: tc.Conv(gaussian(7), shape, padding=3), damp, kinds=both)
    row(
        "replicate 7x7 Gaussian (pad 3)",
        lambda: tc.Conv(gaussian(7), shape, padding=3, padding_mode="replicate"),
        1e-2,
        kinds=both,
    )
    row("zeros 7x7 motion blur", lambda: tc.Conv(motion(), shape, padding=3), 1e-2, kinds=both)
    if not args.quick:
        t = np.arange(5) - 2
        g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / 2)
        depthwise = np.repeat((g / g.sum())[None, None], 64, axis=0)
        row(
            "depthwise 64 5x5 circular 256^2",
            lambda: tc.Conv(
                depthwise, (64, 256, 256), padding=2, groups=64, padding_mode="circular"
            ),
            1e-2,
        )
    print(f"* CG did not reach rtol within {MAXITER} iterations")


if __name__ == "__main__":
    main()
