"""
The structure of a conv layer's matrix, and groups
==================================================

A conv layer is a channel-wise matrix-vector product of convolutions: its
matrix is a ``C_out x C_in`` grid of blocks, block ``(i, j)`` the Toeplitz
(zero padding), circulant (circular) or boundary-folded (reflect, replicate)
matrix of the scalar kernel ``h_ij``. ``groups`` decides which blocks are
non-zero: ``G`` diagonal groups of ``C_out/G x C_in/G`` kernels. This example
draws the seed article's figures from real operators.
"""

import matplotlib.pyplot as plt
import numpy as np

import toeplitz_conv as tc
from toeplitz_conv.plot import plot_block, plot_block_pattern, plot_matrix

rng = np.random.default_rng(0)

# %%
# Groups as a block pattern: a 4 -> 4 channel layer with groups = 1, 2 and 4.
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
for ax, groups in zip(axes, (1, 2, 4)):
    layer = tc.Conv(
        rng.standard_normal((4, 4 // groups, 3, 3)), (4, 8, 8), padding=1, groups=groups
    )
    plot_block_pattern(layer, ax)
    print(f"groups={groups}: {layer.nnz:,} nonzeros")
fig.suptitle("varying groups of a 4 x 4 channel conv kernel matrix")

# %%
# The whole matrix of the groups = 2 layer, each block in its own colour.
layer = tc.Conv(rng.standard_normal((4, 2, 3, 3)), (4, 8, 8), padding=1, groups=2)
print(layer.summary())
plot_matrix(layer)

# %%
# One block, four boundary rules: the same 3x3 kernel on an 8x8 channel.
kernel = rng.standard_normal((1, 1, 3, 3))
fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
for ax, mode in zip(axes, ("zeros", "circular", "reflect", "replicate")):
    plot_block(tc.Conv(kernel, (1, 8, 8), padding=1, padding_mode=mode), 0, 0, ax)
fig.tight_layout()

# %%
# Every block is the scalar block of its kernel (``kernel_block``).
dense = layer.todense()
block = dense[64:128, :64]  # output channel 2, input channel 1
expected = tc.kernel_block(layer.weight[1, 0], (8, 8), padding=1).toarray()
print("block (2, 1) equals kernel_block(h_21):", np.array_equal(block, expected))
print("block (3, 1) is zero (other group):", not dense[128:192, :64].any())
plt.show()
