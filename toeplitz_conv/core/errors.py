"""Errors that name the parameter they are about.

Every validation in the package raises :class:`ParameterError` (a
:class:`ValueError`) or :class:`ParameterTypeError` (a :class:`TypeError`);
both carry ``parameter``, the name of the argument at fault, so that a caller
(the command line, for one) can point at it without reading the message.
"""

from __future__ import annotations

__all__ = ["ParameterError", "ParameterTypeError"]


class ParameterError(ValueError):
    """A parameter has a value outside what is allowed.

    Parameters
    ----------
    parameter : str
        The argument's name, e.g. ``"padding"`` or ``"weight"``.
    message : str
        What is wrong and what is allowed.
    """

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter

    def __reduce__(self):
        return type(self), (self.parameter, str(self))


class ParameterTypeError(TypeError):
    """A parameter has a type that is not allowed (see :class:`ParameterError`)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter

    def __reduce__(self):
        return type(self), (self.parameter, str(self))
