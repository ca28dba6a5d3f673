"""The registry of diagonal forms and the one dispatcher the solvers ask.

:data:`FORMS` lists each basis module's builder (``op -> FormChoice``,
:mod:`.diagonal`); :func:`diagonal_form` returns the first exact form, else the first
bounding one, else none with every builder's reason. Adding a basis is a module that
implements :class:`~.diagonal.DiagonalForm` and one line here.
"""

from __future__ import annotations

from ..layers.conv import ConvOperator
from .cosine import cosine_form
from .diagonal import FormChoice
from .fourier import fourier_form

__all__ = ["FORMS", "diagonal_form"]

FORMS = (
    fourier_form,  # the polyphase DFT: circular layers, stride dividing the size (exact)
    cosine_form,  # DCT-II: replicate <= 1, symmetric kernels (exact); DCT-I: reflect (bounding)
)


def diagonal_form(op: ConvOperator) -> FormChoice:
    """The layer's exact diagonal form, else its bounding one, else ``FormChoice(None,
    reasons)``."""
    choices = [build(op) for build in FORMS]
    for wanted in (True, False):
        for choice in choices:
            if choice.form is not None and choice.form.exact == wanted:
                return choice
    return FormChoice(None, "; ".join(choice.reason for choice in choices))
