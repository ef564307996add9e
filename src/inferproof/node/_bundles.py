"""The bundles a node issued, by id and by receipt digest (SQLite under INFERPROOF_HOME).

A receipt's digest is ``sha256:`` of the RFC 8785 bytes of its DSSE envelope: the
same bytes the transparency log holds as the entry, so a digest found here names
exactly one log leaf. The store is a convenience copy: the log is the record. It
runs in WAL mode with ``synchronous=NORMAL``: a commit survives a killed process
(the WAL is in the OS page cache) though not a power cut, which only loses the
copy of a bundle whose receipt the durable log still holds.

Each row also keeps, for :meth:`IssuedBundles.find`, the token that asked for it
(``owner``, the token's hash as :class:`TokenStore` stores it), the receipt's model
and nonce. Schema versions are counted in ``PRAGMA user_version``: version 0 (the
first) lacked those columns; opening such a file adds them, empty for the rows
already there (their owner was never recorded, so no caller lists them; they stay
readable by id).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from .._canonical import is_digest
from ..errors import InputError
from ..receipts import Bundle
from ..stores import BundleQuery, BundleSummary, is_id, new_id

__all__ = [
    "SCHEMA_VERSION",
    "BundleQuery",
    "BundleStore",
    "BundleSummary",
    "IssuedBundles",
    "is_id",
    "new_id",
]

_SCHEMA = """CREATE TABLE IF NOT EXISTS bundles (
    id TEXT PRIMARY KEY,
    receipt_digest TEXT NOT NULL UNIQUE,
    log_index INTEGER,
    created REAL NOT NULL,
    bundle BLOB NOT NULL
)"""
SCHEMA_VERSION = 1
# Version 1: who asked, and what a caller searches by. Nullable, so ALTER TABLE can
# add them to a version-0 file without rewriting it.
_COLUMNS = ("owner", "model_digest", "model_name", "model_version", "nonce")
# Every search is one caller's (owner first); within it, SQLite walks the index in
# rowid order, which is the order bundles were issued in.
_INDEXES = """
CREATE INDEX IF NOT EXISTS bundles_owner ON bundles (owner);
CREATE INDEX IF NOT EXISTS bundles_owner_model ON bundles (owner, model_digest);
CREATE INDEX IF NOT EXISTS bundles_owner_name ON bundles (owner, model_name, model_version);
CREATE INDEX IF NOT EXISTS bundles_owner_nonce ON bundles (owner, nonce);
"""
_SUMMARY = "rowid, id, receipt_digest, log_index, created, model_digest, model_name, " + (
    "model_version, nonce"
)


class BundleStore(Protocol):
    """What the node asks of its issued bundles: :class:`IssuedBundles` (SQLite under
    the home folder) or :class:`~inferproof.stores.SQLBundleStore` (one database
    shared by every node process on it).

    Example::

        def mine(store: BundleStore, owner: str) -> list[BundleSummary]:
            return store.find(BundleQuery(owner=owner))[0]
    """

    def add(
        self,
        receipt_digest: str,
        log_index: int | None,
        data: bytes,
        bundle_id: str | None = None,
        *,
        owner: str | None = None,
    ) -> str: ...

    def add_many(
        self,
        rows: list[tuple[str, int | None, bytes]],
        ids: list[str] | None = None,
        *,
        owners: Sequence[str | None] | None = None,
    ) -> list[str]: ...

    def by_id(self, bundle_id: str) -> bytes | None: ...

    def by_digest(self, receipt_digest: str, owner: str) -> bytes | None: ...

    def find(self, query: BundleQuery) -> tuple[list[BundleSummary], int | None]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


def _indexed(data: bytes) -> tuple[str | None, str | None, str | None, str | None]:
    """The model (digest, name, version) and nonce a search looks for, from the
    bundle's signed statement (parsed by the library's one bundle parser)."""
    receipt = Bundle.loads(data).receipt
    name, version = receipt.model.get("name"), receipt.model.get("version")
    return (
        receipt.model_digest,
        name if isinstance(name, str) else None,
        version if isinstance(version, str) else None,
        receipt.nonce,
    )


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a file of any earlier version to :data:`SCHEMA_VERSION`, in one
    transaction (a second process opening it at the same time waits, then sees it done)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        # execute(), not executescript(): the latter would commit the transaction first.
        db.execute(_SCHEMA)
        if int(db.execute("PRAGMA user_version").fetchone()[0]) < SCHEMA_VERSION:
            have = {row[1] for row in db.execute("PRAGMA table_info(bundles)")}
            for column in _COLUMNS:
                if column not in have:
                    db.execute(f"ALTER TABLE bundles ADD COLUMN {column} TEXT")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        for statement in filter(str.strip, _INDEXES.split(";")):
            db.execute(statement)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class IssuedBundles:
    """Bundles issued by this node, stored as their JSON bytes.

    Example::

        store = IssuedBundles(home / "node" / "bundles.sqlite")
        bundle_id = store.add("sha256:...", 7, b'{"mediaType": ...}', owner=token_hash)
        assert store.by_id(bundle_id) is not None
        page, cursor = store.find(BundleQuery(owner=token_hash, model="risk:1"))
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        _migrate(self._db)

    def add(
        self,
        receipt_digest: str,
        log_index: int | None,
        data: bytes,
        bundle_id: str | None = None,
        *,
        owner: str | None = None,
    ) -> str:
        """Store a bundle's JSON bytes; return its id (``bundle_id`` when the caller
        drew one with :func:`new_id` in advance, as a chat stream does for its header).
        ``owner`` is the hash of the token that asked for it (None: nobody lists it)."""
        rows = [(receipt_digest, log_index, data)]
        return self.add_many(rows, [bundle_id or new_id()], owners=[owner])[0]

    def add_many(
        self,
        rows: list[tuple[str, int | None, bytes]],
        ids: list[str] | None = None,
        *,
        owners: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Store several bundles in one transaction (one commit); return their ids."""
        ids = ids or [new_id() for _ in rows]
        owners = owners or [None] * len(rows)
        now = time.time()
        values = [
            (i, d, x, now, b, o, *_indexed(b))
            for i, (d, x, b), o in zip(ids, rows, owners, strict=True)
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO bundles (id, receipt_digest, log_index, created, bundle, "
                    "owner, model_digest, model_name, model_version, nonce) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                # The same refusal as the SQL store's (a receipt or an id taken).
                raise InputError(
                    "a bundle of this batch is already stored (its receipt "
                    "digest or id is taken); none of the batch was"
                ) from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return ids

    def by_id(self, bundle_id: str) -> bytes | None:
        if not is_id(bundle_id):
            return None
        return self._one("SELECT bundle FROM bundles WHERE id = ?", bundle_id)

    def by_digest(self, receipt_digest: str, owner: str) -> bytes | None:
        """The bundle of a receipt, for the token it was issued under only: receipt
        digests are public (the log's entries), so the digest is no capability."""
        if not is_digest(receipt_digest):
            return None
        return self._one(
            "SELECT bundle FROM bundles WHERE receipt_digest = ? AND owner = ?",
            receipt_digest,
            owner,
        )

    def find(self, query: BundleQuery) -> tuple[list[BundleSummary], int | None]:
        """One page of the owner's bundles, newest first, and the cursor of the next
        page (None on the last). Only ``query.owner``'s bundles are ever read."""
        where, args = _where(query)
        sql = f"SELECT {_SUMMARY} FROM bundles WHERE {where} ORDER BY rowid DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, query.limit + 1)).fetchall()
        page = [BundleSummary(*row[1:]) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return page, (int(rows[query.limit - 1][0]) if more else None)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM bundles").fetchone()[0])

    def export(self) -> Iterator[tuple[BundleSummary, str | None, bytes]]:
        """Every bundle as ``(summary, owner, bytes)``, in the order issued, a page at a
        time (what :meth:`~inferproof.stores.SQLBundleStore.import_rows` copies)."""
        after = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT {_SUMMARY}, owner, bundle FROM bundles WHERE rowid > ? "
                    "ORDER BY rowid LIMIT 256",
                    (after,),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield BundleSummary(*row[1:9]), row[9], bytes(row[10])
            after = int(rows[-1][0])

    def _one(self, sql: str, *keys: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(sql, keys).fetchone()
        return bytes(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _where(query: BundleQuery) -> tuple[str, list[Any]]:
    """The WHERE clause of a query: fixed SQL text, every value a bound parameter."""
    clauses: list[str] = ["owner = ?"]
    args: list[Any] = [query.owner]
    if query.model is not None:
        if is_digest(query.model):
            clauses.append("model_digest = ?")
            args.append(query.model)
        else:
            name, sep, version = query.model.partition(":")
            clauses.append("model_name = ?" + (" AND model_version = ?" if sep else ""))
            args.extend([name, version] if sep else [name])
    for clause, value in (
        ("nonce = ?", query.nonce),
        ("created >= ?", query.since),
        ("created < ?", query.until),
        ("rowid < ?", query.before),
    ):
        if value is not None:
            clauses.append(clause)
            args.append(value)
    return " AND ".join(clauses), args
