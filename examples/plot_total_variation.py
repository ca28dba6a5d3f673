"""
Total variation and nonnegativity on the layer's structure
==========================================================

A colour photograph, in linear light (its sRGB values to the power 2.2: light adds
linearly, so a lens blurs there; the pictures show it gamma-encoded again), is
blurred by a 3 -> 3 conv layer whose 7 x 7 Gaussian also leaks 12 % of each channel
into the others, with reflect padding, and noise is added. Half of its pixels are
darker than 0.02, so an estimate that ignores the sign of light goes negative
there. Three recoveries use the layer as the forward model :math:`A`:

- Tikhonov, :math:`\\min \\|A x - b\\|^2 + d^2 \\|x\\|^2`, with the damp that
  generalised cross-validation picks (:func:`toeplitz_conv.choose_damp`);
- total variation, :math:`\\min \\tfrac12 \\|A x - b\\|^2 + \\lambda\\, \\mathrm{TV}(x)`
  (:func:`toeplitz_conv.solve_tv`: ADMM whose quadratic step
  :math:`(A^T A + \\rho D^T D) x = r` runs on the layer's structure, here
  conjugate gradients preconditioned by its DCT-I form);
- the same with :math:`x \\ge 0`, one more split whose projection is pyproximal's
  ``Box``.
"""

import matplotlib.pyplot as plt
import numpy as np

import toeplitz_conv as tc
from toeplitz_conv.pictures import cross_channel_blur, psnr, sample_image

image = sample_image(downsample=4) ** 2.2  # (3, 150, 128), in linear light
op = tc.Conv(cross_channel_blur(), image.shape, padding=3, padding_mode="reflect")
rng = np.random.default_rng(0)
blurred = op @ image + 0.01 * rng.standard_normal(image.shape)
print(f"blurred and noisy: {psnr(blurred, image):.2f} dB")

# %%
# Tikhonov, with GCV's damp: fast and exact to its rtol, but it rings at edges,
# lets the noise through where the blur removed the most, and goes negative.
damp = tc.choose_damp(op, blurred)
tikhonov = tc.solve_tikhonov(op, blurred, damp)
print(
    f"Tikhonov (damp {damp:.3f}): {psnr(tikhonov.x, image):.2f} dB, "
    f"{tikhonov.iterations} CG iterations ({tikhonov.preconditioner}), "
    f"{np.mean(tikhonov.x < 0):.0%} of it negative"
)

# %%
# Total variation keeps edges and flattens the noise; ``nonneg=True`` adds the
# constraint, met exactly by the returned image, which puts the dark regions
# back at (or near) zero instead of around it.
lam = 5e-4
quality = {"TV": [], "TV, x >= 0": []}  # each iterate's PSNR, through the callback


def watch(name):
    return lambda x: quality[name].append(psnr(x.reshape(image.shape), image))


tv = tc.solve_tv(op, blurred, lam, rtol=1e-2, callback=watch("TV"))
tv_nonneg = tc.solve_tv(
    op, blurred, lam, nonneg=True, rtol=1e-2, callback=watch("TV, x >= 0")
)
for name, result in (("TV", tv), ("TV, x >= 0", tv_nonneg)):
    print(
        f"{name}: {psnr(result.x, image):.2f} dB, {result.iterations} ADMM it, "
        f"{result.inner_iterations} CG it ({result.method}), "
        f"{np.mean(result.x < 0):.0%} negative"
    )

# %%
# The pictures, and a zoom on the face.
pictures = (
    (image, "original"),
    (blurred, f"blurred + noise, {psnr(blurred, image):.1f} dB"),
    (tikhonov.x, f"Tikhonov (GCV), {psnr(tikhonov.x, image):.1f} dB"),
    (tv.x, f"TV, {psnr(tv.x, image):.1f} dB"),
    (tv_nonneg.x, f"TV, x >= 0, {psnr(tv_nonneg.x, image):.1f} dB"),
)
zoom = (slice(20, 80), slice(40, 100))
fig, axes = plt.subplots(2, 5, figsize=(15, 6.4), layout="constrained")
for column, (picture, title) in enumerate(pictures):
    rgb = np.clip(picture.transpose(1, 2, 0), 0, 1) ** (1 / 2.2)  # gamma-encoded
    axes[0, column].imshow(rgb)
    axes[0, column].set_title(title, fontsize=10)
    axes[1, column].imshow(rgb[zoom], interpolation="nearest")
    for ax in axes[:, column]:
        ax.axis("off")
plt.show()

# %%
# How ADMM converged: each iterate's PSNR, which settles long before the primal
# and dual residuals meet the stopping rule (``rtol`` times their scales).
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
for name, values in quality.items():
    left.plot(np.arange(1, len(values) + 1), values, label=name)
left.axhline(psnr(tikhonov.x, image), color="gray", linestyle=":", label="Tikhonov")
left.set(xlabel="ADMM iteration", ylabel="PSNR (dB)", xscale="log", title="PSNR")
left.legend()
right.semilogy(tv.primal_residuals, label="primal residual")
right.semilogy(tv.dual_residuals, label="dual residual")
right.set(xlabel="ADMM iteration", title="residuals (TV)")
right.legend()
plt.show()
