"""Test spies: wrappers that record how often the code under test calls a function."""

from __future__ import annotations


def counted(function, calls: list):
    """``function``, appending 1 to ``calls`` at every call."""

    def counting(*args, **kwargs):
        calls.append(1)
        return function(*args, **kwargs)

    return counting
