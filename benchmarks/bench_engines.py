"""Which engine is fastest where, and how close ``engine="auto"`` comes to it.

A sweep of 3x3 "same" layers: images of 1x1 to 512x512 pixels, 1 to 64 channels,
dense (groups=1) and depthwise (groups=C), float64 and float32. Each engine
runs one matvec and one rmatvec per timing (an iteration of LSQR), the engines
timed in turn (A B C A B C ...), medians of repeats. "auto" is the engine
``engine="auto"`` resolves to on that layer, so its time is that engine's
time; auto/best is that over the fastest engine's. The sparse engine is not
run past ``SPARSE_LIMIT`` nonzeros (its matrix alone then takes more than
0.6 GB; it reads about 12 bytes per nonzero per product, several times the
matrix-free engines' time at those sizes). First-call costs of the compiled
engine (compilation, or loading it from numba's cache) are printed below the
table, each measured in a fresh process.

Run: python benchmarks/bench_engines.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from environment import describe_environment  # benchmarks/environment.py, beside this
from run import median_times

import toeplitz_conv as tc
from toeplitz_conv.engines import resolve_engine

SIZES = (1, 4, 16, 64, 256, 512)
CHANNELS = (1, 4, 16, 64)
SPARSE_LIMIT = 5 * 10**7


def layers(quick: bool):
    sizes = (1, 16, 64) if quick else SIZES
    for dtype in (np.float64, np.float32):
        for n in sizes:
            for c in (1, 16) if quick else CHANNELS:
                for kind in ("dense", "depthwise") if c > 1 else ("dense",):
                    groups = c if kind == "depthwise" else 1
                    yield dtype, n, c, kind, groups


def time_engines(dtype, n, c, groups, repeats):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((c, c // groups, 3, 3)).astype(dtype)
    ops = {
        e: tc.Conv(weight, (c, n, n), padding="same", groups=groups, engine=e)
        for e in tc.installed_engines()
    }
    if ops["sparse"].nnz > SPARSE_LIMIT:
        del ops["sparse"]
    x = rng.standard_normal(ops["direct"].shape[1]).astype(dtype)
    y = rng.standard_normal(ops["direct"].shape[0]).astype(dtype)
    pair = {e: (lambda op=op: op.rmatvec(op.matvec(x) + y)) for e, op in ops.items()}
    work = c * c // groups * 9 * n * n * 2
    # small layers: more repeats (a tenth of a millisecond moves by 10 us between calls)
    count = max(3, min(repeats * 40, int(2e9 / max(work, 1))))
    times = median_times([(fn, count) for fn in pair.values()])
    auto = resolve_engine("auto", ops["direct"].geometry)
    return dict(zip(pair, times)), auto


def first_call_costs() -> list[str]:
    """Seconds of the first product in a fresh process: cold (empty cache), then warm."""
    code = (
        "import time, numpy as np, toeplitz_conv as tc; "
        "t = time.perf_counter(); "
        "op = tc.Conv(np.ones((4, 4, 3, 3), dtype=np.{dtype}), (4, 16, 16), padding=1, "
        "engine='numba'); op.rmatvec(op.matvec(np.ones(op.shape[1], dtype=np.{dtype}))); "
        "print(f'{{time.perf_counter() - t:.2f}}')"
    )
    lines = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for dtype in ("float64", "float32"):
            seconds = [
                subprocess.run(
                    [sys.executable, "-c", code.format(dtype=dtype)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
                for _ in ("cold", "warm")
            ]
            lines.append(
                f"numba engine, first matvec + rmatvec in a new process ({dtype}): "
                f"{seconds[0]} s compiling (empty cache), {seconds[1]} s from the cache"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a few sizes only")
    args = parser.parse_args()
    engines = tc.installed_engines()
    print(f"toeplitz_conv {tc.__version__}; engines {', '.join(engines)}")
    print(describe_environment())
    header = ("dtype", "pixels", "C", "kind", *(f"{e} ms" for e in engines), "best", "auto")
    rows, worst = [], 1.0
    for dtype, n, c, kind, groups in layers(args.quick):
        times, auto = time_engines(dtype, n, c, groups, args.repeats)
        best = min(times, key=times.get)
        ratio = times[auto] / times[best]
        worst = max(worst, ratio)
        cells = [f"{times[e] * 1e3:.3f}" if e in times else "-" for e in engines]
        name = np.dtype(dtype).name
        rows.append((name, f"{n}x{n}", c, kind, *cells, best, f"{auto} {ratio:.2f}"))
        print("  ".join(map(str, rows[-1])), flush=True)
    print(
        "\nOne matvec + rmatvec, 3x3 'same' layers; auto = the engine 'auto' picks and its "
        f"time over the best engine's. Worst auto/best: {worst:.2f}"
    )
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    for row in (header, *rows):
        print("  ".join(str(v).rjust(w) for v, w in zip(row, widths)))
    if "numba" in engines:
        print("\n" + "\n".join(first_call_costs()))


if __name__ == "__main__":
    main()
