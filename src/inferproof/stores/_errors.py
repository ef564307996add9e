"""The SQL stores' boundary: driver errors come out as ours, and engines open one way.

A database that cannot answer now (unreachable, restarting, shutting down, read-only,
out of disk, locked past the busy timeout) raises
:class:`~inferproof.errors.StoreUnavailable`: the request may succeed later, so a
node answers 503. Every other driver error is a plain
:class:`~inferproof.errors.Error`. Messages are one line and name the driver's class
and its first line, never the SQL or its parameters (which hold token hashes).
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ..errors import Error, StoreUnavailable
from ._url import sqlalchemy_url

__all__ = [
    "create_tables",
    "guarded",
    "open_engine",
    "reading",
    "sqlite_outage",
    "sqlite_setup",
    "writing",
]

# How long a SQLite writer waits for another process's write lock (the workflow and
# log stores' figure), and a PostgreSQL connect for an answer before it is unavailable.
BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 5
# SQLSTATE 25006 read_only_sql_transaction: a standby, or default_transaction_read_only
# (https://www.postgresql.org/docs/current/errcodes-appendix.html). psycopg files it
# under InternalError, though it says nothing about the server's health.
_READ_ONLY = "25006"
# sqlite3's messages for a database that cannot be written or opened now (SQLITE_BUSY,
# SQLITE_LOCKED, SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN:
# https://www.sqlite.org/rescode.html).
_SQLITE_DOWN = ("locked", "full", "readonly", "disk I/O", "unable to open")


def sqlite_outage(exc: sqlite3.OperationalError) -> bool:
    """Whether an sqlite3 error means "cannot write or open now" (locked, disk full, read
    only...); sqlite3 files a missing table or column here too, and that is a bug."""
    return any(word in str(exc) for word in _SQLITE_DOWN)


def _unavailable(exc: SQLAlchemyError) -> bool:
    if isinstance(exc, sa.exc.TimeoutError | sa.exc.DisconnectionError):
        return True  # the pool had no connection to give in time
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if isinstance(exc.orig, sqlite3.OperationalError):
        return sqlite_outage(exc.orig)
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return True
    return getattr(exc.orig, "sqlstate", None) == _READ_ONLY


def _line(exc: SQLAlchemyError) -> str:
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(cause).strip().splitlines()
    return f"{cause.__class__.__name__}: {text[0][:200] if text else 'no message'}"


@contextlib.contextmanager
def guarded(what: str) -> Iterator[None]:
    """Run a block against the database; its driver errors re-raised as ours."""
    try:
        yield
    except SQLAlchemyError as exc:
        if _unavailable(exc):
            raise StoreUnavailable(f"{what}: database unavailable ({_line(exc)})") from None
        raise Error(f"{what}: database error ({_line(exc)})") from None


def sqlite_setup(engine: sa.Engine, synchronous: str, *, immediate: bool = False) -> None:
    """WAL, a busy timeout and ``synchronous`` on every connection of an SQLite
    ``engine``; writes (or, with ``immediate``, every transaction) begin IMMEDIATE."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi: Any, _record: Any) -> None:
        # The "begin" hook below is the only transaction control (SQLAlchemy's recipe
        # for pysqlite: https://docs.sqlalchemy.org/en/20/dialects/sqlite.html).
        dbapi.isolation_level = None
        cur = dbapi.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        # A writer takes the write lock at BEGIN so two processes queue on it instead
        # of failing a lock upgrade (https://www.sqlite.org/lang_transaction.html);
        # readers stay deferred and, in WAL, never wait (https://www.sqlite.org/wal.html).
        write = immediate or conn.get_execution_options().get("inferproof_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# Connections kept per engine, and opened beyond that under load (see open_engine).
POOL_SIZE = 8
POOL_OVERFLOW = 24


def open_engine(
    url: str, engine: sa.Engine | None, meta: sa.MetaData, what: str, *, synchronous: str
) -> sa.Engine:
    """An engine on ``url`` (or ``engine``) with ``meta``'s tables created.

    On SQLite, WAL with ``synchronous`` (``FULL`` or ``NORMAL``); writes go through
    :func:`writing`. On PostgreSQL, connects give up after :data:`CONNECT_TIMEOUT_S`.
    """
    with guarded(what):
        if engine is None:
            target = sqlalchemy_url(url)
            if target.startswith("postgresql"):
                # A node runs 32 inference threads (NodeConfig.infer_threads), each may
                # hold a connection; SQLAlchemy's default (5 + 10 overflow) made the
                # rest open and close a connection per request.
                engine = sa.create_engine(target, connect_args={"connect_timeout":
                                          CONNECT_TIMEOUT_S}, pool_size=POOL_SIZE,
                                          max_overflow=POOL_OVERFLOW)  # fmt: skip
            else:
                engine = sa.create_engine(target)
            if engine.dialect.name == "sqlite":
                sqlite_setup(engine, synchronous)
        create_tables(engine, meta)
    return engine


# The advisory lock taken around CREATE TABLE on PostgreSQL: the first 8 bytes of
# SHA-256("inferproof/stores/schema"), signed (the log's locks are made the same way,
# stores/_pglog.py).
SCHEMA_LOCK = int.from_bytes(hashlib.sha256(b"inferproof/stores/schema").digest()[:8],
                             "big", signed=True)  # fmt: skip


def create_tables(engine: sa.Engine, meta: sa.MetaData) -> None:
    """Create ``meta``'s missing tables. On PostgreSQL under an advisory lock: two
    processes starting at once on a fresh database (``serve --workers N``) would
    otherwise both try, and one fail on the catalog's unique keys."""
    if engine.dialect.name != "postgresql":
        meta.create_all(engine)
        return
    with engine.begin() as c:  # PostgreSQL's DDL is transactional: the lock covers it
        c.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        meta.create_all(c)


@contextlib.contextmanager
def writing(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction: committed at the end of the block, rolled back on error."""
    with engine.connect().execution_options(inferproof_write=True) as c, c.begin():
        yield c


def reading(engine: sa.Engine) -> sa.Engine:
    """``engine`` for one-statement reads: on PostgreSQL in autocommit, which spares
    the BEGIN and ROLLBACK round trips (a third of the time of a token check on
    loopback); one statement sees one snapshot either way."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine
