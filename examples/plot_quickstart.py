"""
Quickstart: a layer's matrix, its adjoint, an lsqr solve
========================================================

Builds a 3->3 channel 2-D layer (cross-channel blur, groups=1), prints its
shape, nonzeros and block pattern, runs the dot test, and recovers an image
from its blurred version with scipy's lsqr through the operator.
"""

import numpy as np
import scipy.sparse.linalg as spla

import toeplitz_conv as tc


def main() -> None:
    rng = np.random.default_rng(0)
    size = 48
    yy, xx = np.mgrid[:size, :size] / size
    image = np.stack(
        [
            np.sin(6 * xx) * np.cos(4 * yy),
            (xx > 0.5) * 1.0,
            np.hypot(xx - 0.5, yy - 0.5),
        ]
    )
    weight = np.full((3, 3, 5, 5), 0.01)
    weight[[0, 1, 2], [0, 1, 2]] = 1 / 25  # each channel mostly blurs itself
    op = tc.Conv(weight, image.shape, padding="same", padding_mode="reflect")
    A = op.tosparse()
    print(op)
    print(f"matrix {A.shape}, nnz {A.nnz:,}, density {A.nnz / np.prod(A.shape):.2e}")
    x, y = rng.standard_normal(op.shape[1]), rng.standard_normal(op.shape[0])
    print(
        f"dot test |<Ax,y> - <x,A^T y>| / |<Ax,y>| = "
        f"{abs(np.dot(op @ x, y) - np.dot(x, op.H @ y)) / abs(np.dot(op @ x, y)):.1e}"
    )
    blurred = op.apply(image) + 1e-3 * rng.standard_normal(image.shape)
    recovered = spla.lsqr(op, blurred.ravel(), damp=1e-3, iter_lim=300)[0].reshape(
        image.shape
    )

    def psnr(a):
        return 10 * np.log10(np.ptp(image) ** 2 / np.mean((a - image) ** 2))

    print(
        f"PSNR blurred {psnr(blurred):.1f} dB -> "
        f"recovered with lsqr {psnr(recovered):.1f} dB"
    )


if __name__ == "__main__":
    main()
