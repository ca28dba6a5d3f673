"""
Multi-channel deblurring of a real image
========================================

A colour photograph is blurred by a 3 -> 3 channel conv layer that also leaks
each channel into the others (``groups=1``), and noise is added. The layer's
operator is the forward model: scipy's ``lsqr`` and ``lsmr`` solve the damped
least-squares problem through it, and a Tikhonov-regularised pylops solver
adds a smoothness prior (a Laplacian) instead.
"""

import matplotlib.pyplot as plt
import numpy as np
import pylops
import scipy.sparse.linalg as spla

import toeplitz_conv as tc
from toeplitz_conv.pictures import cross_channel_blur, psnr, sample_image

image = sample_image(downsample=5)  # (3, 120, 102), matplotlib's sample photograph
op = tc.Conv(cross_channel_blur(), image.shape, padding="same", padding_mode="reflect")
rng = np.random.default_rng(0)
blurred = op.apply(image) + 0.003 * rng.standard_normal(image.shape)
print(op)
print(f"blurred and noisy: {psnr(blurred, image):.2f} dB")

# %%
# Damped least squares, min ||Ax - y||^2 + damp^2 ||x||^2, with scipy's solvers.
x_lsqr = spla.lsqr(op, blurred.ravel(), damp=0.02, iter_lim=60)[0].reshape(image.shape)
x_lsmr = spla.lsmr(op, blurred.ravel(), damp=0.02, maxiter=60)[0].reshape(image.shape)
print(
    f"scipy lsqr: {psnr(x_lsqr, image):.2f} dB, "
    f"scipy lsmr: {psnr(x_lsmr, image):.2f} dB"
)

# %%
# Tikhonov with a smoothness prior: min ||Ax - y||^2 + eps^2 ||L x||^2,
# L a 2-D Laplacian.
laplacian = pylops.Laplacian(dims=image.shape, axes=(1, 2), dtype=np.float64)
x_tik = pylops.optimization.leastsquares.regularized_inversion(
    op, blurred.ravel(), [laplacian], epsRs=[0.05], **dict(iter_lim=60)
)[0].reshape(image.shape)
print(f"pylops Tikhonov (Laplacian): {psnr(x_tik, image):.2f} dB")

# %%
fig, axes = plt.subplots(1, 4, figsize=(13, 4.0), layout="constrained")
for ax, picture, title in zip(
    axes,
    (image, blurred, x_lsqr, x_tik),
    (
        "original",
        f"blurred + noise, {psnr(blurred, image):.1f} dB",
        f"lsqr, {psnr(x_lsqr, image):.1f} dB",
        f"Tikhonov, {psnr(x_tik, image):.1f} dB",
    ),
):
    ax.imshow(np.clip(picture.transpose(1, 2, 0), 0, 1))
    ax.set_title(title)
    ax.axis("off")
plt.show()
