"""Log storage behind a small Protocol; the default is SQLite in WAL mode.

A store holds four things: the entries, the hash tiles (with interior rows), every
checkpoint the log signed (so consistency can be proven from any earlier size), and a
little metadata (the origin). Writes happen inside :meth:`LogStore.transaction`, which
runs a function under the store's exclusive write lock and commits durably before
returning: a log acknowledges an append only after that.

SQLite settings and why:

- ``journal_mode=WAL``: readers never block the writer, and a commit is one append to
  the WAL file (https://www.sqlite.org/wal.html).
- ``synchronous=FULL``: the WAL is fsynced at every commit, so an acknowledged batch
  survives power loss as well as ``kill -9``. ``NORMAL`` would survive a process crash
  but may lose the last commits on power failure ("WAL mode ... synchronous=NORMAL ...
  might roll back following a power loss", https://www.sqlite.org/pragma.html#pragma_synchronous).
  Batching amortises the one fsync per commit.
- ``BEGIN IMMEDIATE`` for writes: takes the write lock up front, so two processes
  appending to one file serialise instead of failing on a lock upgrade; ``busy_timeout``
  makes the second wait.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from ..errors import InputError

R = TypeVar("R")

# How long a writer waits for another process's write lock before giving up.
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tiles (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, width INTEGER NOT NULL,
    hashes BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL);
"""


class StoreWriter(Protocol):
    """What a write transaction may do; everything commits together or not at all."""

    def size(self) -> int: ...
    def read_tile(self, level: int, index: int) -> tuple[int, bytes] | None: ...
    def put_entries(self, start: int, entries: Sequence[bytes]) -> None: ...
    def put_tiles(self, tiles: Iterable[tuple[int, int, int, bytes]]) -> None: ...
    def put_checkpoint(self, size: int, note: bytes) -> None: ...
    def get_meta(self, key: str) -> str | None: ...
    def put_meta(self, key: str, value: str) -> None: ...


class LogStore(Protocol):
    """Storage of a log: SQLite by default; PostgreSQL or others can implement this."""

    def transaction(self, fn: Callable[[StoreWriter], R]) -> R: ...
    def size(self) -> int: ...
    def get_meta(self, key: str) -> str | None: ...
    def read_tile(self, level: int, index: int) -> tuple[int, bytes] | None: ...
    def read_entries(self, start: int, end: int) -> list[bytes]: ...
    def checkpoint(self, size: int | None = None) -> bytes | None: ...
    def checkpoint_sizes(self) -> list[int]: ...
    def replace_checkpoint(self, size: int, note: bytes) -> None: ...
    def close(self) -> None: ...


class _Queries:
    """SQL shared by the store (thread-local connection) and its write transactions."""

    def _db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def size(self) -> int:
        row = self._db().execute("SELECT MAX(size) FROM checkpoints").fetchone()
        return int(row[0]) if row[0] is not None else 0

    def read_tile(self, level: int, index: int) -> tuple[int, bytes] | None:
        row = (
            self._db()
            .execute("SELECT width, hashes FROM tiles WHERE level = ? AND idx = ?", (level, index))
            .fetchone()
        )
        return (int(row[0]), bytes(row[1])) if row else None

    def put_entries(self, start: int, entries: Sequence[bytes]) -> None:
        self._db().executemany(
            "INSERT INTO entries (idx, data) VALUES (?, ?)",
            ((start + i, e) for i, e in enumerate(entries)),
        )

    def put_tiles(self, tiles: Iterable[tuple[int, int, int, bytes]]) -> None:
        self._db().executemany(
            "INSERT OR REPLACE INTO tiles (level, idx, width, hashes) VALUES (?, ?, ?, ?)",
            tiles,
        )

    def put_checkpoint(self, size: int, note: bytes) -> None:
        self._db().execute("INSERT INTO checkpoints (size, note) VALUES (?, ?)", (size, note))

    def get_meta(self, key: str) -> str | None:
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def put_meta(self, key: str, value: str) -> None:
        self._db().execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


class _SQLiteWriter(_Queries):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _db(self) -> sqlite3.Connection:
        return self._conn


class SQLiteLogStore(_Queries):
    """The default store: one SQLite file in WAL mode, safe across threads and processes.

    Example::

        store = SQLiteLogStore(Path("log.sqlite"))
        log = Log(store, signer)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        conn = self._db()
        # Switching to WAL takes an exclusive lock, and SQLite answers "database is
        # locked" at once (without its busy handler) while another process is creating
        # the same file: retry for as long as the connection's own busy timeout.
        deadline = time.monotonic() + 30.0
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise InputError(f"{path} is not a usable log database: {exc}") from exc
                time.sleep(0.05)
            except sqlite3.DatabaseError as exc:
                raise InputError(f"{path} is not a usable log database: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=30
                )
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA synchronous=FULL")
            except sqlite3.DatabaseError as exc:
                raise InputError(f"cannot open log database {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def transaction(self, fn: Callable[[StoreWriter], R]) -> R:
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(_SQLiteWriter(conn))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def read_entries(self, start: int, end: int) -> list[bytes]:
        rows = (
            self._db()
            .execute(
                "SELECT idx, data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx",
                (start, end),
            )
            .fetchall()
        )
        if len(rows) != end - start:
            raise InputError(f"log store is missing entries in [{start}, {end})")
        return [bytes(r[1]) for r in rows]

    def checkpoint(self, size: int | None = None) -> bytes | None:
        if size is None:
            row = (
                self._db()
                .execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1")
                .fetchone()
            )
        else:
            sql = "SELECT note FROM checkpoints WHERE size = ?"
            row = self._db().execute(sql, (size,)).fetchone()
        return bytes(row[0]) if row else None

    def checkpoint_sizes(self) -> list[int]:
        return [int(r[0]) for r in self._db().execute("SELECT size FROM checkpoints ORDER BY size")]

    def replace_checkpoint(self, size: int, note: bytes) -> None:
        conn = self._db()
        with _Guard(conn):
            cur = conn.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (note, size))
            if cur.rowcount != 1:
                raise InputError(f"no checkpoint of size {size} to replace")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


class _Guard:
    """``with _Guard(conn):`` runs the block in a BEGIN IMMEDIATE / COMMIT transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")
