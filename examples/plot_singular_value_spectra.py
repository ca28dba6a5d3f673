"""
Singular values: circular vs zero padding, and a PyTorch layer
==============================================================

Circular padding makes the layer block-circulant, so its singular values come
exactly from small per-frequency SVDs (FFT); zero padding breaks that, and the
spectrum is computed from the matrix. The example also shows that PyTorch's
``spectral_norm`` (which normalises the reshaped weight matrix) is not the
operator norm of the conv layer.

Writes ``out/singular_values.png``.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import toeplitz_conv as tc  # noqa: E402
from toeplitz_conv.pictures import plot_singular_values  # noqa: E402


def main(out: Path = Path("out")) -> None:
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((8, 8, 3, 3)) / 8
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for mode in ("circular", "zeros", "reflect"):
        op = tc.Conv(weight, (8, 16, 16), padding=1, padding_mode=mode)
        values = tc.singular_values(op)
        print(
            f"{mode:>9}: sigma_max = {values[0]:.6f}, sigma_min = {values[-1]:.2e}, "
            f"norm by spectral_norm = {tc.spectral_norm(op):.6f}"
        )
        plot_singular_values(values, ax, label=f"padding_mode={mode!r}")
    ax.set_title("8->8 channels, 3x3 kernels, 16x16 input")
    out.mkdir(exist_ok=True)
    fig.savefig(out / "singular_values.png", dpi=120, bbox_inches="tight")

    strided = tc.Conv(weight, (8, 16, 16), stride=2, padding=1, padding_mode="circular")
    print(
        "stride 2, circular (polyphase FFT): "
        f"sigma_max = {tc.spectral_norm(strided):.6f}"
    )

    try:
        import torch
    except ImportError:
        print("torch is not installed: skipping the PyTorch layer")
        return
    torch.manual_seed(0)
    module = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False)
    op = tc.from_torch(module, (8, 16, 16), dtype=np.float64)
    reshaped = np.linalg.norm(module.weight.detach().double().numpy().reshape(8, -1), 2)
    print(
        f"PyTorch Conv2d(8, 8, 3, padding=1) on 16x16: operator norm "
        f"{tc.spectral_norm(op):.6f}; norm of the reshaped weight (what "
        f"torch.nn.utils.spectral_norm divides by) {reshaped:.6f}"
    )


if __name__ == "__main__":
    main()
