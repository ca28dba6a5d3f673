"""
Certified norms: proven brackets of a layer's singular values
=============================================================

Power iteration and Lanczos estimate a layer's spectral norm from below; a
Lipschitz argument needs it from above. ``tc.norm_bounds`` returns a bracket
``lower <= sigma_max <= upper`` with both ends proven in floating point (see
the "Certified norms" page). Here, on layers small enough for a dense SVD, the
brackets sit on the true values, for every padding mode, with the bound that
needs no factorization beside them; then the count of singular values above a
threshold, exact by Sylvester's law of inertia.
"""

import matplotlib.pyplot as plt
import numpy as np

import toeplitz_conv as tc

rng = np.random.default_rng(0)
weight = rng.standard_normal((6, 4, 3, 3)) / 6

# %%
# The four padding modes of one 4 -> 6 layer on 12 x 12. Left: the dense SVD's
# largest value and the bound that needs no factorization (through the symbol,
# and for reflect and replicate the padding operator's norm). Right: how far
# each end of the tight bracket (a verified factorization, or the per-frequency
# proof for circular padding) lies from the truth, relative; both sides below
# the requested ``rtol``.
modes = ("zeros", "circular", "reflect", "replicate")
truths, tight, loose = [], [], []
for mode in modes:
    op = tc.Conv(weight, (4, 12, 12), padding=1, padding_mode=mode)
    truths.append(np.linalg.norm(op.todense(), 2))
    tight.append(tc.norm_bounds(op, rtol=1e-6))
    loose.append(tc.norm_bounds(op, method="symbol"))
    print(
        f"{mode:>9}: {tight[-1].lower:.9f} <= {truths[-1]:.9f} <= {tight[-1].upper:.9f}"
    )
    print(f"{'':>9}  bound without a factorization: {loose[-1].upper:.6f}")

x = np.arange(len(modes))
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
left.bar(x, truths, color="0.75", label=r"dense SVD: $\sigma_{\max}$")
left.plot(
    x,
    [b.upper for b in loose],
    "v",
    color="tab:orange",
    markersize=10,
    label="proven bound without a factorization",
)
left.set_xticks(x, modes)
left.set_xlabel("padding mode")
left.set_ylabel(r"$\|A\|_2$")
left.set_title("the norm, and the bound that needs no factorization")
left.legend(loc="upper left")
left.set_ylim(0, 1.25 * max(b.upper for b in loose))

above = [(b.upper - t) / t for b, t in zip(tight, truths)]
below = [max((t - b.lower) / t, 1e-17) for b, t in zip(tight, truths)]
right.semilogy(
    x - 0.08,
    above,
    "^",
    color="tab:blue",
    markersize=9,
    label=r"upper end: $(u - \sigma)/\sigma$",
)
right.semilogy(
    x + 0.08,
    below,
    "v",
    color="tab:green",
    markersize=9,
    label=r"lower end: $(\sigma - \ell)/\sigma$",
)
right.axhline(1e-6, color="0.4", linestyle="--", linewidth=1, label="rtol = 1e-6")
right.set_xticks(x, modes)
right.set_xlabel("padding mode")
right.set_ylabel("relative distance from the truth")
right.set_ylim(1e-18, 1e-4)
right.set_title("the tight bracket's two ends")
right.legend(loc="lower left", fontsize=9)
plt.show()

# %%
# Counting singular values above a threshold: exact by inertia, and refused when
# the threshold sits within rounding of a singular value.
op = tc.Conv(weight, (4, 12, 12), padding=1)
values = np.linalg.svd(op.todense(), compute_uv=False)
for threshold in (0.5, 1.0, 1.5):
    count = tc.count_singular_values(op, threshold)
    dense = int((values > threshold).sum())
    print(f"singular values above {threshold}: {count} (dense SVD: {dense})")
plt.show()
