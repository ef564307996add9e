"""The transparency log's storage on PostgreSQL, for many processes and machines.

:class:`PostgresLogStore` implements :class:`~inferproof.log.LogStore` with psycopg 3 and
a connection pool, so ``Log(PostgresLogStore(url), signer)`` works unchanged. Four
tables, prefixed so they share a database with the registry, bundles, tokens and
workflow tables: ``tlog_meta``, ``tlog_entries`` (index, BYTEA), ``tlog_tiles`` (level,
index, width, hashes) and ``tlog_checkpoints`` (size as the primary key, so a second
checkpoint of one size, a fork, cannot be stored).

One sequencer at a time. Every write transaction first takes the transaction-scoped
advisory lock ``pg_advisory_xact_lock(SEQUENCER_LOCK)``, then reads the tree size and
right edge; the lock is released by COMMIT or ROLLBACK. ``SEQUENCER_LOCK`` is the first
8 bytes (big-endian, signed) of SHA-256 of ``"inferproof/tlog/sequencer"``:
4962979987853366595. Advisory locks are per database, so one log per database (or per
schema, with ``?options=-csearch_path=...`` in the URL, and a lock shared by the logs of
one database). Schema creation takes ``SCHEMA_LOCK`` (from ``"inferproof/tlog/schema"``:
7673476535676961865) around ``CREATE TABLE IF NOT EXISTS``, which is not safe to race.

Group commit and durability. The :class:`~inferproof.log.Log` writes a whole batch in one
transaction: entries by binary COPY, dirty tiles in one upsert, the signed checkpoint in
the same transaction. Each write transaction sets ``SET LOCAL synchronous_commit = on``:
"the behavior for any one transaction is determined by the setting in effect when it
commits" (PostgreSQL docs, Server Configuration, Write Ahead Log, ``synchronous_commit``,
https://www.postgresql.org/docs/current/runtime-config-wal.html#GUC-SYNCHRONOUS-COMMIT),
so a server or role default of ``off`` (asynchronous commit, which may lose the last
commits in a crash: https://www.postgresql.org/docs/current/wal-async-commit.html)
cannot weaken an acknowledged append. :meth:`PostgresLogStore.transaction` returns (and
the log answers its callers) only after COMMIT has returned.

Failures. Anything the driver or the server reports becomes
:class:`~inferproof.errors.StoreUnavailable` (re-exported here; a node answers 503)
(an unreachable or restarting server, a read-only database, a full disk, a timeout) or,
for a refused duplicate row, :class:`~inferproof.errors.Error`; the transaction is rolled
back and the next batch starts from the durable size. If the connection is lost during
COMMIT itself the outcome is unknown to us, and the message says so: the batch was not
acknowledged, but it may be stored. Every wait is bounded: ``connect_timeout`` (libpq,
:data:`CONNECT_TIMEOUT`), the pool's ``timeout`` for a free connection, and per write
transaction ``statement_timeout``, ``lock_timeout`` (which also bounds the wait for the
sequencer lock) and ``idle_in_transaction_session_timeout`` (a stuck sequencer loses its
lock), plus ``tcp_user_timeout`` so a vanished server host cannot hang a socket.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import Error, InputError, StoreUnavailable
from ..log import StoreWriter
from ._url import libpq_url

__all__ = ["SCHEMA_LOCK", "SEQUENCER_LOCK", "PostgresLogStore", "StoreUnavailable"]

if TYPE_CHECKING:  # psycopg is the scale extra's: imported when a store is made
    import psycopg
    import psycopg_pool

    _Conn = psycopg.Connection[tuple[Any, ...]]

R = TypeVar("R")


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


SEQUENCER_LOCK = _lock_key("inferproof/tlog/sequencer")
SCHEMA_LOCK = _lock_key("inferproof/tlog/schema")

# Seconds libpq waits for a connection to be made (per address tried).
CONNECT_TIMEOUT = 5
# Bounds on one write transaction (milliseconds). A batch of 4096 entries commits in
# tens of milliseconds; a minute means something is wrong.
STATEMENT_TIMEOUT_MS = 30_000
LOCK_TIMEOUT_MS = 30_000
IDLE_IN_TRANSACTION_MS = 60_000
# Unacknowledged data on the socket for this long means the server is gone (Linux).
TCP_USER_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tlog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tlog_entries (
    idx BIGINT PRIMARY KEY CHECK (idx >= 0), data BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS tlog_tiles (
    level INTEGER NOT NULL CHECK (level >= 0), idx BIGINT NOT NULL CHECK (idx >= 0),
    width INTEGER NOT NULL CHECK (width BETWEEN 1 AND 256), hashes BYTEA NOT NULL,
    PRIMARY KEY (level, idx));
CREATE TABLE IF NOT EXISTS tlog_checkpoints (
    size BIGINT PRIMARY KEY CHECK (size >= 0), note BYTEA NOT NULL);
"""
_TABLES = ("tlog_meta", "tlog_entries", "tlog_tiles", "tlog_checkpoints")

# One simple-protocol query (one round trip) opens every write transaction.
_BEGIN = (
    "BEGIN; SET LOCAL synchronous_commit = on; "
    f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}; "
    f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}; "
    f"SET LOCAL idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}; "
    f"SELECT pg_advisory_xact_lock({SEQUENCER_LOCK})"
)

# PostgreSQL's binary COPY format: signature, flags, header extension length
# (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format").
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
_ROW_HEAD = struct.Struct("!hiqi")  # 2 fields; int8 length 8 and value; bytea length


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def _translate(exc: psycopg.Error, where: str) -> Error:
    """Our error for a driver or server failure, in one line naming what happened."""
    import psycopg
    import psycopg_pool
    from psycopg import errors as pgerrors

    if isinstance(exc, pgerrors.IntegrityError):
        name = exc.diag.constraint_name or exc.diag.table_name or "a unique key"
        return Error(
            f"log database {where} refused a duplicate row ({name}): another sequencer "
            "wrote this index or checkpoint size; the log would fork, nothing was stored"
        )
    if isinstance(exc, pgerrors.ReadOnlySqlTransaction):
        return StoreUnavailable(
            f"log database {where} is read only (default_transaction_read_only, or a "
            "standby): nothing was appended"
        )
    if isinstance(exc, pgerrors.DiskFull):
        return StoreUnavailable(f"log database {where} is out of disk space: nothing was appended")
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return StoreUnavailable(f"no connection to log database {where}: {_first_line(exc)}")
    if isinstance(exc, pgerrors.QueryCanceled | pgerrors.LockNotAvailable):
        return StoreUnavailable(f"log database {where} timed out: {_first_line(exc)}")
    if isinstance(exc, pgerrors.AdminShutdown | pgerrors.CrashShutdown | pgerrors.CannotConnectNow):
        return StoreUnavailable(f"log database {where} is shutting down or restarting")
    if isinstance(exc, psycopg.OperationalError):
        return StoreUnavailable(f"log database {where} unreachable: {_first_line(exc)}")
    return StoreUnavailable(
        f"log database {where} failed: {exc.__class__.__name__}: {_first_line(exc)}"
    )


def _copy_binary(start: int, entries: Sequence[bytes]) -> bytes:
    """``entries`` as rows ``(start + i, entry)`` of a binary COPY stream."""
    head = _ROW_HEAD.pack
    parts = [_COPY_HEADER]
    for i, data in enumerate(entries, start):
        parts.append(head(2, 8, i, len(data)))
        parts.append(data)
    parts.append(_COPY_TRAILER)
    return b"".join(parts)


class _Writer:
    """A :class:`~inferproof.log.StoreWriter` over one connection inside the locked
    transaction."""

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn

    def size(self) -> int:
        row = self._conn.execute("SELECT MAX(size) FROM tlog_checkpoints").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def read_tile(self, level: int, index: int) -> tuple[int, bytes] | None:
        return _tile(self._conn, level, index)

    def put_entries(self, start: int, entries: Sequence[bytes]) -> None:
        if not entries:
            return
        sql = "COPY tlog_entries (idx, data) FROM STDIN (FORMAT BINARY)"
        with self._conn.cursor() as cur, cur.copy(sql) as copy:
            copy.write(_copy_binary(start, entries))

    def put_tiles(self, tiles: Iterable[tuple[int, int, int, bytes]]) -> None:
        rows = list(tiles)
        if not rows:
            return
        levels, indexes, widths, blobs = (list(c) for c in zip(*rows, strict=True))
        self._conn.execute(
            "INSERT INTO tlog_tiles (level, idx, width, hashes) "
            "SELECT * FROM unnest(%s::integer[], %s::bigint[], %s::integer[], %s::bytea[]) "
            "ON CONFLICT (level, idx) DO UPDATE SET width = EXCLUDED.width, "
            "hashes = EXCLUDED.hashes",
            (levels, indexes, widths, blobs),
        )

    def put_checkpoint(self, size: int, note: bytes) -> None:
        self._conn.execute(
            "INSERT INTO tlog_checkpoints (size, note) VALUES (%s, %s)", (size, note)
        )

    def get_meta(self, key: str) -> str | None:
        return _meta(self._conn, key)

    def put_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO tlog_meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (key, value),
        )


def _tile(conn: _Conn, level: int, index: int) -> tuple[int, bytes] | None:
    row = conn.execute(
        "SELECT width, hashes FROM tlog_tiles WHERE level = %s AND idx = %s", (level, index)
    ).fetchone()
    return (int(row[0]), bytes(row[1])) if row else None


def _meta(conn: _Conn, key: str) -> str | None:
    row = conn.execute("SELECT value FROM tlog_meta WHERE key = %s", (key,)).fetchone()
    return str(row[0]) if row else None


def _connect_options(conninfo: str) -> dict[str, Any]:
    """Bounded waits unless the URL chose its own (module docs)."""
    from psycopg.conninfo import conninfo_to_dict

    given = conninfo_to_dict(conninfo)
    options: dict[str, Any] = {"autocommit": True}
    defaults = {"connect_timeout": CONNECT_TIMEOUT, "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
                "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                "keepalives_count": 3, "application_name": "inferproof-log"}  # fmt: skip
    for key, value in defaults.items():
        if key not in given:
            options[key] = value
    return options


def _where(conninfo: str) -> str:
    """``host:port/dbname``: names the database in messages, never the password."""
    from psycopg.conninfo import conninfo_to_dict

    d = conninfo_to_dict(conninfo)
    return f"{d.get('host', 'localhost')}:{d.get('port', 5432)}/{d.get('dbname', '')}"


class PostgresLogStore:
    """A :class:`~inferproof.log.LogStore` on PostgreSQL, shared by many processes
    (module docs: one sequencer at a time, group commit, durable checkpoints).

    ``url`` is ``postgresql://``, ``postgres://`` or ``postgresql+psycopg://``;
    ``min_size``/``max_size`` size the connection pool; ``timeout`` (seconds) bounds the
    wait for a pooled connection. A database that cannot be reached raises
    :class:`StoreUnavailable` at once.

    Example::

        store = PostgresLogStore("postgresql://inferproof@db.internal/inferproof")
        with Log(store, SignerKey.parse(key_text)) as log:
            log.append(b"entry")
    """

    def __init__(
        self, url: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 5.0
    ) -> None:
        if not 1 <= min_size <= max_size:
            raise InputError("pool sizes must satisfy 1 <= min_size <= max_size")
        import psycopg
        import psycopg_pool

        conninfo = libpq_url(url)
        self._where = _where(conninfo)
        options = _connect_options(conninfo)
        try:
            with psycopg.connect(conninfo, **options) as conn:
                _create_schema(conn)
        except psycopg.Error as exc:
            raise _translate(exc, self._where) from None
        self._pool: psycopg_pool.ConnectionPool[_Conn] = psycopg_pool.ConnectionPool(
            conninfo, min_size=min_size, max_size=max_size, kwargs=options, timeout=timeout,
            check=psycopg_pool.ConnectionPool.check_connection, open=False,
            name="inferproof-log",
        )  # fmt: skip
        try:
            self._pool.open(wait=True, timeout=timeout)
        except psycopg.Error as exc:
            self._pool.close()
            raise _translate(exc, self._where) from None

    @contextmanager
    def _conn(self) -> Iterator[_Conn]:
        """A pooled connection; driver errors leave as ours."""
        import psycopg

        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise _translate(exc, self._where) from None

    def transaction(self, fn: Callable[[StoreWriter], R]) -> R:
        """Run ``fn`` under the sequencer lock in one durable transaction; return its
        result only after COMMIT has returned."""
        import psycopg

        with self._conn() as conn:
            conn.execute(_BEGIN)
            try:
                result = fn(_Writer(conn))
            except BaseException:
                if not conn.broken:
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except psycopg.OperationalError as exc:
                if not conn.broken:
                    raise
                raise StoreUnavailable(
                    f"lost log database {self._where} during COMMIT ({_first_line(exc)}): "
                    "the batch was not acknowledged but may be stored"
                ) from None
            return result

    def size(self) -> int:
        with self._conn() as conn:
            return _Writer(conn).size()

    def get_meta(self, key: str) -> str | None:
        with self._conn() as conn:
            return _meta(conn, key)

    def read_tile(self, level: int, index: int) -> tuple[int, bytes] | None:
        with self._conn() as conn:
            return _tile(conn, level, index)

    def read_entries(self, start: int, end: int) -> list[bytes]:
        with self._conn() as conn, conn.cursor(binary=True) as cur:
            rows = cur.execute(
                "SELECT data FROM tlog_entries WHERE idx >= %s AND idx < %s ORDER BY idx",
                (start, end),
            ).fetchall()
        if len(rows) != end - start:
            raise InputError(f"log store is missing entries in [{start}, {end})")
        return [bytes(r[0]) for r in rows]

    def checkpoint(self, size: int | None = None) -> bytes | None:
        with self._conn() as conn:
            if size is None:
                sql = "SELECT note FROM tlog_checkpoints ORDER BY size DESC LIMIT 1"
                row = conn.execute(sql).fetchone()
            else:
                sql = "SELECT note FROM tlog_checkpoints WHERE size = %s"
                row = conn.execute(sql, (size,)).fetchone()
        return bytes(row[0]) if row else None

    def checkpoint_sizes(self) -> list[int]:
        with self._conn() as conn:
            rows = conn.execute("SELECT size FROM tlog_checkpoints ORDER BY size").fetchall()
        return [int(r[0]) for r in rows]

    def replace_checkpoint(self, size: int, note: bytes) -> None:
        """Store ``note`` (the same checkpoint with more cosignatures) under the lock."""

        def replace(w: StoreWriter) -> None:
            assert isinstance(w, _Writer)
            cur = w._conn.execute(
                "UPDATE tlog_checkpoints SET note = %s WHERE size = %s", (note, size)
            )
            if cur.rowcount != 1:
                raise InputError(f"no checkpoint of size {size} to replace")

        self.transaction(replace)

    def close(self) -> None:
        self._pool.close()


def _create_schema(conn: _Conn) -> None:
    """Create the tables once; a store on an existing (even read-only) database skips it."""
    present = conn.execute(
        "SELECT " + " AND ".join(f"to_regclass('{t}') IS NOT NULL" for t in _TABLES)
    ).fetchone()
    if present and present[0]:
        return
    with conn.transaction():
        conn.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
        conn.execute(_SCHEMA)
