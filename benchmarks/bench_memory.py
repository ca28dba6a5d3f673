"""The memory guard's table: for each explicit path, the bytes it checks before it
allocates and the peak it then allocates (tracemalloc: numpy and Python; PyTorch's own
allocations in check_adjoint are not traced).

python benchmarks/bench_memory.py
"""

from __future__ import annotations

import re
import tracemalloc

import numpy as np

import toeplitz_conv as tc


def checked(call) -> int:
    try:
        call(max_bytes=1)
    except tc.MatrixTooLargeError as error:
        return int(re.search(r"\((\d+) bytes\)", str(error)).group(1))
    raise AssertionError("not refused at 1 byte")


def peak(call) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def adjoint_checked(op) -> int:
    vectors = 12 * (op.shape[0] + op.shape[1]) * 16
    report = tc.check_adjoint(op, seed=0, max_bytes=vectors + 1)
    note = next(n for n in report.notes if "matrix identity" in n)
    return int(re.search(r"\((\d+) bytes\)", note).group(1))


def main() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 16, 3, 3))
    layers = {
        "Conv 16->16 3x3 64x64 zeros": tc.Conv(w, (16, 64, 64), padding=1),
        "Conv 16->16 3x3 64x64 reflect": tc.Conv(
            w, (16, 64, 64), padding=1, padding_mode="reflect"
        ),
        "ConvT 16->16 3x3 s2 32x32": tc.ConvTranspose(w, (16, 32, 32), stride=2, padding=1),
        "ConvT complex 16->16 64x64": tc.ConvTranspose(w.astype(complex), (16, 64, 64), padding=1),
        "Conv 1->1 k=31 n=10^6 same": tc.Conv(np.ones((1, 1, 31)), (1, 10**6), padding="same"),
    }
    rows = []
    for name, op in layers.items():
        for fmt in ("csr", "csc", "coo", "bsr"):

            def call(max_bytes=None, op=op, fmt=fmt):
                return op.tosparse(fmt, max_bytes=max_bytes)

            c = checked(call)
            rows.append((name, f"tosparse {fmt}", c, peak(lambda: call(max_bytes=c))))
    small = tc.Conv(w[:4, :4], (4, 24, 24), padding=1, padding_mode="replicate")
    c = checked(small.todense)
    rows.append(
        ("Conv 4->4 3x3 24x24 replicate", "todense", c, peak(lambda: small.todense(max_bytes=c)))
    )
    for name in ("Conv 16->16 3x3 64x64 zeros", "ConvT 16->16 3x3 s2 32x32"):
        op = layers[name]
        c = adjoint_checked(op)
        rows.append((name, "check_adjoint", c, peak(lambda: tc.check_adjoint(op, max_bytes=c))))
    circular = tc.Conv(w, (16, 64, 64), padding=1, padding_mode="circular")

    def fft(max_bytes=None):
        return tc.singular_values(circular, max_bytes=max_bytes)

    c = checked(fft)
    rows.append(("Conv 16->16 3x3 64x64 circular", "singular_values fft", c, peak(lambda: fft(c))))
    huge = tc.Conv(np.ones((64, 64, 3, 3, 3), dtype=np.float32), (64, 256, 256, 256), padding=1)
    rows.append(("Conv 64->64 3x3x3 256^3", "summary (no check)", 0, peak(huge.summary)))
    print(f"{'layer':<32}{'path':<22}{'checked MB':>12}{'peak MB':>10}{'ratio':>8}")
    for name, path, c, p in rows:
        ratio = f"{p / c:.2f}" if c else "-"
        print(f"{name:<32}{path:<22}{c / 1e6:>12.2f}{p / 1e6:>10.2f}{ratio:>8}")


if __name__ == "__main__":
    main()
