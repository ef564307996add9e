"""Files under INFERPROOF_HOME: where it is, and writing them so no reader sees half a file.

Threads and processes share these files (pins, keys, tokens, the checkpoint memory). A
file is therefore never written in place: it is written whole to a temporary file in
the same directory (mode 0600 from the start), flushed to disk, then

- renamed over the target (:func:`write_atomic`): a reader sees the old bytes or the
  new ones, never a mix; or
- hard-linked to the target (:func:`write_private`): create-if-absent, where exactly
  one of several writers wins and the losers get FileExistsError, and the file
  appears complete or not at all (an ``O_EXCL`` create would show it empty first).

A reader needs no lock: it reads the whole file once (``Path.read_bytes``). A
read-compare-write that must be atomic across processes holds :func:`locked`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError

if sys.platform != "win32":
    import fcntl

__all__ = [
    "PathLike",
    "default_home",
    "locked",
    "read_content",
    "write_atomic",
    "write_private",
]

# errno values of link(2) on a file system that has no hard links.
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP})


def default_home() -> Path:
    """``$INFERPROOF_HOME`` or ``~/.inferproof``."""
    env = os.environ.get("INFERPROOF_HOME")
    return Path(env).expanduser() if env else Path.home() / ".inferproof"


@contextlib.contextmanager
def _finished_temporary(path: Path, data: bytes, mode: int = 0o600) -> Iterator[Path]:
    """A temporary file beside ``path`` holding ``data`` (``mode``, on disk); removed after."""
    # Folders searchable by whoever may read the file (0700 for private files).
    path.parent.mkdir(parents=True, exist_ok=True, mode=mode | 0o700 | (mode & 0o044) >> 2)
    # mkstemp: a unique name (threads and processes write at once), mode 0600.
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode != 0o600:
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            # On disk before it gets its name: a crash never leaves an empty file there.
            os.fsync(fh.fileno())
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` (mode 0600) holding ``data``; FileExistsError if it exists.

    The file appears complete or not at all: another thread or process that loses
    the race to create it can read it at once and sees every byte.
    """
    with _finished_temporary(path, data) as tmp:
        try:
            os.link(tmp, path)  # atomic create-if-absent; raises FileExistsError
            return
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
    # A file system without hard links (FAT, some network mounts): exclusive create,
    # which a concurrent reader may briefly see empty.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data``; readers see the old or the new file, whole.

    Private (0600) unless ``mode`` says otherwise (0o644 for files served to anyone,
    such as exported tiles)."""
    with _finished_temporary(path, data, mode) as tmp:
        os.replace(tmp, path)


# One lock per lock file within this process. flock(2) also excludes threads that open
# the file separately, but not every platform has it; this keeps threads correct anyway.
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    key = os.path.abspath(path)
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(key, threading.Lock())


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if absent, never deleted) against
    other threads and, where flock(2) exists (POSIX), other processes.

    Hold it only for a short read-compare-write, never across network I/O. The
    lock file stays: removing it would let two holders lock two different files.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _thread_lock(path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if sys.platform != "win32":
                fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed
            yield
        finally:
            os.close(fd)


PathLike = str | os.PathLike[str]


def read_content(source: PathLike | bytes, what: str) -> bytes:
    """The bytes of ``source``: ``bytes`` are the content itself, a ``str`` or path
    object names a file. A missing file is an :class:`InputError` naming ``what``."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{what} {path} does not exist")
    return path.read_bytes()
