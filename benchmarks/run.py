"""The benchmark suite: every figure measured side by side in one run, medians of repeats.

Layers (zero padding, "same" size):
  L1 16->16, 3x3, 64x64   L2 64->64, 3x3, 32x32    L3 8->8, 5x5, 128x128
  L4 depthwise 64 ch, groups=64, 3x3, 128x128    L5 3-D 4->4, 3x3x3, 32^3
  L6 1-D 8->8, k=31, n=4096

Tables: assembly vs a kron-sum construction and its peak memory; sparse
matvec/rmatvec vs a copy of the matrix's bytes; the direct (matrix-free)
engine vs PyTorch (same thread count) in float32 and float64; vs a pylops
Block of Convolve2D (L1); time against problem size (L1); a 64->64 layer on
256x256 that only the direct engine can run.

Run: python benchmarks/run.py [--repeats 7] [--quick] [--tables assembly,spmv,...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp
from environment import describe_environment  # benchmarks/environment.py, beside this

import toeplitz_conv as tc

LAYERS = {
    "L1": dict(c_out=16, c_in=16, groups=1, kernel=(3, 3), spatial=(64, 64)),
    "L2": dict(c_out=64, c_in=64, groups=1, kernel=(3, 3), spatial=(32, 32)),
    "L3": dict(c_out=8, c_in=8, groups=1, kernel=(5, 5), spatial=(128, 128)),
    "L4": dict(c_out=64, c_in=64, groups=64, kernel=(3, 3), spatial=(128, 128)),
    "L5": dict(c_out=4, c_in=4, groups=1, kernel=(3, 3, 3), spatial=(32, 32, 32)),
    "L6": dict(c_out=8, c_in=8, groups=1, kernel=(31,), spatial=(4096,)),
}


def make_op(spec, dtype=np.float64, engine="auto", spatial=None, seed=0):
    spatial = spec["spatial"] if spatial is None else spatial
    shape = (spec["c_out"], spec["c_in"] // spec["groups"], *spec["kernel"])
    weight = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return tc.Conv(
        weight, (spec["c_in"], *spatial), padding="same", groups=spec["groups"], engine=engine
    )


WARMUP_SECONDS = 0.02  # each timed function runs this long before it is timed


def median_time(fn, repeats, warmup=3):
    return median_times([(fn, repeats)], warmup)[0]


def median_times(runs, warmup=3):
    """Medians of several timings taken in turn (A B A B ...), not one after the other.

    ``runs`` holds ``(fn, repeats)`` pairs; a function with fewer repeats is spread
    over the rounds. This machine has noisy spells of several times the usual
    cost: taken in turn, the timings of one ratio all see the same spells.
    """
    # the first large fresh allocations of a process are several times slower, and after
    # an idle spell this machine's cores take about 10 ms of work to come back to speed
    # (a 0.7 ms product: 1.6-2.0 ms, then 8 calls to settle): warm up, by count and time
    for fn, _ in runs:
        start = time.perf_counter()
        calls = 0
        while calls < warmup or time.perf_counter() - start < WARMUP_SECONDS:
            fn()
            calls += 1
    rounds = max(repeats for _, repeats in runs)
    times = [[] for _ in runs]
    for r in range(rounds):
        for (fn, repeats), spent in zip(runs, times):
            if len(spent) < repeats * (r + 1) / rounds:
                start = time.perf_counter()
                fn()
                spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def peak_bytes(fn):
    tracemalloc.start()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, result


def kron_sum_matrix(op):
    """Baseline: sum over taps of scipy.sparse.kron(W_t, S_t), zero padding."""
    g = op.geometry
    weight = op.weight
    mask = np.kron(np.eye(g.groups), np.ones((g.out_per_group, g.in_per_group)))
    total = None
    for tap in np.ndindex(*g.kernel):
        shift = sp.csr_array(np.ones((1, 1)))
        for t, n, m, s, dil, (pb, _) in zip(
            tap, g.input_spatial, g.output_spatial, g.stride, g.dilation, g.pads
        ):
            rows = np.arange(m)
            cols = rows * s + t * dil - pb
            keep = (cols >= 0) & (cols < n)
            axis_shift = sp.csr_array((np.ones(keep.sum()), (rows[keep], cols[keep])), shape=(m, n))
            shift = sp.kron(shift, axis_shift, format="csr")
        w_t = np.zeros((g.out_channels, g.in_channels))
        w_t[mask > 0] = weight[(slice(None), slice(None), *tap)].ravel()
        term = sp.kron(sp.csr_array(w_t), shift, format="csr")
        total = term if total is None else total + term
    return total.tocsr()


def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(str(h).rjust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(str(v).rjust(w) for v, w in zip(row, widths)))


def write_floor(matrix):
    """A function allocating and writing once as many bytes as ``matrix``'s CSR arrays,
    on as many threads as the assembly uses (each fills its share of every array)."""
    from concurrent.futures import ThreadPoolExecutor

    from toeplitz_conv.core.jit import cores

    threads = cores()

    def write():
        arrays = [np.empty_like(a) for a in (matrix.data, matrix.indices, matrix.indptr)]

        def fill(k):
            for array in arrays:
                array[k * array.size // threads : (k + 1) * array.size // threads] = 1

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fill, range(threads)))

    return write


def assembly(names, repeats):
    rows = []
    for name in names:
        op = make_op(LAYERS[name])

        def build(op=op):
            return op.layer.assemble()

        matrix = build()
        t_ours, t_floor, t_kron = median_times(
            [
                (build, repeats),
                (write_floor(matrix), repeats),
                (lambda op=op: kron_sum_matrix(op), max(3, repeats // 2)),
            ]
        )
        peak, matrix = peak_bytes(build)
        final = matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
        assert abs(kron_sum_matrix(op) - matrix).max() < 1e-9, name
        rows.append(
            (
                name,
                f"{matrix.nnz:,}",
                f"{final / 1e6:.0f}",
                f"{t_ours * 1e3:.1f}",
                f"{t_floor * 1e3:.1f}",
                f"{t_ours / t_floor:.2f}",
                f"{matrix.nnz / t_ours / 1e6:.0f}",
                f"{t_kron * 1e3:.1f}",
                f"{t_kron / t_ours:.1f}x",
                f"{peak / final:.2f}",
            )
        )
    table(
        "Assembly (float64) vs writing its bytes once (floor: allocate arrays of the CSR "
        "matrix's sizes and fill them, on as many threads as the assembly) and vs a kron-sum "
        "construction; peak = tracemalloc peak / final bytes",
        (
            "layer",
            "nnz",
            "MB",
            "ours ms",
            "floor ms",
            "x floor",
            "Mnnz/s",
            "kron ms",
            "speed-up",
            "peak/final",
        ),
        rows,
    )


def spmv(names, repeats):
    rows = []
    for name in names:
        op = make_op(LAYERS[name], engine="sparse")
        nbytes = op.nbytes
        src = np.ones(nbytes // 8)
        dst = np.empty_like(src)
        x = np.ones(op.shape[1])
        y = np.ones(op.shape[0])
        op.matvec(x)  # the sparse engine assembles its matrix before the timing
        t_copy, t_mv, t_rmv = median_times(
            [
                (lambda: np.copyto(dst, src), repeats),
                (lambda: op.matvec(x), repeats),
                (lambda: op.rmatvec(y), repeats),
            ]
        )
        rows.append(
            (
                name,
                f"{nbytes / 1e6:.0f}",
                f"{t_copy * 1e3:.2f}",
                f"{t_mv * 1e3:.2f}",
                f"{t_mv / t_copy:.2f}",
                f"{t_rmv * 1e3:.2f}",
                f"{t_rmv / t_copy:.2f}",
            )
        )
    table(
        "Sparse engine (float64 CSR): matvec/rmatvec vs one copy of the matrix's bytes",
        ("layer", "MB", "copy ms", "matvec ms", "x copy", "rmatvec ms", "x copy"),
        rows,
    )


def _torch_layer_times(names, repeats, threads):
    """PyTorch conv/conv_transpose times, run in a child process of its own.

    In one process, PyTorch's OpenMP threads and OpenBLAS's spinning threads
    compete for the same cores and both slow down by up to 100x; each library
    is timed with the machine to itself.
    """
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    times = {}
    for name in names:
        spec = LAYERS[name]
        d = len(spec["kernel"])
        conv = (F.conv1d, F.conv2d, F.conv3d)[d - 1]
        conv_t = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[d - 1]
        for dtype in (np.float32, np.float64):
            op = make_op(spec, dtype, engine="direct")
            pads = tuple(pb for pb, _ in op.geometry.pads)
            w = torch.from_numpy(np.array(op.weight))
            xt = torch.as_tensor(_vector(1, op.shape[1], dtype).reshape(1, *op.input_shape))
            yt = torch.as_tensor(_vector(2, op.shape[0], dtype).reshape(1, *op.output_shape))
            g = spec["groups"]
            w_gemm, cols = (torch.as_tensor(a) for a in _im2col_gemm_operands(op))
            times[name, np.dtype(dtype).name] = (
                median_time(lambda: conv(xt, w, padding=pads, groups=g), repeats),
                median_time(lambda: conv_t(yt, w, padding=pads, groups=g), repeats),
                median_time(lambda: torch.matmul(w_gemm, cols), repeats),
            )
    return times


def _im2col_gemm_operands(op):
    """Random operands of the forward's GEMM: (G, C_out/G, C_in/G K) @ (G, C_in/G K, pixels)."""
    g = op.geometry
    rng = np.random.default_rng(3)
    shape = (g.groups, g.in_per_group * g.taps)
    weight = rng.standard_normal((g.groups, g.out_per_group, shape[1])).astype(op.dtype)
    cols = rng.standard_normal((*shape, g.output_pixels)).astype(op.dtype)
    return weight, cols


def _vector(seed, n, dtype):
    return np.random.default_rng(seed).standard_normal(n).astype(dtype)


TORCH_ROUNDS = 4  # PyTorch's process and this one take turns, a round each
SETTLE_SECONDS = 0.3  # between turns: the other library's idle threads stop spinning


def _our_layer_times(names, repeats, engines):
    """This process's side of a round: each engine's matvec and rmatvec, and the bare
    im2col GEMM in numpy, per (layer, dtype)."""
    times = {}
    for name in names:
        for dtype in (np.float32, np.float64):
            x = _vector(1, make_op(LAYERS[name]).shape[1], dtype)
            y = _vector(2, make_op(LAYERS[name]).shape[0], dtype)
            fwd, adj = {}, {}
            for engine in engines:
                op = make_op(LAYERS[name], dtype, engine=engine)
                # one after the other, as PyTorch's are timed
                fwd[engine] = median_time(lambda op=op: op.matvec(x), repeats)
                adj[engine] = median_time(lambda op=op: op.rmatvec(y), repeats)
            w_gemm, cols = _im2col_gemm_operands(op)
            gemm = median_time(lambda: np.matmul(w_gemm, cols), repeats)
            times[name, np.dtype(dtype).name] = (fwd, adj, gemm)
    return times


def direct_vs_torch(names, repeats):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = len(os.sched_getaffinity(0))
    engines = [e for e in ("direct", "numba") if e in tc.installed_engines()]
    per_round = repeats
    context = multiprocessing.get_context("spawn")
    theirs, ours = [], []
    with ProcessPoolExecutor(1, mp_context=context) as child:
        for _ in range(TORCH_ROUNDS):  # in turn: a slow spell of the machine hits both
            theirs.append(child.submit(_torch_layer_times, names, per_round, threads).result())
            time.sleep(SETTLE_SECONDS)
            ours.append(_our_layer_times(names, per_round, engines))
            time.sleep(SETTLE_SECONDS)

    median = statistics.median
    rows = []
    for name in names:
        for dtype in (np.float32, np.float64):
            key = (name, np.dtype(dtype).name)
            row = [name, np.dtype(dtype).name, make_op(LAYERS[name], dtype).engine_in_use]
            for side in (0, 1):  # forward, adjoint
                row += [f"{median(r[key][side][e] for r in ours) * 1e3:.2f}" for e in engines]
                row += [f"{median(r[key][side] for r in theirs) * 1e3:.2f}"]
                row += [
                    f"{median(o[key][side][e] / t[key][side] for o, t in zip(ours, theirs)):.2f}"
                    for e in engines
                ]
            gemm = median(r[key][2] for r in ours)
            torch_gemm = median(r[key][2] for r in theirs)
            floor = median(o[key][2] / t[key][0] for o, t in zip(ours, theirs))
            row += [f"{gemm * 1e3:.2f}", f"{torch_gemm * 1e3:.2f}", f"{floor:.2f}"]
            rows.append(row)
    short = {"direct": "dir", "numba": "nb"}
    header = ["layer", "dtype", "auto"]
    for direction in ("fwd", "adj"):
        header += [f"{direction} {short[e]} ms" for e in engines] + ["torch"]
        header += [f"{short[e]} ratio" for e in engines]
    table(
        f"Matrix-free engines (dir = direct, nb = numba) vs PyTorch conv / conv_transpose "
        f"({threads} threads each, PyTorch in its own process, the two taking "
        f"{TORCH_ROUNDS} turns); times: medians over the turns; ratio = ours / torch, the "
        "median of the turns' ratios; auto = the engine engine='auto' runs.\n"
        "GEMM: the im2col GEMM alone in numpy and in torch; floor = numpy GEMM / torch conv, "
        "the lowest ratio an engine built on that GEMM can reach (the direct engine's "
        "depthwise path and the numba engine use no GEMM)",
        (*header, "GEMM np", "torch", "floor"),
        rows,
    )


def versus_pylops(repeats):
    import pylops
    from pylops.signalprocessing import Convolve2D

    spec = LAYERS["L1"]
    op = make_op(spec, engine="direct")
    w = op.weight
    n = spec["spatial"]
    blocks = [
        [
            Convolve2D(n, h=w[i, j, ::-1, ::-1], offset=(1, 1), method="direct")
            for j in range(spec["c_in"])
        ]
        for i in range(spec["c_out"])
    ]
    block = pylops.Block(blocks)
    x = np.random.default_rng(3).standard_normal(op.shape[1])
    assert np.allclose(block @ x, op @ x), "the pylops composition is a different layer"
    # not taken in turn: after a slow pure-Python call, BLAS threads have gone to sleep
    t_block = median_time(lambda: block.matvec(x), max(3, repeats // 2))
    t_direct = median_time(lambda: op.matvec(x), repeats)
    table(
        "L1 direct engine vs a pylops Block of 256 Convolve2D (float64 matvec)",
        ("pylops Block ms", "direct ms", "speed-up"),
        [(f"{t_block * 1e3:.1f}", f"{t_direct * 1e3:.2f}", f"{t_block / t_direct:.0f}x")],
    )


def scaling(repeats):
    rows, base = [], None
    for size in (32, 64, 128, 256):
        op = make_op(LAYERS["L1"], spatial=(size, size), engine="direct")
        x = np.ones(op.shape[1])
        t_mv = median_time(lambda: op.matvec(x), repeats)
        t_asm = median_time(
            lambda: op.layer.assemble(),
            max(1, repeats // 2),
        )
        per_pixel = t_mv / size**2
        base = base or per_pixel
        rows.append(
            (
                f"{size}x{size}",
                f"{op.nnz:,}",
                f"{t_mv * 1e3:.2f}",
                f"{per_pixel * 1e9:.1f}",
                f"{per_pixel / base:.2f}",
                f"{t_asm * 1e3:.1f}",
                f"{op.nnz / t_asm / 1e6:.0f}",
            )
        )
    table(
        "L1 against problem size: direct matvec and assembly (cost per pixel should stay flat)",
        ("size", "nnz", "matvec ms", "ns/pixel", "vs 32x32", "assembly ms", "Mnnz/s"),
        rows,
    )


def big_layer(repeats):
    spec = dict(c_out=64, c_in=64, groups=1, kernel=(3, 3), spatial=(256, 256))
    op = make_op(spec, np.float32, engine="direct")
    x = np.ones(op.shape[1], dtype=np.float32)
    peak_mv, y = peak_bytes(lambda: op.matvec(x))
    peak_rmv, _ = peak_bytes(lambda: op.rmatvec(y))
    t_mv = median_time(lambda: op.matvec(x), max(1, repeats // 2))
    t_rmv = median_time(lambda: op.rmatvec(y), max(1, repeats // 2))
    try:
        op.tosparse()
        refused = "NOT refused"
    except tc.MatrixTooLargeError as error:
        refused = str(error).split(":")[0]
    table(
        "64->64, 3x3, float32 on 256x256, direct engine (explicit matrix: "
        f"{op.nnz:,} nonzeros, {op.nbytes / 1e9:.1f} GB)",
        ("", "ms", "peak MB"),
        [
            ("matvec", f"{t_mv * 1e3:.0f}", f"{peak_mv / 1e6:.0f}"),
            ("rmatvec", f"{t_rmv * 1e3:.0f}", f"{peak_rmv / 1e6:.0f}"),
        ],
    )
    print(f"tosparse(): {refused}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="L1 only, fewer repeats")
    parser.add_argument(
        "--tables", default=",".join(TABLES), help=f"comma-separated, from {','.join(TABLES)}"
    )
    args = parser.parse_args()
    names = ["L1"] if args.quick else list(LAYERS)
    repeats = 3 if args.quick else args.repeats
    chosen = args.tables.split(",")
    if unknown := set(chosen) - set(TABLES):
        parser.error(f"unknown tables {sorted(unknown)}; choose from {','.join(TABLES)}")
    print(f"toeplitz_conv {tc.__version__}; medians of {repeats} runs")
    print(describe_environment())
    for name in chosen:
        TABLES[name](names, repeats)


def engines_vs_torch(names, repeats):
    try:
        import torch  # noqa: F401  (only checked here; timed in a child process)
    except ImportError:
        print("\n(torch not installed: no PyTorch comparison)")
        return
    direct_vs_torch(names, repeats)


TABLES = {
    "assembly": assembly,
    "spmv": spmv,
    "torch": engines_vs_torch,
    "pylops": lambda names, repeats: versus_pylops(repeats),
    "scaling": lambda names, repeats: scaling(repeats),
    "big": lambda names, repeats: big_layer(repeats),
}


if __name__ == "__main__":
    main()
