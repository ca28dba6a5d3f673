"""
Circular padding is diagonalised by the FFT
===========================================

With circular padding every block of a conv layer is circulant, and every
circulant matrix is diagonalised by the DFT: with :math:`F` the unitary DFT
matrix, :math:`F H F^H` is diagonal, with the kernel's DFT on the diagonal. For
a multi-channel layer, the DFT of every channel turns the ``C_out x C_in`` grid
of circulant blocks into a grid of diagonal blocks: after reordering, one small
``C_out x C_in`` matrix per frequency. Their singular values are the layer's
(Sedghi et al., ICLR 2019).
"""

import matplotlib.pyplot as plt
import numpy as np

import toeplitz_conv as tc
from toeplitz_conv.spectra import frequency_matrices

rng = np.random.default_rng(0)
n = 16
h = rng.standard_normal(5)
H = tc.kernel_block(h, n, padding=2, padding_mode="circular").toarray()
F = np.fft.fft(np.eye(n)) / np.sqrt(n)  # unitary DFT
D = F @ H @ F.conj().T
print("off-diagonal of F H F^H:", np.abs(D - np.diag(np.diag(D))).max())
offsets = np.arange(5) - 2  # tap t reads x[o + t - 2]
eigenvalues = np.array(
    [np.sum(h * np.exp(2j * np.pi * f * offsets / n)) for f in range(n)]
)
print("diagonal equals the kernel's DFT:", np.allclose(np.diag(D), eigenvalues))

# %%
# Two channels in, three out: the DFT block-diagonalises the 3 x 2 grid.
layer = tc.Conv(
    rng.standard_normal((3, 2, 5)), (2, n), padding=2, padding_mode="circular"
)
A = layer.todense()
F_out, F_in = np.kron(np.eye(3), F), np.kron(np.eye(2), F)
B = F_out @ A @ F_in.conj().T
# Both on one colour scale: the DFT is unitary, so it keeps the entries' energy;
# it gathers each block's energy onto the block's diagonal.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
vmax = max(np.abs(A).max(), np.abs(B).max())
panels = (
    (np.abs(A), r"$|A|$: a $3 \times 2$ grid of circulant blocks"),
    (np.abs(B), r"$|F A F^H|$: a $3 \times 2$ grid of diagonal blocks"),
)
cmap = plt.get_cmap("magma_r").with_extremes(bad="white")  # zero entries: white
for ax, (values, title) in zip(axes, panels):
    shown = np.ma.masked_less_equal(values, 1e-12 * vmax)
    image = ax.imshow(shown, cmap=cmap, vmin=0, vmax=vmax)
    ax.set_title(title)
    ax.set_xlabel(r"column: input channel $j$, then pixel (or frequency)")
    ax.set_ylabel(r"row: output channel $i$, then pixel (or frequency)")
    for boundary in (n, 2 * n):
        ax.axhline(boundary - 0.5, color="0.5", linewidth=0.6)
    ax.axvline(n - 0.5, color="0.5", linewidth=0.6)
fig.colorbar(image, ax=axes, shrink=0.85, label="magnitude of the entry")

singular = np.sort(
    np.linalg.svd(
        frequency_matrices(layer.geometry, layer.weight), compute_uv=False
    ).ravel()
)[::-1]
print(
    "per-frequency SVDs give the matrix's singular values:",
    np.allclose(singular, np.linalg.svd(A, compute_uv=False)),
)
plt.show()
