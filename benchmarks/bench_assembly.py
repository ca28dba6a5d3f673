"""Assembly speed: toeplitz_conv's vectorized build vs a kron-sum construction.

The kron-sum baseline is the textbook formula A = sum_t kron(W_t, S_t) with
scipy.sparse, S_t the 2-D shift of tap t (zero padding, stride 1). Both are
measured in the same run; medians of repeated runs are printed.

Run: python benchmarks/bench_assembly.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.sparse as sp

import toeplitz_conv as tc


def kron_sum_matrix(weight: np.ndarray, size: int) -> sp.csr_array:
    """sum over taps of kron(W_t, S_t) for a 3x3 'same' conv on size x size."""
    c_out, c_in, kh, kw = weight.shape
    total = None
    for a in range(kh):
        for b in range(kw):
            shift = sp.kron(sp.eye_array(size, k=a - kh // 2), sp.eye_array(size, k=b - kw // 2))
            term = sp.kron(sp.csr_array(weight[:, :, a, b]), shift)
            total = term if total is None else total + term
    return total.tocsr()


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    c, size = 16, 64
    weight = rng.standard_normal((c, c, 3, 3))

    def ours():
        return tc.Conv(weight, (c, size, size), padding=1).tosparse()

    t_ours, A = median_time(ours, args.repeats)
    t_kron, B = median_time(lambda: kron_sum_matrix(weight, size), args.repeats)
    assert abs(A - B).max() < 1e-12, "the two constructions disagree"
    print(f"layer L1: {c}->{c}, 3x3, {size}x{size}, float64, nnz={A.nnz:,}")
    print(f"{'construction':<28}{'median s':>10}{'Mnnz/s':>10}{'ratio':>8}")
    print(
        f"{'toeplitz_conv (vectorized)':<28}{t_ours:>10.4f}{A.nnz / t_ours / 1e6:>10.1f}{1:>8.2f}"
    )
    print(
        f"{'kron-sum (scipy.sparse)':<28}{t_kron:>10.4f}{A.nnz / t_kron / 1e6:>10.1f}"
        f"{t_kron / t_ours:>8.2f}"
    )
    print(f"speed-up of the vectorized build over kron-sum: {t_kron / t_ours:.1f}x")


if __name__ == "__main__":
    main()
