"""Conjugate-gradient iterations with and without tc.preconditioner's kinds, on layers
outside their exact classes: the study behind the table in docs/solving.rst.

The last column is a regularising variant of the circulant one (Hanke, Nagy & Plemmons
1993), built here from the package's per-frequency pieces, not offered by it: the
eigenvalues of C^H C below tau = 0.1 sigma_max^2 are raised to tau, so that the
boundary mismatch is magnified by at most 1 / (tau + d^2) instead of 1 / d^2.

Layers on a 64 x 48 image (2 or 3 channels), every kernel centred with stride 1, each
with zero, replicate and reflect padding; iterations of CG on the Tikhonov normal
equations to rtol 1e-8 (capped at 2000, marked *) at damp = 1e-1, 1e-2, 1e-3 x sigma_max.

Run: python benchmarks/bench_preconditioners.py
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla
from environment import describe_environment  # benchmarks/environment.py, beside this

import toeplitz_conv as tc
from toeplitz_conv.solve.algebra import per_frequency
from toeplitz_conv.solve.fourier import frequency_form
from toeplitz_conv.solve.preconditioners import circulant_counterpart

CAP = 2000


def symmetric(weight: np.ndarray) -> np.ndarray:
    for axis in (2, 3):
        weight = (weight + np.flip(weight, axis)) / 2
    return weight


def kernels() -> dict[str, tuple[np.ndarray, int]]:
    """name: (weight, dilation)."""
    rng = np.random.default_rng(1)
    two = np.eye(2)[:, :, None, None]
    laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float)
    sharpen = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], float)
    t = np.arange(5) - 2
    gauss = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / 2)
    return {
        "3x3 Laplacian": (laplacian * two, 1),
        "3x3 sharpen": (sharpen * two, 1),
        "5x5 box blur": (np.ones((2, 2, 5, 5)) / 50, 1),
        "5x5 Gaussian, dilation 2": (gauss / gauss.sum() * np.ones((2, 2, 1, 1)) / 2, 2),
        "random symmetric 5x5, 2->2": (symmetric(rng.standard_normal((2, 2, 5, 5))), 1),
        "random symmetric 3x3, 3->2": (symmetric(rng.standard_normal((2, 3, 3, 3))), 1),
    }


def regularising_circulant(op, damp: float, floor: float) -> spla.LinearOperator:
    """:math:`(\\max(C^H C, \\tau) + d^2 I)^{-1}`, frequency by frequency."""
    form = frequency_form(circulant_counterpart(op))
    gram = np.conj(np.swapaxes(form.symbols, -1, -2)) @ form.symbols
    values, vectors = np.linalg.eigh(gram)
    scaled = vectors / (np.maximum(values, floor) + damp**2)[..., None, :]
    inverses = scaled @ np.conj(np.swapaxes(vectors, -1, -2))
    n = op.shape[1]

    def apply(v):
        return form.input_from_hat(per_frequency(inverses, form.input_hat(v)), False)

    return spla.LinearOperator((n, n), matvec=apply, dtype=float)


def iterations(op, b, damp, m) -> str:
    n = op.shape[1]
    gram = spla.LinearOperator((n, n), matvec=lambda v: op.rmatvec(op.matvec(v)) + damp**2 * v)
    calls = []
    _, info = spla.cg(gram, op.rmatvec(b), rtol=1e-8, M=m, maxiter=CAP, callback=calls.append)
    return f"{len(calls)}{'' if info == 0 else '*'}"


def main() -> None:
    print(describe_environment())
    print(
        f"{'kernel':<28}{'padding':<10}{'damp':>6}{'CG':>7}{'circulant':>11}{'cosine':>8}{'HNP':>7}"
    )
    rng = np.random.default_rng(2)
    for name, (weight, dilation) in kernels().items():
        pad = dilation * (weight.shape[-1] - 1) // 2
        for mode in ("zeros", "replicate", "reflect"):
            op = tc.Conv(
                weight, (weight.shape[1], 64, 48), padding=pad, dilation=dilation, padding_mode=mode
            )
            b = op @ rng.random(op.shape[1])
            top = tc.spectral_norm(op, rtol=1e-6)
            for relative in (1e-1, 1e-2, 1e-3):
                damp = relative * top
                counts = [iterations(op, b, damp, None)] + [
                    iterations(op, b, damp, tc.preconditioner(op, damp, kind=kind))
                    for kind in ("circulant", "cosine")
                ]
                counts.append(
                    iterations(op, b, damp, regularising_circulant(op, damp, 0.1 * top**2))
                )
                print(
                    f"{name:<28}{mode:<10}{relative:>6.0e}{counts[0]:>7}{counts[1]:>11}"
                    f"{counts[2]:>8}{counts[3]:>7}",
                    flush=True,
                )
    print(f"* not converged in {CAP} iterations")


if __name__ == "__main__":
    main()
