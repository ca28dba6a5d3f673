"""Certified norms of ResNet-18's conv layers, side by side with published methods.

The layers are torchvision's ResNet-18 shapes (random weights, a 32x32 input, so
stage 1 runs on 8x8), then the four stage-1 layers at their ImageNet size, 56x56.
Per layer: our proven bracket [lower, upper] (toeplitz_conv.norm_bounds, rtol 1e-6)
and its time; power iteration (100 steps, Ryu et al. 2019), its gap below our
lower bound and whether it is below the truth; Gram iteration (Delattre et al.
2023) on the layer's circular counterpart (same n); the zero-padding bound through
the circular layer on n + k - 1 (Delattre et al. 2024); Singla & Feizi (2021).
Then the targets: 16->16 3x3 on 64x64 at rtol 1e-6; 64->64 3x3 on 64x64 and on
256x256 with max_bytes=1e9 (time, traced peak, and how far the upper bound can be
above the norm: at most upper / lower - 1, the norm being at least the lower bound).

Run: python benchmarks/bench_spectral.py [--no-imagenet] [--no-targets]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from environment import describe_environment  # benchmarks/environment.py, beside this
from reference_norms import (  # benchmarks/reference_norms.py, beside this script
    gram_iteration,
    power_iteration,
    singla_feizi,
    zero_padding_gram_bound,
)

import toeplitz_conv as tc

# (name, C_in, C_out, kernel, stride, padding, input size) of ResNet-18 on a 32x32 input
RESNET18_32 = [
    ("conv1", 3, 64, 7, 2, 3, 32),
    *[(f"layer1.{b}.conv{c}", 64, 64, 3, 1, 1, 8) for b in (0, 1) for c in (1, 2)],
    ("layer2.0.conv1", 64, 128, 3, 2, 1, 8),
    ("layer2.0.conv2", 128, 128, 3, 1, 1, 4),
    ("layer2.0.downsample", 64, 128, 1, 2, 0, 8),
    *[(f"layer2.1.conv{c}", 128, 128, 3, 1, 1, 4) for c in (1, 2)],
    ("layer3.0.conv1", 128, 256, 3, 2, 1, 4),
    ("layer3.0.conv2", 256, 256, 3, 1, 1, 2),
    ("layer3.0.downsample", 128, 256, 1, 2, 0, 4),
    *[(f"layer3.1.conv{c}", 256, 256, 3, 1, 1, 2) for c in (1, 2)],
    ("layer4.0.conv1", 256, 512, 3, 2, 1, 2),
    ("layer4.0.conv2", 512, 512, 3, 1, 1, 1),
    ("layer4.0.downsample", 256, 512, 1, 2, 0, 2),
    *[(f"layer4.1.conv{c}", 512, 512, 3, 1, 1, 1) for c in (1, 2)],
]
STAGE1_56 = [(f"layer1.{b}.conv{c} @56", 64, 64, 3, 1, 1, 56) for b in (0, 1) for c in (1, 2)]


def layer(spec, seed):
    _, c_in, c_out, k, stride, padding, n = spec
    # PyTorch's default (Kaiming uniform) scale, so the norms are those of a fresh network
    bound = 1 / np.sqrt(c_in * k * k)
    weight = np.random.default_rng(seed).uniform(-bound, bound, (c_out, c_in, k, k))
    return weight, tc.Conv(weight, (c_in, n, n), stride=stride, padding=padding)


def table(specs) -> float:
    header = (
        f"{'layer':<24}{'lower':>11}{'upper':>11}{'s':>6} |{'power(100)':>11}{'gap %':>8}"
        f"{'< truth':>8} |{'Gram circ':>10}{'zero bnd':>10}{'S&F':>9}"
    )
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    for seed, spec in enumerate(specs):
        weight, op = layer(spec, seed)
        t = time.perf_counter()
        bounds = tc.norm_bounds(op, rtol=1e-6)
        ours = time.perf_counter() - t
        estimate = power_iteration(op)
        gap = 100 * (bounds.lower - estimate) / bounds.lower
        below = "yes" if estimate < bounds.lower else "?"
        n = spec[-1]
        stride_one = spec[4] == 1
        circ = gram_iteration(weight, (n, n)) if stride_one else float("nan")
        zero = zero_padding_gram_bound(weight, (n, n)) if stride_one else float("nan")
        sf = singla_feizi(weight) if stride_one else float("nan")
        print(
            f"{spec[0]:<24}{bounds.lower:>11.6f}{bounds.upper:>11.6f}{ours:>6.2f} |"
            f"{estimate:>11.6f}{gap:>8.3f}{below:>8} |{circ:>10.4f}{zero:>10.4f}{sf:>9.4f}"
        )
    return time.perf_counter() - started


def targets() -> None:
    rng = np.random.default_rng(0)
    op = tc.Conv(rng.standard_normal((16, 16, 3, 3)), (16, 64, 64), padding=1)
    t = time.perf_counter()
    bounds = tc.norm_bounds(op, rtol=1e-6)
    print(f"16->16 3x3 64x64, rtol 1e-6: {time.perf_counter() - t:.1f} s, {bounds}")
    for n in (64, 256):
        op = tc.Conv(rng.standard_normal((64, 64, 3, 3)), (64, n, n), padding=1)
        tracemalloc.start()
        t = time.perf_counter()
        bounds = tc.norm_bounds(op, max_bytes=10**9)
        seconds = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        # the truth is at least the proven lower bound, so upper / truth - 1 <= upper / lower - 1
        print(
            f"64->64 3x3 {n}x{n}, max_bytes 1e9: {seconds:.1f} s, peak {peak / 1e6:.0f} MB, "
            f"upper at most {100 * (bounds.upper / bounds.lower - 1):.4f} % above the norm; "
            f"{bounds}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-imagenet", action="store_true", help="skip the 56x56 layers")
    parser.add_argument("--no-targets", action="store_true", help="skip the target rows")
    args = parser.parse_args()
    print(describe_environment())
    seconds = table(RESNET18_32 + ([] if args.no_imagenet else STAGE1_56))
    print(f"table: {seconds:.1f} s")
    if not args.no_targets:
        targets()


if __name__ == "__main__":
    main()
