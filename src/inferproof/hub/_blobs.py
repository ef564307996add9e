"""Content-addressed blob storage.

A blob's name is the digest of its bytes; :meth:`BlobStore.get` re-hashes what it
reads and refuses bytes that no longer match, so a corrupted or swapped file on
disk is never handed to a runtime or a verifier.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from .._canonical import check_digest, sha256_digest
from ..errors import BlobCorruptError, InputError


@runtime_checkable
class BlobStore(Protocol):
    """Where content-addressed bytes live: a local folder by default, S3 later."""

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its ``sha256:<hex>`` digest (idempotent)."""
        ...

    def get(self, digest: str) -> bytes:
        """Return the bytes named ``digest``, checked against it."""
        ...

    def has(self, digest: str) -> bool:
        """True when a blob named ``digest`` is stored."""
        ...

    def path(self, digest: str) -> Path | None:
        """A local file path for the blob if the store has one (for memory-mapped loads)."""
        ...


class LocalBlobStore:
    """Blobs as files ``<root>/sha256/<hex>``, written atomically.

    Example::

        store = LocalBlobStore(Path("~/.inferproof/blobs").expanduser())
        digest = store.put(b"hello")
        assert store.get(digest) == b"hello"
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        root = Path(root)
        self._root = root
        (root / "sha256").mkdir(parents=True, exist_ok=True)

    def _file(self, digest: str) -> Path:
        # The file name comes from a validated digest only, never a user string.
        hexpart = check_digest(digest).split(":", 1)[1]
        return self._root / "sha256" / hexpart

    def put(self, data: bytes) -> str:
        digest = sha256_digest(data)
        target = self._file(digest)
        if target.exists() and sha256_digest(target.read_bytes()) == digest:
            return digest
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        target = self._file(digest)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise InputError(f"no blob {digest} in the hub") from None
        actual = sha256_digest(data)
        if actual != digest:
            raise BlobCorruptError(
                f"blob {digest} is corrupt: its bytes hash to {actual}; refusing to load it"
            )
        return data

    def has(self, digest: str) -> bool:
        return self._file(digest).exists()

    def path(self, digest: str) -> Path | None:
        target = self._file(digest)
        return target if target.exists() else None

    def digests(self) -> list[str]:
        """Every blob's digest, sorted (what ``inferproof migrate`` copies). Files that
        are not named by a digest (a write in progress) are skipped."""
        hexdigits = set("0123456789abcdef")
        names = (p.name for p in (self._root / "sha256").iterdir())
        return sorted(f"sha256:{n}" for n in names if len(n) == 64 and set(n) <= hexdigits)


class MemoryBlobStore:
    """Blobs in a dictionary, checked on read like any store: for a verifier's
    material (an SRS file given on the command line) and for tests.

    Example::

        store = MemoryBlobStore()
        digest = store.put(Path("kzg15.srs").read_bytes())
    """

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        digest = sha256_digest(data)
        self._blobs[digest] = bytes(data)
        return digest

    def get(self, digest: str) -> bytes:
        data = self._blobs.get(check_digest(digest))
        if data is None:
            raise InputError(f"no blob {digest} here")
        return data

    def has(self, digest: str) -> bool:
        return digest in self._blobs

    def path(self, digest: str) -> Path | None:
        return None
