"""Total variation, the data prox, certified steps and the damp rules on a photograph,
beside the tools users would otherwise pick, measured side by side in one run.

The problem (issue #32): scikit-image's ``astronaut`` (3 x 256 x 256, every other
pixel), blurred by a 3 -> 3 layer whose 7 x 7 Gaussian (sigma 1.6) leaks 12 % of each
channel into the others, noise sigma = 0.01, for each padding mode.

Tables:

1. TV (isotropic, lam = LAM): pyproximal's ``LinearizedADMM`` (its ``L2`` prox of the
   data term with 10 inner iterations, ``L21`` on the same gradient, 100 iterations)
   against ``tc.solve_tv``: the time ours takes to reach the PSNR that LinearizedADMM
   reaches in 100 iterations (iterate by iterate, through ``callback``, the PSNR's own
   time excluded), and ours to rtol 1e-3; the ratio of the times.
2. The data prox inside pyproximal's ``ADMM`` (g = Box[0, 1]), 30 outer iterations:
   ``tc.LeastSquaresProx`` against ``pyproximal.L2(Op, b, niter=10, solver="cg")`` at a
   well-conditioned step (damp 1) and at damp 0.02, with the error of one prox against
   the exact one (ours to rtol 1e-12 where it is not exact).
3. Certified steps: pyproximal's ``PrimalDual`` on K = [A; grad] for the TV problem
   with tau = mu = 0.99 / L, L from pylops' ``power_iteration`` (10 iterations), from
   ``tc.tv_norm_bounds`` (the proven upper end) and the true norm (the bracket's lower
   end, rtol 1e-6): tau mu ||K||^2, and the iterations to reach the objective within
   1e-3 (relative) of the best found in 1500 iterations.
4. The damp rules of ``tc.choose_damp``: GCV's and the discrepancy principle's damps
   and PSNRs (solve_tikhonov, rtol 1e-6) against the best damp of a grid of 40 per
   decade.
6. The blur's certified norm: ``tc.norm_bounds`` (the Collatz-Wielandt bound of a
   layer with taps of one sign) at rtol 1e-3 and 1e-6, against ``method="symbol"``,
   with seconds and the traced peak memory.

DeepInverse's TV-ADMM (``--deepinv``) runs in its own environment (torchvision does
not load beside the CPU build of torch 2.13.0 the tests use): ``python -m venv v;
v/bin/pip install torch==2.14.1 torchvision==0.29.1 deepinv scikit-image -e .``.

Run: python benchmarks/bench_tv.py [--tables 1,2,3,4,6] [--deepinv]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pylops
import pyproximal
from environment import describe_environment  # benchmarks/environment.py, beside this
from pylops.optimization.eigs import power_iteration

import toeplitz_conv as tc
from toeplitz_conv.pictures import cross_channel_blur, psnr

LAM = 0.002
MODES = ("circular", "replicate", "reflect", "zeros")


def photograph() -> np.ndarray:
    from skimage.data import astronaut

    return (astronaut().astype(float) / 255).transpose(2, 0, 1)[:, ::2, ::2].copy()


def problem(mode: str):
    truth = photograph()
    op = tc.Conv(cross_channel_blur(), truth.shape, padding=3, padding_mode=mode)
    noise = 0.01 * np.random.default_rng(0).standard_normal(op.shape[0])
    return op, truth, op.matvec(truth.ravel()) + noise


def boundary(op) -> str:
    return "periodic" if op.geometry.padding_mode == "circular" else "neumann"


def linearized_admm(op, b, truth, iterations=100):
    grad = tc.Gradient(op.input_shape, boundary(op))
    data = pyproximal.L2(Op=op, b=b, niter=10, warm=True)
    tv = pyproximal.L21(ndim=2, sigma=LAM)
    tau = 1.0
    mu = 0.99 * tau / tc.solve.steps.gradient_norm(op.input_shape, boundary(op)) ** 2
    start = time.perf_counter()
    x = pyproximal.optimization.primal.LinearizedADMM(
        data, tv, grad, np.zeros(op.shape[1]), tau, mu, niter=iterations
    )[0]
    return time.perf_counter() - start, psnr(x.reshape(truth.shape), truth)


def time_to_psnr(op, b, truth, target):
    """Seconds (the callback's own time excluded) and iterations until an iterate of
    solve_tv reaches ``target`` dB."""
    state = dict(start=time.perf_counter(), spent=0.0, reached=None, count=0)

    def watch(x):
        mark = time.perf_counter()
        state["count"] += 1
        if state["reached"] is None and psnr(x.reshape(truth.shape), truth) >= target:
            state["reached"] = (mark - state["start"] - state["spent"], state["count"])
        state["spent"] += time.perf_counter() - mark

    tc.solve_tv(op, b, LAM, rtol=1e-4, maxiter=400, callback=watch)
    return state["reached"] or (float("nan"), state["count"])


def table_tv() -> None:
    print(f"\n1. TV, lam = {LAM}: pyproximal LinearizedADMM (100 it) against solve_tv")
    print(
        f"{'padding':<10}{'LADMM s':>9}{'LADMM dB':>10}{'ours to it':>11}{'ours s':>8}"
        f"{'ratio':>7}  {'ours rtol 1e-3: it, s, dB, x-step':<40}"
    )
    for mode in MODES:
        op, truth, b = problem(mode)
        tc.solve_tv(op, b, LAM, maxiter=2)  # the factorisation, built once per layer
        seconds, target = linearized_admm(op, b, truth)
        ours, iterations = time_to_psnr(op, b, truth, target)
        full = tc.solve_tv(op, b, LAM, rtol=1e-3, maxiter=1000)
        quality = psnr(full.x.reshape(truth.shape), truth)
        print(
            f"{mode:<10}{seconds:>9.2f}{target:>10.2f}{iterations:>11}{ours:>8.2f}"
            f"{seconds / ours:>7.1f}  {full.iterations}, {full.seconds:.2f}, {quality:.2f}, "
            f"{full.method} ({full.inner_iterations} CG)",
            flush=True,
        )


def admm_with(prox, n, tau, iterations=30):
    box = pyproximal.Box(lower=0.0, upper=1.0)
    start = time.perf_counter()
    pyproximal.optimization.primal.ADMM(prox, box, np.zeros(n), tau, niter=iterations)
    return (time.perf_counter() - start) / iterations


def table_prox() -> None:
    print("\n2. The data prox inside pyproximal's ADMM (Box[0, 1]), seconds per outer iteration")
    print(
        f"{'padding':<10}{'damp':>6}{'ours s/it':>11}{'L2 cg s/it':>12}{'ratio':>7}"
        f"{'ours err':>10}{'L2 err':>10}"
    )
    for mode in ("circular", "zeros"):
        op, truth, b = problem(mode)
        v = np.clip(op.rmatvec(b), 0, 1)
        for damp in (1.0, 0.02):
            tau = 1 / damp**2
            ours = tc.LeastSquaresProx(op, b, rtol=1e-3, change_rtol=0.1)
            theirs = pyproximal.L2(Op=op, b=b, niter=10, warm=True, solver="cg")
            n = op.shape[1]
            ours_s, theirs_s = admm_with(ours, n, tau), admm_with(theirs, n, tau)
            exact = tc.solve_tikhonov(op, b, damp, x0=v, rtol=1e-12).x
            errors = []
            for prox in (
                tc.LeastSquaresProx(op, b, rtol=1e-3),
                pyproximal.L2(Op=op, b=b, niter=10, solver="cg"),
            ):
                x = prox.prox(v, tau)
                errors.append(np.linalg.norm(x - exact) / np.linalg.norm(exact))
            print(
                f"{mode:<10}{damp:>6g}{ours_s:>11.4f}{theirs_s:>12.4f}{theirs_s / ours_s:>7.1f}"
                f"{errors[0]:>10.1e}{errors[1]:>10.1e}",
                flush=True,
            )


def primal_dual_history(op, b, norm, iterations=1500) -> np.ndarray:
    """The TV objective of every PrimalDual iterate with tau = mu = 0.99 / norm."""
    grad = tc.Gradient(op.input_shape, boundary(op))
    k = pylops.VStack([op, grad])
    g = pyproximal.VStack(
        [pyproximal.L2(b=b), pyproximal.L21(ndim=2, sigma=LAM)], nn=[op.shape[0], grad.shape[0]]
    )
    history = []

    def objective(x):
        r = op.matvec(x) - b
        tv = tc.total_variation(x.reshape(op.input_shape), boundary(op))
        history.append(0.5 * float(r @ r) + LAM * tv)

    step = 0.99 / norm
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        pyproximal.optimization.primaldual.PrimalDual(
            pyproximal.Box(),
            g,
            k,
            np.zeros(op.shape[1]),
            step,
            step,
            niter=iterations,
            callback=objective,
        )
    return np.array(history)


def table_steps() -> None:
    print("\n3. Certified steps: PrimalDual on [A; grad], tau = mu = 0.99 / L, 1500 it")
    print(f"{'padding':<10}{'L from':<14}{'L':>9}{'tau mu |K|^2':>14}{'it to 1e-3':>12}")
    for mode in ("circular", "reflect", "zeros"):
        op, truth, b = problem(mode)
        grad = tc.Gradient(op.input_shape, boundary(op))
        k = pylops.VStack([op, grad])
        estimate = float(np.sqrt(power_iteration(k.H @ k, niter=10, dtype=np.float64)[0]))
        bounds = tc.tv_norm_bounds(op, 1.0, rtol=1e-6)
        true = float(np.sqrt(power_iteration(k.H @ k, niter=3000, dtype=np.float64)[0]))
        true = max(true, bounds.lower)
        runs = {
            "power, 10 it": estimate,
            "proven upper": bounds.upper,
            "true (3000 it)": true,
        }
        histories = {name: primal_dual_history(op, b, norm) for name, norm in runs.items()}
        best = min(float(np.nanmin(h[np.isfinite(h)], initial=np.inf)) for h in histories.values())
        for name, norm in runs.items():
            history = histories[name]
            reached = np.nonzero(np.isfinite(history) & (history <= best * (1 + 1e-3)))[0]
            count = int(reached[0]) + 1 if reached.size else "never"
            condition = (0.99 / norm) ** 2 * true**2
            print(f"{mode:<10}{name:<14}{norm:>9.4f}{condition:>14.4f}{count!s:>12}", flush=True)


def table_damp() -> None:
    print("\n4. choose_damp against the best damp of a grid (40 a decade), PSNR in dB")
    print(
        f"{'padding':<10}{'GCV':>8}{'dB':>7}{'discr.':>8}{'dB':>7}{'best':>8}{'dB':>7}{'GCV s':>7}"
    )
    for mode in MODES:
        op, truth, b = problem(mode)
        start = time.perf_counter()
        gcv = tc.choose_damp(op, b)
        gcv_seconds = time.perf_counter() - start
        discrepancy = tc.choose_damp(op, b, rule="discrepancy", noise_std=0.01)

        def quality(damp):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                x = tc.solve_tikhonov(op, b, damp, rtol=1e-6, maxiter=4000).x
            return psnr(x.reshape(truth.shape), truth)

        grid = np.logspace(np.log10(gcv) - 0.5, np.log10(discrepancy) + 0.5, 61)
        scores = {d: quality(d) for d in grid}
        best = max(scores, key=scores.get)
        print(
            f"{mode:<10}{gcv:>8.4f}{quality(gcv):>7.2f}{discrepancy:>8.4f}{quality(discrepancy):>7.2f}"
            f"{best:>8.4f}{scores[best]:>7.2f}{gcv_seconds:>7.2f}",
            flush=True,
        )


def table_norms() -> None:
    import tracemalloc

    print("\n6. The blur's certified norm: norm_bounds (one-signed taps) against the symbol bound")
    print(f"{'padding':<10}{'method':<22}{'lower':>10}{'upper':>10}{'width':>9}{'s':>7}{'MB':>7}")
    for mode in ("reflect", "replicate", "zeros"):
        op, _, _ = problem(mode)
        for name, settings in (
            ("auto, rtol 1e-3", dict(rtol=1e-3)),
            ("auto, rtol 1e-6", dict(rtol=1e-6)),
            ("symbol", dict(method="symbol")),
        ):
            tracemalloc.start()
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                bounds = tc.norm_bounds(op, **settings)
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
            print(
                f"{mode:<10}{name:<22}{bounds.lower:>10.5f}{bounds.upper:>10.5f}"
                f"{bounds.relative_width:>9.1e}{seconds:>7.2f}{peak:>7.0f}",
                flush=True,
            )


def table_deepinv() -> None:
    """DeepInverse's TV by ADMM on the circular problem (its BlurFFT is per channel: the
    3 x 3 mixing is applied as a 3-output filter bank is not offered, so the problem is
    the per-channel blur, leak 0), beside solve_tv on the same problem."""
    import torch
    from deepinv.optim import optim_builder
    from deepinv.optim.data_fidelity import L2
    from deepinv.optim.prior import TVPrior
    from deepinv.physics import BlurFFT

    truth = photograph()
    weight = cross_channel_blur(7, 1.6, 0.0)
    op = tc.Conv(weight, truth.shape, padding=3, padding_mode="circular")
    b = op.matvec(truth.ravel()) + 0.01 * np.random.default_rng(0).standard_normal(op.shape[0])
    kernel = torch.from_numpy(weight[0, 0][None, None].copy())
    physics = BlurFFT(img_size=truth.shape, filter=kernel)
    y = torch.from_numpy(b.reshape(1, *truth.shape))
    model = optim_builder(
        iteration="ADMM",
        prior=TVPrior(n_it_max=20),
        data_fidelity=L2(),
        max_iter=100,
        params_algo={"stepsize": 1.0, "lambda": LAM},
    )
    start = time.perf_counter()
    x = model(y, physics).numpy()[0]
    seconds = time.perf_counter() - start
    ours = tc.solve_tv(op, b, LAM, rtol=1e-3)
    reached, iterations = time_to_psnr(op, b, truth, psnr(x, truth))
    print("\n5. DeepInverse TV-ADMM (100 it) against solve_tv, circular, per-channel blur")
    print(
        f"DeepInverse: {seconds:.2f} s, {psnr(x, truth):.2f} dB; ours to that PSNR: "
        f"{reached:.2f} s ({iterations} it); ours to rtol 1e-3: {ours.seconds:.2f} s, "
        f"{psnr(ours.x.reshape(truth.shape), truth):.2f} dB, {ours.iterations} it"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="1,2,3,4,6")
    parser.add_argument("--deepinv", action="store_true")
    args = parser.parse_args()
    print(describe_environment())
    tables = {
        "1": table_tv,
        "2": table_prox,
        "3": table_steps,
        "4": table_damp,
        "6": table_norms,
    }
    for key in filter(None, args.tables.split(",")):
        tables[key]()
    if args.deepinv:
        table_deepinv()


if __name__ == "__main__":
    main()
