"""Files and folders created with the process umask, and atomic file writes.

``tempfile.mkstemp`` and ``tempfile.mkdtemp`` create ``0600`` files and ``0700`` folders
whatever the umask: right for scratch space, wrong for a temporary that is renamed into place
and kept (a registry version, a CLI output), which a separate account in the same group (a
serving user) must be able to read. The helpers here give such temporaries the permissions a
plain ``open()`` or ``mkdir()`` would have: ``0o666 & ~umask`` for files and
``0o777 & ~umask`` for folders.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_file",
    "current_umask",
    "default_dir_mode",
    "default_file_mode",
    "fsync_dir",
    "kept_temp_dir",
]

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system allows.

    Linux reports it in ``/proc/self/status``; elsewhere it is read by setting and restoring
    it under a lock (a thread creating a file in that instant outside this module could see
    the temporary value, so the lock-free path is tried first).
    """
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def default_file_mode() -> int:
    """``0o666 & ~umask``: the mode ``open(path, "w")`` gives a new file."""
    return 0o666 & ~current_umask()


def default_dir_mode() -> int:
    """``0o777 & ~umask``: the mode ``os.mkdir(path)`` gives a new folder."""
    return 0o777 & ~current_umask()


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be
    opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def kept_temp_dir(parent: str | os.PathLike[str] | None = None, prefix: str = "tmp") -> Path:
    """``tempfile.mkdtemp`` for a folder that will be renamed into place and kept: created
    ``0700`` (nobody else can look in while it fills), then given the umask's default mode."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        os.chmod(path, default_dir_mode())
    except BaseException:
        os.rmdir(path)
        raise
    return path


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file in the same folder, flushed to disk, given the
    umask's default mode and renamed over ``path`` at the end: a reader (or a process killed
    at any instant) sees the old file or the new one, never half of one, and a failure leaves
    no temporary behind. The folder must exist.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
