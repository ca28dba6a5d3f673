"""
The structure of a conv layer's matrix, and groups
==================================================

A conv layer is a channel-wise matrix-vector product of convolutions: its
matrix is a ``C_out x C_in`` grid of blocks, block ``(i, j)`` the Toeplitz
(zero padding), circulant (circular) or boundary-folded (reflect, replicate)
matrix of the scalar kernel ``h_ij``. ``groups`` decides which blocks are
non-zero: ``G`` diagonal groups of ``C_out/G x C_in/G`` kernels. This example
draws these pictures from real operators, the way the article "How to think of
Conv-Layers in Neural Networks" (Nikola Janjušević, 2022) explains them. One
colour means one group in every panel.
"""

import matplotlib.pyplot as plt
import numpy as np

import toeplitz_conv as tc
from toeplitz_conv.pictures import plot_block, plot_block_pattern, plot_matrix

rng = np.random.default_rng(0)

# %%
# Groups as a block pattern: a 4 -> 4 channel layer with groups = 1, 2 and 4.
fig, axes = plt.subplots(1, 3, figsize=(10, 3.8), layout="constrained")
fig.suptitle("a 4 -> 4 channel conv with groups = 1, 2 and 4: which kernels exist")
for ax, groups in zip(axes, (1, 2, 4)):
    layer = tc.Conv(
        rng.standard_normal((4, 4 // groups, 3, 3)), (4, 8, 8), padding=1, groups=groups
    )
    plot_block_pattern(layer, ax)
    print(f"groups={groups}: {layer.nnz:,} nonzeros")

# %%
# The whole matrix of the groups = 2 layer: each stored entry in the colour of
# its group, lines at the block borders, ticks at the channel boundaries.
layer = tc.Conv(rng.standard_normal((4, 2, 3, 3)), (4, 8, 8), padding=1, groups=2)
print(layer.summary())
fig = plot_matrix(layer)

# %%
# One block, four boundary rules: the same 3x3 kernel on an 8x8 channel.
kernel = rng.standard_normal((1, 1, 3, 3))
# Faint lines mark the image rows: each row of 8 x 8 blocks is one image row of
# the output, so the block is a 2-level Toeplitz matrix (a Toeplitz matrix of
# Toeplitz blocks); the boundary rules differ only near the image edges.
fig, axes = plt.subplots(2, 2, figsize=(11, 9.8), layout="constrained")
fig.suptitle("one 3 x 3 kernel on an 8 x 8 channel, four boundary rules")
for ax, mode in zip(axes.flat, ("zeros", "circular", "reflect", "replicate")):
    plot_block(tc.Conv(kernel, (1, 8, 8), padding=1, padding_mode=mode), 0, 0, ax)

# %%
# Every block is the scalar block of its kernel (``kernel_block``).
dense = layer.todense()
block = dense[64:128, :64]  # output channel 2, input channel 1
expected = tc.kernel_block(layer.weight[1, 0], (8, 8), padding=1).toarray()
print("block (2, 1) equals kernel_block(h_21):", np.array_equal(block, expected))
print("block (3, 1) is zero (other group):", not dense[128:192, :64].any())
plt.show()
