"""Structured solves of inverse problems with a conv layer as the forward model.

:func:`~.tikhonov.solve_tikhonov` minimises
:math:`\\|A x - b\\|^2 + \\text{damp}^2 \\|x - x_0\\|^2`: exactly, frequency by
frequency, for circular layers whose stride divides the size (:mod:`.fourier`), and
by conjugate gradients on the normal equations otherwise (:mod:`.iterative`).

Imports :mod:`toeplitz_conv.core`, :mod:`toeplitz_conv.layers` and
:mod:`toeplitz_conv.spectra`.
"""

__all__: list[str] = []
