"""Spectral norm and singular values of a 64->64, 3x3 layer on 32x32: timings.

Run: python benchmarks/bench_spectral.py [--repeats 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from run import median_time  # benchmarks/run.py, beside this script

import toeplitz_conv as tc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    weight = np.random.default_rng(0).standard_normal((64, 64, 3, 3)) / 24
    print(f"{'layer 64->64, 3x3, 32x32':<44}{'median s':>10}  result")
    for mode in ("zeros", "reflect", "circular"):

        def norm(mode=mode):
            return tc.spectral_norm(tc.Conv(weight, (64, 32, 32), padding=1, padding_mode=mode))

        value = norm()  # the warm-up run gives the value printed
        t = median_time(norm, args.repeats, warmup=0)
        print(f"{'spectral_norm, ' + mode + ' (build + solve)':<44}{t:>10.2f}  {value:.10f}")
    circular = tc.Conv(weight, (64, 32, 32), padding=1, padding_mode="circular")
    values = tc.singular_values(circular)
    t = median_time(lambda: tc.singular_values(circular), args.repeats, warmup=0)
    print(f"{'all singular values, circular (FFT)':<44}{t:>10.2f}  {values.size} values")
    zeros = tc.Conv(weight, (64, 32, 32), padding=1)
    top = tc.singular_values(zeros, k=5)
    t = median_time(lambda: tc.singular_values(zeros, k=5), args.repeats, warmup=0)
    print(f"{'top 5 singular values, zeros (svds)':<44}{t:>10.2f}  {np.round(top, 6)}")


if __name__ == "__main__":
    main()
