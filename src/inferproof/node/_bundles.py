"""The bundles a node issued, by id and by receipt digest (SQLite under INFERPROOF_HOME).

A receipt's digest is ``sha256:`` of the RFC 8785 bytes of its DSSE envelope: the
same bytes the transparency log holds as the entry, so a digest found here names
exactly one log leaf. The store is a convenience copy: the log is the record. It
runs in WAL mode with ``synchronous=NORMAL``: a commit survives a killed process
(the WAL is in the OS page cache) though not a power cut, which only loses the
copy of a bundle whose receipt the durable log still holds.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from pathlib import Path

from .._canonical import is_digest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bundles (
    id TEXT PRIMARY KEY,
    receipt_digest TEXT NOT NULL UNIQUE,
    log_index INTEGER,
    created REAL NOT NULL,
    bundle BLOB NOT NULL
);
"""


def new_id() -> str:
    """A bundle or job id: 96 random bits in hex (unguessable, so ids are capabilities)."""
    return secrets.token_hex(12)


def is_id(text: str) -> bool:
    return len(text) == 24 and all(c in "0123456789abcdef" for c in text)


class IssuedBundles:
    """Bundles issued by this node, stored as their JSON bytes.

    Example::

        store = IssuedBundles(home / "node" / "bundles.sqlite")
        bundle_id = store.add("sha256:...", 7, b'{"mediaType": ...}')
        assert store.by_id(bundle_id) is not None
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def add(
        self, receipt_digest: str, log_index: int | None, data: bytes, bundle_id: str | None = None
    ) -> str:
        """Store a bundle's JSON bytes; return its id (``bundle_id`` when the caller
        drew one with :func:`new_id` in advance, as a chat stream does for its header)."""
        return self.add_many([(receipt_digest, log_index, data)], [bundle_id or new_id()])[0]

    def add_many(
        self, rows: list[tuple[str, int | None, bytes]], ids: list[str] | None = None
    ) -> list[str]:
        """Store several bundles in one transaction (one commit); return their ids."""
        ids = ids or [new_id() for _ in rows]
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO bundles (id, receipt_digest, log_index, created, bundle) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(i, d, x, now, b) for i, (d, x, b) in zip(ids, rows, strict=True)],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return ids

    def by_id(self, bundle_id: str) -> bytes | None:
        if not is_id(bundle_id):
            return None
        return self._one("SELECT bundle FROM bundles WHERE id = ?", bundle_id)

    def by_digest(self, receipt_digest: str) -> bytes | None:
        if not is_digest(receipt_digest):
            return None
        return self._one("SELECT bundle FROM bundles WHERE receipt_digest = ?", receipt_digest)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM bundles").fetchone()[0])

    def _one(self, sql: str, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(sql, (key,)).fetchone()
        return bytes(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
