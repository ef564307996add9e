"""Workflow definitions, their runs and the scheduler's tick claims, in SQL.

Written against SQLAlchemy Core so one implementation serves SQLite (the embedded
default, one file under the home folder) and PostgreSQL. The same database holds
APScheduler's job table, so a workflow and its schedule live and die together.

Exactly-once ticks rest on two unique keys, not on the scheduler: a process that
fires a tick first inserts ``(workflow, tick)`` into ``wf_claims`` and the run row
``(workflow, run)`` in the same transaction. A second process (or a second
scheduler over the same job table) firing the same tick hits the key and skips; two
ticks can never take the same run number. On SQLite, writes begin with ``BEGIN
IMMEDIATE`` so two processes serialise on the write lock instead of failing on a
lock upgrade (https://www.sqlite.org/lang_transaction.html), with WAL so readers
never wait (https://www.sqlite.org/wal.html).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..errors import Error, InputError
from ._errors import create_tables, sqlite_setup

__all__ = ["Claim", "SQLWorkflowStore", "StoredRun", "StoredWorkflow", "copy_workflows"]

# How long a writer waits for another process's write lock (the log store's figure).
BUSY_TIMEOUT_MS = 30_000
_META = sa.MetaData()
_DEFS = sa.Table(
    "wf_definitions", _META,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("digest", sa.String(80), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)  # fmt: skip
_RUNS = sa.Table(
    "wf_runs", _META,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("run", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tick", sa.String(64), nullable=False),
    sa.Column("planned", sa.String(40), nullable=False),
    sa.Column("started", sa.String(40), nullable=False),
    sa.Column("finished", sa.String(40)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("digest", sa.String(80)),
    sa.Column("entry", sa.Text),
    sa.Column("alerts", sa.Text),
    sa.Column("deliveries", sa.Text),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("lease", sa.Float, nullable=False),
)  # fmt: skip
_CLAIMS = sa.Table(
    "wf_claims", _META,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("tick", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("run", sa.Integer),
    sa.Column("outcome", sa.String(200), nullable=False),
)  # fmt: skip
_INFO = sa.Table(
    "wf_meta", _META,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)  # fmt: skip


@dataclass(frozen=True)
class StoredWorkflow:
    """A definition as stored: its JSON text, digest, ``active``/``paused``, creation time."""

    name: str
    definition: str
    digest: str
    state: str
    created: float


@dataclass(frozen=True)
class StoredRun:
    """One run as stored; ``entry`` is the history entry's JSON once it finished."""

    name: str
    run: int
    tick: str
    planned: str
    started: str
    finished: str | None
    status: str
    reason: str | None
    digest: str | None
    entry: str | None
    alerts: str | None
    deliveries: str | None


@dataclass(frozen=True)
class Claim:
    """A won tick: the run number to use and the digest of the run before it."""

    run: int
    previous: str | None


def _sqlite_pragmas(engine: sa.Engine) -> None:
    # Every transaction begins IMMEDIATE: a claim reads, then writes, and two processes
    # must queue on the write lock rather than fail its upgrade.
    sqlite_setup(engine, "FULL", immediate=True)


class SQLWorkflowStore:
    """The workflow store on any SQLAlchemy URL (module docs).

    Example::

        store = SQLWorkflowStore("sqlite:////tmp/wf.sqlite")
        store.put("risk", definition_json, digest, created=time.time())
    """

    def __init__(self, url: str, *, engine: sa.Engine | None = None) -> None:
        try:
            self.engine = engine if engine is not None else sa.create_engine(url)
            if self.engine.dialect.name == "sqlite":
                _sqlite_pragmas(self.engine)
            create_tables(self.engine, _META)
            self.database_id = self._database_id()
        except SQLAlchemyError as exc:
            raise Error(f"workflow store {url!r:.80}: {exc.__class__.__name__}: {exc}") from None
        self.url = url

    def _database_id(self) -> str:
        """A random id made once per database: the same for every process sharing it."""
        for _ in range(2):  # a second process may insert the id between our read and write
            with contextlib.suppress(IntegrityError), self.engine.begin() as c:
                row = c.execute(sa.select(_INFO.c.value).where(_INFO.c.key == "id")).first()
                if row is not None:
                    return str(row[0])
                value = uuid.uuid4().hex
                c.execute(_INFO.insert().values(key="id", value=value))
                return value
        raise Error("the workflow store's id could not be read or written")

    def close(self) -> None:
        self.engine.dispose()

    # -- definitions -----------------------------------------------------------------------
    def put(self, name: str, definition: str, digest: str, *, created: float) -> None:
        """Store a new definition, active; an existing name is refused."""
        try:
            with self.engine.begin() as c:
                row = {"name": name, "definition": definition, "digest": digest,
                       "state": "active", "created": created}  # fmt: skip
                c.execute(_DEFS.insert().values(**row))
        except IntegrityError:
            raise InputError(
                f"workflow {name!r} exists; delete it first or pick another name"
            ) from None

    def get(self, name: str) -> StoredWorkflow | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(_DEFS).where(_DEFS.c.name == name)).first()
        return StoredWorkflow(*row) if row is not None else None

    def definitions(self) -> list[StoredWorkflow]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(_DEFS).order_by(_DEFS.c.name)).all()
        return [StoredWorkflow(*r) for r in rows]

    def set_state(self, name: str, state: str) -> bool:
        with self.engine.begin() as c:
            n = c.execute(_DEFS.update().where(_DEFS.c.name == name).values(state=state)).rowcount
        return bool(n)

    def delete(self, name: str) -> bool:
        """Remove a workflow with its runs and claims (its receipts stay in the log)."""
        with self.engine.begin() as c:
            c.execute(_RUNS.delete().where(_RUNS.c.name == name))
            c.execute(_CLAIMS.delete().where(_CLAIMS.c.name == name))
            n = c.execute(_DEFS.delete().where(_DEFS.c.name == name)).rowcount
        return bool(n)

    # -- runs ------------------------------------------------------------------------------
    def claim(
        self, name: str, tick: str, *, owner: str, planned: str, started: str,
        now: float, lease: float,
    ) -> Claim | None:  # fmt: skip
        """Take tick ``tick`` of ``name`` and the next run number, or None when the tick
        is taken, the workflow is gone or paused, or a run is still going (the skip is
        recorded). A run whose owner's lease ran out (a crashed process) is abandoned
        and its number reused: it never stored an entry, so the chain has no hole."""
        try:
            with self.engine.begin() as c:
                # FOR UPDATE: on PostgreSQL two claims of one workflow queue on its row
                # (as BEGIN IMMEDIATE queues them on SQLite), so each reads the run the
                # other made and none loses its tick to a taken run number.
                state = c.execute(sa.select(_DEFS.c.state).where(_DEFS.c.name == name)
                                  .with_for_update()).scalar()  # fmt: skip
                if state != "active":
                    return None
                c.execute(_CLAIMS.insert().values(name=name, tick=tick, owner=owner,
                                                  outcome="claimed"))  # fmt: skip
                last = c.execute(sa.select(_RUNS).where(_RUNS.c.name == name)
                                 .order_by(_RUNS.c.run.desc()).limit(1)).first()  # fmt: skip
                run, previous = self._next(c, name, last, now)
                if run is None:
                    assert last is not None  # only a run still going makes no number
                    c.execute(_CLAIMS.update().where(_CLAIMS.c.name == name, _CLAIMS.c.tick == tick)
                              .values(outcome=f"skipped: run {last.run} still going"))  # fmt: skip
                    return None
                c.execute(_RUNS.insert().values(
                    name=name, run=run, tick=tick, planned=planned, started=started,
                    status="running", owner=owner, lease=now + lease))  # fmt: skip
                c.execute(_CLAIMS.update().where(_CLAIMS.c.name == name, _CLAIMS.c.tick == tick)
                          .values(run=run))  # fmt: skip
                return Claim(run, previous)
        except IntegrityError:
            return None

    def _next(
        self, c: sa.Connection, name: str, last: Any, now: float
    ) -> tuple[int | None, str | None]:
        if last is None:
            return 1, None
        if last.status != "running":
            return last.run + 1, last.digest
        if last.lease > now:
            return None, None
        c.execute(_RUNS.delete().where(_RUNS.c.name == name, _RUNS.c.run == last.run))
        before = c.execute(sa.select(_RUNS.c.digest).where(
            _RUNS.c.name == name, _RUNS.c.run == last.run - 1)).scalar()  # fmt: skip
        return last.run, before

    def finish(
        self, name: str, run: int, *, owner: str, status: str, digest: str, entry: str,
        reason: str | None, alerts: str, finished: str,
    ) -> bool:  # fmt: skip
        """Record a run's signed entry; the chain's next link reads ``digest``. False
        (nothing written) when the run is no longer ``owner``'s: it outlived its lease
        and another process took its number."""
        with self.engine.begin() as c:
            n = c.execute(_RUNS.update().where(
                _RUNS.c.name == name, _RUNS.c.run == run, _RUNS.c.owner == owner,
                _RUNS.c.status == "running",
            ).values(status=status, digest=digest, entry=entry, reason=reason, alerts=alerts,
                     finished=finished)).rowcount  # fmt: skip
        return bool(n)

    def abandon(self, name: str, run: int) -> None:
        """Drop a running run that could not sign its entry, so its number is reused."""
        with self.engine.begin() as c:
            c.execute(_RUNS.delete().where(_RUNS.c.name == name, _RUNS.c.run == run,
                                           _RUNS.c.status == "running"))  # fmt: skip

    def set_deliveries(self, name: str, run: int, deliveries: str) -> None:
        with self.engine.begin() as c:
            c.execute(_RUNS.update().where(_RUNS.c.name == name, _RUNS.c.run == run)
                      .values(deliveries=deliveries))  # fmt: skip

    def runs(self, name: str, *, after: int = 0, limit: int = 10_000) -> list[StoredRun]:
        """Finished and running runs of ``name`` numbered above ``after``, in order."""
        cols = [getattr(_RUNS.c, f) for f in StoredRun.__dataclass_fields__]
        with self.engine.connect() as c:
            rows = c.execute(sa.select(*cols).where(_RUNS.c.name == name, _RUNS.c.run > after)
                             .order_by(_RUNS.c.run).limit(limit)).all()  # fmt: skip
        return [StoredRun(*r) for r in rows]

    def claims(self, name: str) -> list[tuple[str, str, int | None, str]]:
        """``(tick, owner, run, outcome)`` of every claimed tick of ``name``."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(_CLAIMS.c.tick, _CLAIMS.c.owner, _CLAIMS.c.run,
                                       _CLAIMS.c.outcome).where(_CLAIMS.c.name == name)
                             .order_by(_CLAIMS.c.tick)).all()  # fmt: skip
        return [(str(t), str(o), r, str(x)) for t, o, r, x in rows]


def copy_workflows(source: SQLWorkflowStore, target: SQLWorkflowStore) -> int:
    """Copy every definition, run and claim of ``source`` into ``target``, which must
    hold none, in one transaction; return the rows copied. The target keeps its own
    database id (``wf_meta``), which the processes already sharing it use."""
    with target.engine.begin() as dst:
        if dst.execute(sa.select(sa.func.count()).select_from(_DEFS)).scalar_one():
            raise InputError("the target already holds workflows; copy only into an empty one")
        copied = 0
        with source.engine.connect() as src:
            for table in (_DEFS, _RUNS, _CLAIMS):
                rows = [dict(r._mapping) for r in src.execute(sa.select(table))]
                if rows:
                    dst.execute(table.insert(), rows)
                copied += len(rows)
    return copied
