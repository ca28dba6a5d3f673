"""Structured solves of inverse problems with a conv layer as the forward model.

The seam is the layer's *diagonal form* (:mod:`.diagonal`): a basis in which the layer
is one small matrix per frequency, exact when it diagonalises the normal equations,
bounding when it only brackets them. Each basis is one module (:mod:`.fourier`: the
polyphase DFT of circular layers; :mod:`.cosine` with :mod:`.dct`: the DCT-II and DCT-I
of mirrored boundaries with symmetric kernels), registered in :mod:`.forms`, whose
:func:`~.forms.diagonal_form` the solvers ask:

- :func:`~.tikhonov.solve_tikhonov` minimises :math:`\\|A x - b\\|^2 + \\text{damp}^2
  \\|x - x_0\\|^2`, exactly in an exact form, else by conjugate gradients
  (:mod:`.iterative`; in the DCT-I's coordinates for reflect padding, :mod:`.reflect`);
- :func:`~.preconditioners.preconditioner` inverts a form's normal equations, or T.
  Chan's circulant counterpart's;
- :func:`~.parameters.choose_damp` evaluates GCV and the discrepancy principle on a
  form's spectra;
- :func:`~.penalized.solve_penalized` adds a gradient penalty :math:`\\rho \\|D x\\|^2`
  (:mod:`.gradient`: the form diagonalises the Laplacian of the matching boundary
  too), the step of :func:`~.tv.solve_tv` (total variation by ADMM) and of
  :class:`~.prox.LeastSquaresProx` (the data term as pyproximal's proximal operator);
- :func:`~.steps.tv_norm_bounds` proves the step sizes of first-order methods on
  :math:`[A; \\sqrt\\rho D]`.

Below them: the per-frequency algebra (:mod:`.algebra`, :mod:`.eigen`, the compiled
loops of :mod:`._frequency_numba`), the argument checks (:mod:`.checks`) and the exact scaling of
extreme magnitudes (:mod:`.scaling`). Imports :mod:`toeplitz_conv.core`,
:mod:`toeplitz_conv.layers` and :mod:`toeplitz_conv.spectra`.
"""

from ..core.exports import lazy_exports

# each public name and the module below this one that defines it (imported on first use)
_HOMES = {
    "solve_tikhonov": "tikhonov",
    "SolveResult": "tikhonov",
    "preconditioner": "preconditioners",
    "circulant_counterpart": "preconditioners",
    "choose_damp": "parameters",
    "diagonal_form": "forms",
    "DiagonalForm": "diagonal",
    "FormChoice": "diagonal",
    "solve_penalized": "penalized",
    "solve_tv": "tv",
    "TVResult": "tv",
    "total_variation": "tv",
    "LeastSquaresProx": "prox",
    "Gradient": "gradient",
    "tv_norm_bounds": "steps",
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
__all__ = sorted(_HOMES)
