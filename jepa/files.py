"""Writing files safely: atomic writes, strict JSON, leftovers of killed writers, and folder locks.

- :func:`atomic_write` writes to a temporary file in the target's folder, fsyncs and renames it over
  the target, so readers see the old file or the whole new one; :func:`atomic_path` does the same for
  writers that need a file name. A full disk (``ENOSPC``) or a folder that cannot be written
  (``EACCES``, ``EROFS``) is an :class:`~jepa.errors.OutputError` naming the target, never a raw error
  of the library that was writing (``torch.save``: ``unexpected pos ... vs ...``).
- :func:`write_json` writes strict JSON: NaN and infinities become ``null``.
- :func:`remove_stale_temps` removes the temporary files killed writers left (their names carry the
  writer's process id).
- :func:`locked` holds an exclusive ``fcntl.flock`` on a lock file, e.g. around a dataset's index update.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from jepa.errors import JepaError, write_error


def _open_temp(fd: int) -> BinaryIO:
    """The temporary file of :func:`atomic_write` (a seam: tests simulate a full disk here)."""
    return os.fdopen(fd, "wb")


class _RecordingFile:
    """The file a writer gets from :func:`atomic_write`: it remembers the first ``OSError`` of a write,
    so a full disk is reported as such even when the writer turns it into another error (``torch.save``
    reports ``unexpected pos ... vs ...``)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def __getattr__(self, name: str):
        return getattr(self._f, name)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a temporary file in ``path``'s folder, fsync, then rename it over ``path``:
    readers see the old file or the whole new one, never a partial write. A full disk or a folder that
    cannot be written is an :class:`~jepa.errors.OutputError` naming ``path`` (the old file is kept,
    the temporary one removed). Temporary names carry the writer's process id
    (``.NAME.PID.XXXXXXXX.tmp``), so :func:`remove_stale_temps` can tell a dead writer's leftovers."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise write_error(path, e) from None
    f = None
    try:
        f = _RecordingFile(_open_temp(fd))
        try:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        finally:
            f.close()
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        cause = f.error if f is not None and f.error is not None else e
        if isinstance(cause, OSError) and not isinstance(cause, JepaError):
            raise write_error(path, cause) from None
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """``text`` (UTF-8) written atomically (:func:`atomic_write`)."""
    data = text.encode()
    return atomic_write(path, lambda f: f.write(data))


def finite_json(value: object) -> object:
    """``value`` with every NaN or infinite float replaced by ``None``, so it is valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def write_json(path: str | Path, value: object, indent: int | None = 1) -> Path:
    """``value`` as strict JSON (NaN and infinities become ``null``), written atomically."""
    return atomic_write_text(path, json.dumps(finite_json(value), indent=indent, allow_nan=False))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """For writers that need a file name: yields a temporary path in ``path``'s folder with the same
    suffix (format detection by extension keeps working) and renames it over ``path`` on success."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        if isinstance(e, JepaError):
            raise
        raise write_error(path, e) from None
    finally:
        tmp.unlink(missing_ok=True)


def _temp_writer(name: str) -> int | None | bool:
    """For a temporary name of :func:`atomic_write` (``.NAME.PID.XXXXXXXX.tmp``) or :func:`atomic_path`
    (``.STEM.PID.tmp.SUFFIX``): the writer's process id, ``None`` for an older name without one; ``False``
    for any other name."""
    parts = name.split(".")
    if not name.startswith(".") or len(parts) < 4:
        return False
    if parts[-1] == "tmp":
        candidate = parts[-3]
    elif parts[-2] == "tmp":
        candidate = parts[-3]
    else:
        return False
    return int(candidate) if candidate.isdigit() else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Remove the temporary files that killed :func:`atomic_write` / :func:`atomic_path` writers left in
    ``folder`` (and its sub-folders when ``recursive``): those of a process that is no longer running,
    and those of older versions that did not record one. Returns the removed paths."""
    folder = Path(folder)
    removed = []
    found = (folder.rglob(".*tmp*") if recursive else folder.glob(".*tmp*")) if folder.is_dir() else []
    for p in sorted(found):
        pid = _temp_writer(p.name)
        if pid is False or not p.is_file() or (pid is not None and _alive(pid)):
            continue
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on the file ``path`` (created if needed) for the ``with`` block;
    other processes that lock the same file wait. The lock is released when the block ends, also when
    the process dies."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise write_error(path, e) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
