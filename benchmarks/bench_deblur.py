"""End to end, as a user runs it: 50 LSQR iterations of a deblurring solve on a
512x512 colour image, through three forward models that are the same matrix.

- toeplitz_conv: ``tc.Conv`` with ``engine="auto"`` (the numba engine when numba is
  installed, else the direct one), and with the direct engine;
- pylops: a ``Block`` (cross-channel) or ``BlockDiag`` (depthwise) of ``Convolve2D``,
  each given the flipped kernel (pylops convolves; a conv layer correlates);
- PyTorch: a ``scipy.sparse.linalg.LinearOperator`` whose matvec is ``conv2d`` and
  whose rmatvec is ``conv_transpose2d``, through ``torch.from_numpy``.

Two blurs, zero padding, float64: a 3->3 cross-channel blur (7x7 Gaussian, 12 %
leaking into the other channels) and a depthwise blur (groups=3). The three
solutions must agree to rounding; the table gives each time and the ratio to ours.

Run: python benchmarks/bench_deblur.py [--size 512] [--iterations 50]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pylops
import scipy.sparse.linalg as spla
from environment import describe_environment  # benchmarks/environment.py, beside this

import toeplitz_conv as tc
from toeplitz_conv.pictures import cross_channel_blur


def torch_operator(weight: np.ndarray, shape: tuple[int, ...], groups: int):
    import torch
    import torch.nn.functional as F

    w = torch.from_numpy(weight)
    pad = weight.shape[-1] // 2
    out_shape = (weight.shape[0], *shape[1:])

    def forward(x):
        t = torch.from_numpy(np.ascontiguousarray(x).reshape(1, *shape))
        return F.conv2d(t, w, padding=pad, groups=groups).numpy().ravel()

    def adjoint(y):
        t = torch.from_numpy(np.ascontiguousarray(y).reshape(1, *out_shape))
        return F.conv_transpose2d(t, w, padding=pad, groups=groups).numpy().ravel()

    n = int(np.prod(shape))
    return spla.LinearOperator((n, n), matvec=forward, rmatvec=adjoint, dtype=np.float64)


def pylops_operator(weight: np.ndarray, size: int, depthwise: bool):
    k = weight.shape[-1]
    centre = (k // 2, k // 2)

    def block(h):
        return pylops.signalprocessing.Convolve2D((size, size), h[::-1, ::-1], offset=centre)

    if depthwise:
        return pylops.BlockDiag([block(weight[i, 0]) for i in range(weight.shape[0])])
    c_out, c_in = weight.shape[:2]
    return pylops.Block([[block(weight[i, j]) for j in range(c_in)] for i in range(c_out)])


def solve(op, data: np.ndarray, iterations: int) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    x = spla.lsqr(op, data, iter_lim=iterations, atol=0, btol=0, conlim=0)[0]
    return x, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()
    print(describe_environment())
    n = args.size
    image = np.random.default_rng(0).random((3, n, n))
    blurs = {
        "cross-channel 3->3 7x7": (cross_channel_blur(), 1),
        "depthwise 3 ch 7x7": (cross_channel_blur()[[0, 1, 2], [0, 1, 2]][:, None], 3),
    }
    print(f"\n{args.iterations} LSQR iterations on a {n}x{n} colour image, float64")
    print(f"{'blur':<26}{'forward model':<34}{'seconds':>9}{'ratio':>8}{'max |x - ours|':>16}")
    for name, (weight, groups) in blurs.items():
        ours = tc.Conv(weight, (3, n, n), padding="same", groups=groups)
        data = ours @ image.ravel()
        models = {
            f"toeplitz_conv ({ours.engine_in_use})": ours,
            **(
                {}
                if ours.engine_in_use == "direct"
                else {"toeplitz_conv (direct)": ours.with_engine("direct")}
            ),
            "pylops Block of Convolve2D"
            if groups == 1
            else "pylops BlockDiag of Convolve2D": pylops_operator(weight, n, groups == 3),
            "PyTorch conv2d in a LinearOperator": torch_operator(weight, (3, n, n), groups),
        }
        reference, base = None, None
        for label, model in models.items():
            x, seconds = solve(model, data, args.iterations)
            if reference is None:
                reference, base = x, seconds
            difference = float(np.abs(x - reference).max()) / float(np.abs(reference).max())
            print(f"{name:<26}{label:<34}{seconds:>9.2f}{seconds / base:>8.2f}{difference:>16.1e}")


if __name__ == "__main__":
    main()
