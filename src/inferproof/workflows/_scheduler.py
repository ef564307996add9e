"""When runs happen: APScheduler with its SQLAlchemy job store, on the workflow database.

The scheduler is APScheduler 3 (``BackgroundScheduler``); its jobs live in the table
``wf_jobs`` of the same database as the definitions, so they survive a restart. The
missed-run policy is APScheduler's ``coalesce=True`` with ``misfire_grace_time=None``:
ticks missed while no process ran (or while a run was still going) become **one** run
at the first chance, planned for the latest missed tick; never a burst, never silence.

APScheduler 3 does not promise that two schedulers sharing a job store fire a job once
("sharing a persistent job store among two or more processes will lead to incorrect
scheduler behavior", its user guide), so it is not asked to: every fire first claims
``(workflow, tick)`` in the store, where a unique key lets exactly one process win.
The tick is computed from the trigger (the latest planned time at or before now), so
every process names the same tick the same way.

A job stores only the database's id and the workflow's name; the function it calls
finds the service that runs on that database in this process (one per process).
APScheduler keeps jobs pickled in its table, so whoever can write the workflow
database can make the scheduler run code: it is the node's own state, kept like the
keys beside it (mode 0700 home), never a file anyone else hands over.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..errors import InputError
from ..stores import create_tables
from ._definition import Schedule

__all__ = ["Scheduler", "planned_tick", "trigger_of"]

log = logging.getLogger("inferproof.workflows")
JOB_TABLE = "wf_jobs"
# How often the scheduler looks at the shared job table for jobs another process
# added or changed: APScheduler 3 only wakes for changes made through itself.
RESCAN_SECONDS = 1.0
_LOCK = threading.Lock()
_RUNNING: dict[str, Callable[[str], None]] = {}


def trigger_of(schedule: Schedule, created: float) -> BaseTrigger:
    """The APScheduler trigger of a schedule; interval ticks count from ``created``."""
    end = None if schedule.until is None else _parse_time(schedule.until)
    if schedule.every is not None:
        start = datetime.fromtimestamp(created, UTC).replace(microsecond=0)
        return IntervalTrigger(seconds=schedule.every, start_date=start, end_date=end,
                               timezone=UTC)  # fmt: skip
    try:
        trigger = CronTrigger.from_crontab(str(schedule.cron), timezone=UTC)
    except ValueError as exc:
        raise InputError(f"cron {schedule.cron!r:.80}: {exc}") from None
    if end is not None:
        trigger.end_date = end
    return trigger


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def planned_tick(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The latest time ``trigger`` fires at or before ``now`` (None if it never has)."""
    if isinstance(trigger, IntervalTrigger):
        if now < trigger.start_date:
            return None
        k = (now - trigger.start_date) // trigger.interval
        tick = trigger.start_date + k * trigger.interval
        end = trigger.end_date
        return None if end is not None and tick > end else tick
    look = timedelta(minutes=2)
    while look <= timedelta(days=800):
        t = trigger.get_next_fire_time(None, now - look)
        if t is not None and t <= now:
            best = t
            while (n := trigger.get_next_fire_time(best, best + timedelta(seconds=1))) and n <= now:
                best = n
            return best  # type: ignore[no-any-return]
        look *= 2
    return None


def _fire(database_id: str, name: str) -> None:
    """The job function APScheduler calls (by name, so jobs unpickle in any process)."""
    with _LOCK:
        run = _RUNNING.get(database_id)
    if run is not None:
        run(name)


def _after_shutdown(record: logging.LogRecord) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    return not (isinstance(exc, RuntimeError) and "after shutdown" in str(exc))


def _wake() -> None:
    """A no-op job: its only effect is that the scheduler re-reads the job table."""


class Scheduler:
    """APScheduler on the workflow database (module docs). ``fire(name)`` runs a tick.

    Example::

        s = Scheduler(store.engine, store.database_id, service.tick)
        s.start()
        s.add("risk", Schedule(every=60), created=time.time())
    """

    def __init__(self, engine: sa.Engine, database_id: str, fire: Callable[[str], None]) -> None:
        self.database_id = database_id
        self._fire = fire
        jobs = SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)
        # Made here, under the stores' schema lock: the job store would create it at
        # start, racing every other worker starting on a fresh PostgreSQL database.
        create_tables(engine, jobs.jobs_t.metadata)
        self._sched = BackgroundScheduler(
            jobstores={"default": jobs, "local": MemoryJobStore()},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )  # fmt: skip
        self.running = False

    def start(self, *, paused: bool = False) -> None:
        """Start; ``paused=True`` only edits jobs (a CLI command beside a serving process)."""
        if not paused:
            with _LOCK:
                if self.database_id in _RUNNING:
                    raise InputError("a workflow scheduler already runs on this database "
                                     "in this process")  # fmt: skip
                _RUNNING[self.database_id] = self._fire
        self._sched.start(paused=paused)
        if not paused:
            self._sched.add_job(_wake, "interval", seconds=RESCAN_SECONDS, id="wake",
                                jobstore="local", replace_existing=True)  # fmt: skip
        self.running = not paused

    def shutdown(self) -> None:
        if self._sched.running:
            # APScheduler 3 marks itself stopped before its loop thread notices, and a
            # loop that wakes in between submits due jobs to the executor it just shut,
            # logging a traceback for a tick that was never going to run. Only that
            # record is dropped, and only from this scheduler's shutdown on.
            self._sched._logger.addFilter(_after_shutdown)
            self._sched.shutdown(wait=True)
        if self.running:
            with _LOCK:
                _RUNNING.pop(self.database_id, None)
        self.running = False

    def add(self, name: str, schedule: Schedule, *, created: float) -> None:
        self._sched.add_job(
            f"{__name__}:_fire", trigger_of(schedule, created), args=[self.database_id, name],
            id=name, name=f"workflow {name}", replace_existing=True,
        )  # fmt: skip

    def pause(self, name: str) -> None:
        self._quiet(self._sched.pause_job, name)

    def resume(self, name: str) -> None:
        self._quiet(self._sched.resume_job, name)

    def remove(self, name: str) -> None:
        self._quiet(self._sched.remove_job, name)

    def next_run(self, name: str) -> datetime | None:
        job = self._sched.get_job(name)
        return None if job is None else job.next_run_time

    @staticmethod
    def _quiet(fn: Callable[[str], Any], name: str) -> None:
        # The job may have ended (its until passed) or been removed by another process.
        with contextlib.suppress(JobLookupError):
            fn(name)
