"""
Conv-transpose is the adjoint of conv
=====================================

Shows, for a strided 2-D layer, that PyTorch-style conv-transpose is the
transpose of the conv's matrix, prints the output-size table that explains
``output_padding``, and checks a reflect-padded layer (a padding mode that
PyTorch's conv-transpose lacks) with ``check_adjoint``.
"""

import numpy as np

import toeplitz_conv as tc


def main() -> None:
    h = np.array([1.0, 2.0, 3.0])
    conv = tc.Conv(h[None, None], (1, 5), stride=2, padding=1)
    print("1-D conv, k=3, stride 2, padding 1, n=5: A =")
    print(conv.todense())
    print("its conv-transpose (ConvTranspose of the same kernel) = A^T:")
    print(tc.ConvTranspose(h[None, None], (1, 3), stride=2, padding=1).todense())

    print("\nconv input n -> output m, and the output_padding of the adjoint:")
    for n in range(5, 11):
        op = tc.Conv(h[None, None], (1, n), stride=2, padding=1)
        print(
            f"  n={n:2d}  m={op.output_shape[1]}  "
            f"output_padding={op.H.output_padding[0]}"
        )

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((6, 3, 3, 3))
    layer = tc.Conv(weight, (3, 16, 15), stride=2, padding=1)
    adjoint = layer.H
    print(f"\n{layer}\n.H -> {adjoint}")
    A = layer.tosparse()
    same = (adjoint.tosparse() != A.T).nnz == 0
    print(
        f"ConvTranspose matrix equals Conv matrix transposed, entry for entry: {same}"
    )
    print(tc.check_adjoint(layer, seed=0))

    reflect = tc.Conv(weight, (3, 16, 15), stride=2, padding=1, padding_mode="reflect")
    print("\nreflect padding (PyTorch has no reflect conv-transpose):")
    print(tc.check_adjoint(reflect.H, seed=0))


if __name__ == "__main__":
    main()
