"""Deliberately wrong engines, registered in place of "direct" by the tests that need a
check to fail: the matrix-free engine with a small, known error."""

from __future__ import annotations

from toeplitz_conv.engines.direct import DirectEngine

ERROR = 1e-6  # relative: far above every check's double-precision tolerance (1e-10)


class ScaledEngine(DirectEngine):
    """(1 + ERROR) A, with its true adjoint: the dot test passes, the values are wrong."""

    name = "direct"

    def forward(self, x):
        return (1 + ERROR) * super().forward(x)

    def adjoint(self, y):
        return (1 + ERROR) * super().adjoint(y)


class WrongAdjointEngine(DirectEngine):
    """A right forward product with an adjoint that is not its adjoint."""

    name = "direct"

    def adjoint(self, y):
        return (1 + ERROR) * super().adjoint(y)
