"""The node's proving jobs in SQL, shared by every node worker on one database.

Written against SQLAlchemy Core, so one implementation serves SQLite (one file, for
several workers on one machine) and PostgreSQL. Every transition is a conditional
``UPDATE ... WHERE status IN (...)``, so whichever process moves a job first wins and
the others see no row changed: a job finishes, fails or is cancelled once.

Admission counts the active jobs of every worker and inserts in one transaction that
holds the table's write lock: ``BEGIN IMMEDIATE`` on SQLite
(https://www.sqlite.org/lang_transaction.html), a transaction-scoped advisory lock on
PostgreSQL (https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS),
so two workers admitting at once cannot both take the last place.

Results are stored as JSON text; a result that is not JSON is refused with
``TypeError`` (the node's jobs turn that into a failed job).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from ..errors import Error
from ._errors import create_tables
from ._url import sqlalchemy_url
from ._workflows import _sqlite_pragmas

__all__ = [
    "CANCELLED_ERROR",
    "LOST_ERROR",
    "MAX_LINE_CHARS",
    "MAX_PROGRESS_LINES",
    "SHUTDOWN_ERROR",
    "JobRecord",
    "SQLJobStore",
]

# A job keeps at most this many progress lines (the latest ones): a prover that
# reports per step stays far below it, and memory stays bounded if one does not.
MAX_PROGRESS_LINES = 256
# One progress line is cut to this many characters.
MAX_LINE_CHARS = 500
_ACTIVE = ("queued", "running")
_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
LOST_ERROR = ("worker_lost", "the node worker running the job stopped responding")
CANCELLED_ERROR = ("cancelled", "the job was cancelled by its owner")
SHUTDOWN_ERROR = ("shutdown", "the node worker shut down before the job started")


@dataclass(frozen=True)
class JobRecord:
    """One job as a store keeps it. ``result`` is whatever the job's codec made of its
    return value (JSON values for a SQL store); ``worker`` is the id of the process
    running it and ``heartbeat`` the last time that process said it was alive.

    Example::

        record = JobRecord("0123456789abcdef01234567", "zk", owner, now, worker="w1",
                           heartbeat=now)
    """

    id: str
    mode: str
    owner: str
    created: float
    status: str = "queued"
    started: float | None = None
    finished: float | None = None
    progress: tuple[str, ...] = ()
    result: Any = None
    error: tuple[str, str] | None = None
    worker: str = ""
    heartbeat: float = 0.0


# Any constant: the key of the advisory lock that serialises admissions on PostgreSQL.
_ADMIT_LOCK = 0x1F0B5
_META = sa.MetaData()
_JOBS = sa.Table(
    "node_jobs", _META,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("mode", sa.String(32), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("started", sa.Float),
    sa.Column("finished", sa.Float),
    sa.Column("progress", sa.Text, nullable=False),
    sa.Column("result", sa.Text),
    sa.Column("error_code", sa.String(32)),
    sa.Column("error_message", sa.Text),
    sa.Column("worker", sa.String(128), nullable=False),
    sa.Column("heartbeat", sa.Float, nullable=False),
)  # fmt: skip


def _record(row: Any) -> JobRecord:
    error = None if row.error_code is None else (row.error_code, row.error_message or "")
    return JobRecord(
        row.id, row.mode, row.owner, row.created, row.status, row.started, row.finished,
        tuple(json.loads(row.progress)), None if row.result is None else json.loads(row.result),
        error, row.worker, row.heartbeat,
    )  # fmt: skip


class SQLJobStore:
    """Jobs in the table ``node_jobs`` of any SQLite or PostgreSQL URL (module docs).

    Example::

        store = SQLJobStore("postgresql://inferproof@db.internal/inferproof")
        jobs = Jobs(1, 16, 3600.0, 3600.0, store=store)
    """

    def __init__(self, url: str, *, engine: sa.Engine | None = None) -> None:
        try:
            self.engine = engine if engine is not None else sa.create_engine(sqlalchemy_url(url))
            if self.engine.dialect.name == "sqlite":
                _sqlite_pragmas(self.engine)
            create_tables(self.engine, _META)
        except SQLAlchemyError as exc:
            raise Error(f"job store {url[:40]!r}: {exc.__class__.__name__}: {exc}") from None
        self._postgres = self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        self.engine.dispose()

    def add(self, job: JobRecord, *, capacity: int, live_since: float) -> int:
        """Insert ``job`` (a JobRecord) unless ``capacity`` live jobs are active."""
        with self.engine.begin() as c:
            if self._postgres:
                c.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADMIT_LOCK)))
            live = _JOBS.c.status.in_(_ACTIVE) & (_JOBS.c.heartbeat >= live_since)
            active = int(c.execute(sa.select(sa.func.count()).where(live)).scalar_one())
            if active < capacity:
                c.execute(
                    _JOBS.insert().values(
                        id=job.id, mode=job.mode, owner=job.owner, created=job.created,
                        status=job.status, progress=json.dumps(list(job.progress)),
                        worker=job.worker, heartbeat=job.heartbeat,
                    )
                )  # fmt: skip
        return active

    def get(self, job_id: str) -> JobRecord | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(_JOBS).where(_JOBS.c.id == job_id)).first()
        return None if row is None else _record(row)

    def _move(self, job_id: str, frm: tuple[str, ...], **values: Any) -> bool:
        where = (_JOBS.c.id == job_id) & _JOBS.c.status.in_(frm)
        with self.engine.begin() as c:
            return bool(c.execute(_JOBS.update().where(where).values(**values)).rowcount)

    def start(self, job_id: str, now: float) -> bool:
        return self._move(job_id, ("queued",), status="running", started=now, heartbeat=now)

    def progress(self, job_id: str, line: str, now: float) -> None:
        with self.engine.begin() as c:
            query = sa.select(_JOBS.c.progress).where(_JOBS.c.id == job_id)
            if self._postgres:  # two lines of one job append in turn, none lost
                query = query.with_for_update()
            text = c.execute(query).scalar()
            if text is None:
                return
            lines = [*json.loads(text), line][-MAX_PROGRESS_LINES:]
            c.execute(
                _JOBS.update()
                .where(_JOBS.c.id == job_id)
                .values(progress=json.dumps(lines), heartbeat=now)
            )

    def finish(
        self, job_id: str, status: str, now: float, result: Any, error: tuple[str, str] | None
    ) -> bool:
        encoded = None if result is None else json.dumps(result, separators=(",", ":"))
        code, message = error if error is not None else (None, None)
        return self._move(job_id, ("running",), status=status, finished=now, result=encoded,
                          error_code=code, error_message=message)  # fmt: skip

    def cancel(
        self, job_id: str, now: float, error: tuple[str, str] = CANCELLED_ERROR
    ) -> JobRecord | None:
        self._move(job_id, _ACTIVE, status="cancelled", finished=now, error_code=error[0],
                   error_message=error[1])  # fmt: skip
        return self.get(job_id)

    def beat(self, job_ids: Iterable[str], now: float) -> set[str]:
        ids = list(job_ids)
        if not ids:
            return set()
        with self.engine.begin() as c:
            mine = _JOBS.c.id.in_(ids)
            c.execute(
                _JOBS.update().where(mine & _JOBS.c.status.in_(_ACTIVE)).values(heartbeat=now)
            )
            active = {
                str(r[0])
                for r in c.execute(sa.select(_JOBS.c.id).where(mine & _JOBS.c.status.in_(_ACTIVE)))
            }
        return set(ids) - active

    def expire(self, now: float, *, created_before: float, beat_before: float) -> None:
        active = _JOBS.c.status.in_(_ACTIVE)
        with self.engine.begin() as c:
            for row in c.execute(
                sa.select(_JOBS.c.id, _JOBS.c.created).where(
                    active & (_JOBS.c.created < created_before)
                )
            ).all():
                message = f"the job did not finish within {now - row.created:.0f} s"
                c.execute(
                    _JOBS.update()
                    .where((_JOBS.c.id == row.id) & active)
                    .values(
                        status="failed", finished=now, error_code="timeout", error_message=message
                    )
                )
            c.execute(
                _JOBS.update()
                .where(active & (_JOBS.c.heartbeat < beat_before))
                .values(
                    status="failed",
                    finished=now,
                    error_code=LOST_ERROR[0],
                    error_message=LOST_ERROR[1],
                )
            )

    def purge(self, finished_before: float) -> None:
        with self.engine.begin() as c:
            c.execute(_JOBS.delete().where(_JOBS.c.finished < finished_before))

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(_JOBS.c.status, sa.func.count()).group_by(_JOBS.c.status)
            ).all()
        found = {str(r[0]): int(r[1]) for r in rows}
        return {s: found.get(s, 0) for s in _STATES}
