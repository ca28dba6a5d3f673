"""Files in and out: a weight read from ``.npy``, outputs written atomically.

A weight file is checked from its header before its data is read: that it is
a ``.npy`` file at all (not empty, not text, not an ``.npz`` archive, whose
arrays are named), that it holds numbers with 3 to 5 axes, that the data the
header promises is there, and that it fits the memory budget.

An output is written to a temporary file in its target directory, checked,
and only then renamed over the target (:func:`os.replace`, atomic on POSIX), so
that an interrupted or failed write never leaves a partial file behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import ParameterError
from .memory import check_budget, format_bytes

__all__ = [
    "EXPORT_SUFFIXES",
    "check_output_file",
    "check_output_folder",
    "export_matrix",
    "read_weight_file",
    "write_atomically",
]

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
WEIGHT_AXES = (3, 4, 5)  # (C_out, C_in/groups) and 1 to 3 kernel axes
NUMERIC_KINDS = "biufc"


def read_weight_file(path: Path | str, *, max_bytes: int | None = None) -> np.ndarray:
    """A weight array from a ``.npy`` file, checked before its data is read.

    Parameters
    ----------
    path : path-like
        A file written by :func:`numpy.save`.
    max_bytes : int, optional
        Memory budget for the array and the layer's copy of it.

    Raises
    ------
    ParameterError
        ``parameter="weight_file"``, saying what is wrong with the file.
    MatrixTooLargeError
        When the array would not fit the budget.
    """
    path = Path(path)
    _check_readable(path)
    with open(path, "rb") as handle:
        start = handle.read(len(NPY_MAGIC))
        if start.startswith(ZIP_MAGIC):
            raise _problem(path, _npz_description(path))
        if start != NPY_MAGIC:
            raise _problem(path, f"is not a .npy file (numpy.save's format): it starts {start!r}")
        handle.seek(0)
        shape, dtype = _read_header(path, handle)
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        available = path.stat().st_size - handle.tell()
        if available < nbytes:
            raise _problem(
                path,
                f"is truncated: its header says shape {shape}, dtype {dtype} "
                f"({format_bytes(nbytes)}) but only {format_bytes(available)} of data follow",
            )
        check_budget(2 * nbytes, f"weight of shape {shape} from {path}", max_bytes=max_bytes)
        handle.seek(0)
        return np.lib.format.read_array(handle, allow_pickle=False)


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise _problem(path, "does not exist")
    if path.is_dir():
        raise _problem(path, "is a directory, not a .npy file")
    if not os.access(path, os.R_OK):
        raise _problem(path, "cannot be read (permission denied)")
    if path.stat().st_size == 0:
        raise _problem(path, "is empty (0 bytes); save a weight with numpy.save")


def _read_header(path: Path, handle) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = np.lib.format.read_magic(handle)
        reader = HEADER_READERS.get(version)
        if reader is None:
            raise ValueError(f".npy format version {version} (1.0 and 2.0 are supported)")
        shape, _, dtype = reader(handle)
    except ValueError as error:
        raise _problem(path, f"has a broken .npy header: {error}") from None
    if dtype.hasobject:
        raise _problem(path, "holds Python objects (pickled data); a weight must be numbers")
    if dtype.kind not in NUMERIC_KINDS:
        raise _problem(path, f"has dtype {dtype}; a weight must hold real or complex numbers")
    if len(shape) not in WEIGHT_AXES:
        raise _problem(
            path,
            f"holds an array of shape {shape} ({len(shape)} axes); a weight has 3 to 5: "
            "(C_out, C_in/groups, *kernel), or (C_in, C_out/groups, *kernel) for a transpose",
        )
    return shape, dtype


def _npz_description(path: Path) -> str:
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = ", ".join(repr(name) for name in archive.files) or "none"
    except (OSError, ValueError):
        return "is a zip file, not a .npy file"
    return (
        f"is an .npz archive (arrays: {names}), not a .npy file; save the weight alone "
        "with numpy.save('w.npy', numpy.load(archive)[name])"
    )


def _problem(path: Path, what: str) -> ParameterError:
    return ParameterError("weight_file", f"{str(path)!r} {what}")


def check_output_file(path: Path | str, suffixes: tuple[str, ...], parameter: str) -> Path:
    """Refuse, before any work, an output file that could not be written.

    Parameters
    ----------
    path : path-like
        The file to write.
    suffixes : tuple of str
        Allowed suffixes (lower case, with the dot).
    parameter : str
        Name reported by the :class:`ParameterError`.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise ParameterError(
            parameter, f"the file must end in one of {', '.join(suffixes)}; got {str(path)!r}"
        )
    if path.is_dir():
        raise ParameterError(parameter, f"{str(path)!r} is a directory; name a file in it")
    _check_writable_directory(path.parent, parameter)
    return path


def check_output_folder(path: Path | str, parameter: str) -> Path:
    """Refuse an output folder that is a file or could not be created or written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ParameterError(parameter, f"{str(path)!r} exists and is not a directory")
    existing = path
    while not existing.exists():
        existing = existing.parent
    _check_writable_directory(existing, parameter)
    return path


def _check_writable_directory(directory: Path, parameter: str) -> None:
    shown = str(directory) or "."
    if not directory.exists():
        raise ParameterError(parameter, f"directory {shown!r} does not exist")
    if not directory.is_dir():
        raise ParameterError(parameter, f"{shown!r} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK) or not _can_create_in(directory):
        raise ParameterError(parameter, f"cannot write into directory {shown!r}")


def _can_create_in(directory: Path) -> bool:
    """Whether a file can be created in ``directory``, tried as :func:`write_atomically`
    will (``os.access`` says yes to root everywhere, /proc and read-only mounts included)."""
    try:
        descriptor, name = tempfile.mkstemp(dir=directory, prefix=".toeplitz-conv-check.")
    except OSError:
        return False
    os.close(descriptor)
    os.unlink(name)
    return True


def write_atomically(
    path: Path | str,
    write: Callable[[Path], None],
    verify: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``path`` through a temporary file that is checked, then renamed.

    ``write(temporary)`` writes the content, ``verify(temporary)`` raises when
    it is not right; the temporary file (same directory, same suffix in lower case) replaces
    ``path`` only then, and is removed on any exception, ``KeyboardInterrupt``
    included.

    Parameters
    ----------
    path : path-like
    write : callable
    verify : callable, optional

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    # the suffix in lower case: numpy and scipy append ".npz" or ".mtx" to a name that does
    # not end in it exactly (y.NPZ), and would write beside the temporary file
    try:
        descriptor, name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix.lower()
        )
    except OSError as error:
        raise _about(error, path) from error
    os.close(descriptor)
    temporary = Path(name)
    try:
        write(temporary)
        if verify is not None:
            verify(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes files private (0600)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise _about(error, path) from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _about(error: OSError, path: Path) -> OSError:
    """``error`` naming the caller's ``path``, never the hidden temporary file."""
    return type(error)(error.errno, error.strerror or str(error), str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


EXPORT_SUFFIXES = (".npz", ".mtx")


def export_matrix(op, path: Path | str) -> tuple[tuple[int, int], int]:
    """Write a layer's matrix to ``.npz`` or ``.mtx``, atomically, and check what was written.

    ``.npz`` is :func:`scipy.sparse.save_npz`'s format; ``.mtx`` is Matrix
    Market (:func:`scipy.io.mmwrite`, for MATLAB and Julia), with the layer's
    description as its comment. The written file is read back (``.npz``) or its
    header is read (``.mtx``) and must match the matrix's shape and nonzeros.

    Parameters
    ----------
    op : Conv or ConvTranspose
    path : path-like
        Ends in ``.npz`` or ``.mtx``; its directory must exist.

    Returns
    -------
    shape, nnz
        Of the written matrix.
    """
    import scipy.io
    import scipy.sparse

    path = check_output_file(path, EXPORT_SUFFIXES, "output")
    matrix = op.tosparse()
    shape, nnz = matrix.shape, matrix.nnz

    def write(temporary: Path) -> None:
        if temporary.suffix.lower() == ".npz":
            scipy.sparse.save_npz(temporary, matrix)
        else:
            scipy.io.mmwrite(temporary, matrix, comment=repr(op))

    def verify(temporary: Path) -> None:
        if temporary.suffix.lower() == ".npz":
            written = scipy.sparse.load_npz(temporary)
            found = (written.shape, written.nnz)
        else:
            rows, cols, entries, *_ = scipy.io.mminfo(temporary)
            found = ((rows, cols), entries)
        if found != (shape, nnz):
            raise OSError(f"{path}: wrote {found} (shape, nonzeros), expected {(shape, nnz)}")

    write_atomically(path, write, verify)
    return shape, nnz
