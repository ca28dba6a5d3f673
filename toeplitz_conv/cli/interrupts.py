"""Ctrl-C for the command line: one line at any moment once the command runs, raised
where it is safe to raise (see :class:`Interrupts`)."""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["Interrupts", "install_handlers", "restore_handlers"]


class Interrupts:
    """Whether Ctrl-C came during this run: an interrupt inside an import can surface as
    another error (numpy's "could not import module datetime"), which is then reported as
    the interrupt it was.

    Where raising is unsafe the interrupt is put off and raised a moment later: inside an
    import (a KeyboardInterrupt in a compiled module's initialisation, torch's, which
    pylops imports, cannot be caught: the process aborted), inside numba or llvmlite
    (raised in LLVM's callbacks it crashed the process or was printed and lost), and in
    a finaliser (``__del__``: ignored, with a message). The retry is a timer signal
    (``SIGALRM``), not a thread: starting a thread inside a signal handler deadlocks when
    the interrupted code holds threading's own lock."""

    seen = False
    RETRY_SECONDS = 0.05

    @classmethod
    def handler(cls, signum, frame) -> None:
        cls.seen = True
        if _unsafe_to_raise(frame):
            _raise_later(cls.RETRY_SECONDS)
            return
        raise KeyboardInterrupt

    @classmethod
    def retry(cls, signum, frame) -> None:
        cls.handler(signal.SIGINT, frame)


_UNSAFE_PACKAGES = tuple(f"{os.sep}{name}{os.sep}" for name in ("numba", "llvmlite"))
# starting a thread: interrupted between its start and the pool's record of it, a
# thread pool's worker is never told to stop, and the interpreter waits for it at exit
_UNSAFE_THREADING = {"start", "submit", "_adjust_thread_count"}


def _unsafe_to_raise(frame) -> bool:
    """Whether ``frame`` or a caller runs an import (importlib's frames), numba or
    llvmlite, a finaliser, or starts a thread."""
    while frame is not None:
        code = frame.f_code
        name, file = code.co_name, code.co_filename
        if file.startswith("<frozen importlib") or name == "__del__":
            return True
        if any(package in file for package in _UNSAFE_PACKAGES):
            return True
        threads = file.endswith(f"{os.sep}threading.py") or f"{os.sep}concurrent{os.sep}" in file
        if threads and name in _UNSAFE_THREADING:
            return True
        frame = frame.f_back
    return False


def _raise_later(seconds: float) -> None:
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, seconds)
    else:  # no timer signal (Windows): a thread sends the interrupt again
        retry = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
        retry.daemon = True
        retry.start()


def install_handlers() -> dict:
    """Our handlers of SIGINT (and SIGALRM, its retry); the previous ones, to restore."""
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, Interrupts.handler)}
    if hasattr(signal, "setitimer"):
        previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, Interrupts.retry)
    return previous


def restore_handlers(previous: dict) -> None:
    if signal.SIGALRM in previous:
        signal.setitimer(signal.ITIMER_REAL, 0)
    for signum, handler in previous.items():
        signal.signal(signum, handler)
