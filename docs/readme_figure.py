"""Draw README's picture, ``docs/_static/readme_matrix.png``: ``python docs/readme_figure.py``.

A 4 -> 4-channel conv with ``groups=2`` on a 6 x 6 input (3 x 3 kernels,
padding 1): its grid of kernels, its whole matrix and the block :math:`H_{12}`,
with one colour per group in all three panels.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import toeplitz_conv as tc  # noqa: E402
from toeplitz_conv.pictures import plot_block, plot_block_pattern, plot_matrix  # noqa: E402
from toeplitz_conv.pictures.figures import save_figure  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "_static" / "readme_matrix.png"


def main() -> None:
    weight = np.random.default_rng(0).standard_normal((4, 2, 3, 3))
    op = tc.Conv(weight, (4, 6, 6), padding=1, groups=2)
    fig, axes = plt.subplots(
        1, 3, figsize=(13, 4.3), width_ratios=(1, 1.15, 1.3), layout="constrained"
    )
    plot_block_pattern(op, axes[0])
    plot_matrix(op, axes[1])
    plot_block(op, 0, 1, axes[2])
    axes[0].set_title("the 4 x 4 grid of kernels, groups = 2")
    axes[1].set_title(f"the layer's matrix ({op.shape[0]} x {op.shape[1]})")
    save_figure(fig, OUTPUT)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
