"""The library's errors: one base class, and how an error becomes the one line a user reads.

Every error the library raises for bad input (a file, a key, a value, a folder it cannot write, a
training that diverged) derives from :class:`JepaError`, and its message names the file or key and
says what was expected. Each also keeps the built-in class it always had (``ValueError`` for formats
and configs, ``RuntimeError`` for unreadable videos, ``FileNotFoundError`` for missing files,
``OSError`` for outputs that cannot be written), so ``except ValueError`` code keeps working.

Which exceptions count as "library errors" is decided here and nowhere else
(:func:`is_library_error`): every :class:`JepaError`, every ``FileNotFoundError``, and an ``OSError``
about the user's files and folders (permission denied, read-only file system, disk full, ...;
:data:`USER_ERRNOS`).
The ``jepa`` command (:mod:`eval.cli`) prints them as ``error: <file>: <problem>`` (:func:`describe`)
and exits with :data:`EXIT_CODE`, without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
from pathlib import Path

EXIT_CODE = 2

# OSErrors about the user's files and folders, not about the code: reported without a traceback
USER_ERRNOS = frozenset({errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                         errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG, errno.EEXIST, errno.ENOTEMPTY})

_WRITE_HINTS = {
    errno.ENOSPC: "no space left on the device; free some space (or write elsewhere) and run again",
    errno.EDQUOT: "disk quota exceeded; free some space (or write elsewhere) and run again",
    errno.EROFS: "the file system is read-only; choose an output folder you can write to",
    errno.EACCES: "permission denied; choose an output folder you can write to",
    errno.EPERM: "operation not permitted; choose an output folder you can write to",
}


class JepaError(Exception):
    """Base of the library's errors for bad input (see the module docstring)."""


class InputError(JepaError, ValueError):
    """A bad argument or input (a value, a file's content) that no more specific error covers."""


class MissingFileError(JepaError, FileNotFoundError):
    """A file or folder the user named does not exist (the message names it and what was expected)."""


class OutputError(JepaError, OSError):
    """An output cannot be written: the disk is full, the folder is read-only or not writable. ``errno``
    is the underlying error's (``ENOSPC``, ``EROFS``, ``EACCES``, ...)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code


class TrainingDivergedError(JepaError, RuntimeError):
    """The loss (or the weights) became NaN or infinite; the last good checkpoint is kept."""


class ResumeMismatchError(JepaError, ValueError):
    """A run folder is resumed with another config or dataset than the one its checkpoint was made with."""


class SkipBudgetError(JepaError, RuntimeError):
    """More unreadable items (videos, windows) than a run allows."""


def write_error(path: str | Path, error: OSError) -> OutputError:
    """The :class:`OutputError` for an ``OSError`` met while writing ``path``: names the file and what to do."""
    hint = _WRITE_HINTS.get(error.errno) or error.strerror or str(error)
    return OutputError(f"{path}: cannot write ({hint})", error.errno)


def is_library_error(error: BaseException) -> bool:
    """Whether ``error`` is a library error (a :class:`JepaError`, or an ``OSError`` about the user's files),
    reported as one line; anything else is a bug, reported with its traceback."""
    if isinstance(error, (JepaError, FileNotFoundError)):  # a missing file is the user's, whoever raised it
        return True
    return isinstance(error, OSError) and error.errno in USER_ERRNOS


def describe(error: BaseException) -> str:
    """The one-line report of a library error: ``<file>: <problem>``."""
    if isinstance(error, OSError) and not isinstance(error, JepaError) and error.filename is not None:
        hint = _WRITE_HINTS.get(error.errno) or error.strerror or str(error)
        return f"{error.filename}: {hint}"
    return str(error)
