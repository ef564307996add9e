"""Background jobs for long inference modes (zero-knowledge proving).

A job runs on a small pool (``max_jobs`` at once, ``max_queued_jobs`` waiting) and
reports progress lines from the library's ``progress`` callback. A caller polls
``GET /v1/jobs/{id}`` or waits on it with ``?wait=seconds``. Job ids are 96 random
bits, and a private input's opening is shown only to the token that made the job.

Job state lives in a :class:`JobStore`. The embedded default keeps it in memory
(:class:`MemoryJobStore`); ``stores.SQLJobStore`` keeps it in SQLite or PostgreSQL so
that several node workers share it. The worker that accepted a job runs it on its own
pool and writes its state; any worker reads it, waits on it (by polling the store) and
can cancel it. A running worker beats a heartbeat into its jobs' rows; a job whose
worker stopped beating for ``lost_after`` seconds, or that outlived ``timeout``, is
reported failed, never "running" forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..errors import InputError
from ..stores import (
    CANCELLED_ERROR,
    LOST_ERROR,
    MAX_LINE_CHARS,
    MAX_PROGRESS_LINES,
    SHUTDOWN_ERROR,
    JobRecord,
)
from ._bundles import new_id
from ._errors import NodeHTTPError

__all__ = [
    "ACTIVE",
    "MAX_PROGRESS_LINES",
    "STATES",
    "JobProgress",
    "JobRecord",
    "JobState",
    "JobStore",
    "Jobs",
    "MemoryJobStore",
    "ResultCodec",
]

ACTIVE = ("queued", "running")
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
# A job's work: called with a progress callback, returns the job's result.
JobFn = Callable[[Callable[[str], None]], Any]


@dataclass
class JobState:
    """One job's state as the routes render it; read it through :meth:`Jobs.snapshot`."""

    id: str
    mode: str
    owner: str
    created: float
    status: str = "queued"
    started: float | None = None
    finished: float | None = None
    progress: list[str] = field(default_factory=list)
    result: Any = None
    error: tuple[str, str] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class JobStore(Protocol):
    """Where jobs' states live. Every transition is conditional on the current status,
    so a job finishes, fails or is cancelled once, whichever process gets there first.

    Example::

        store = MemoryJobStore()
        active = store.add(record, capacity=17, live_since=now - 30)
    """

    def add(self, job: JobRecord, *, capacity: int, live_since: float) -> int:
        """Insert ``job`` unless ``capacity`` jobs are active (queued or running, with a
        heartbeat at or after ``live_since``); return how many were active before."""
        ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def start(self, job_id: str, now: float) -> bool:
        """queued -> running; False when the job is no longer queued (cancelled, failed)."""
        ...

    def progress(self, job_id: str, line: str, now: float) -> None:
        """Append a line (the latest MAX_PROGRESS_LINES are kept) and beat the heartbeat."""
        ...

    def finish(
        self, job_id: str, status: str, now: float, result: Any, error: tuple[str, str] | None
    ) -> bool:
        """running -> ``status``; False when the job is no longer running."""
        ...

    def cancel(
        self, job_id: str, now: float, error: tuple[str, str] = CANCELLED_ERROR
    ) -> JobRecord | None:
        """An active job -> cancelled (with ``error``, by default CANCELLED_ERROR);
        return the job as it is afterwards."""
        ...

    def beat(self, job_ids: Iterable[str], now: float) -> set[str]:
        """Beat the heartbeat of the active jobs among ``job_ids``; return the ids of
        those that are no longer active (cancelled or failed by another process)."""
        ...

    def expire(self, now: float, *, created_before: float, beat_before: float) -> None:
        """Fail active jobs created before ``created_before`` (timeout) or whose worker
        last beat before ``beat_before`` (lost worker)."""
        ...

    def purge(self, finished_before: float) -> None: ...

    def counts(self) -> dict[str, int]: ...

    def close(self) -> None: ...


def timeout_error(timeout: float) -> tuple[str, str]:
    return ("timeout", f"the job did not finish within {timeout:.0f} s")


class MemoryJobStore:
    """Jobs in this process's memory: the embedded default (one worker).

    Example::

        jobs = Jobs(1, 16, 3600, 3600, store=MemoryJobStore())
    """

    def __init__(self) -> None:
        self._jobs: dict[str, JobRecord] = {}
        self._lock = threading.Lock()

    def add(self, job: JobRecord, *, capacity: int, live_since: float) -> int:
        with self._lock:
            active = sum(
                j.status in ACTIVE and j.heartbeat >= live_since for j in self._jobs.values()
            )
            if active < capacity:
                self._jobs[job.id] = job
            return active

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _move(self, job_id: str, frm: tuple[str, ...], **changes: Any) -> JobRecord | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status not in frm:
                return None
            self._jobs[job_id] = job = replace(job, **changes)
            return job

    def start(self, job_id: str, now: float) -> bool:
        moved = self._move(job_id, ("queued",), status="running", started=now, heartbeat=now)
        return moved is not None

    def progress(self, job_id: str, line: str, now: float) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                lines = (*job.progress, line)[-MAX_PROGRESS_LINES:]
                self._jobs[job_id] = replace(job, progress=lines, heartbeat=now)

    def finish(
        self, job_id: str, status: str, now: float, result: Any, error: tuple[str, str] | None
    ) -> bool:
        changes = {"status": status, "finished": now, "result": result, "error": error}
        return self._move(job_id, ("running",), **changes) is not None

    def cancel(
        self, job_id: str, now: float, error: tuple[str, str] = CANCELLED_ERROR
    ) -> JobRecord | None:
        self._move(job_id, ACTIVE, status="cancelled", finished=now, error=error)
        return self.get(job_id)

    def beat(self, job_ids: Iterable[str], now: float) -> set[str]:
        gone = set()
        with self._lock:
            for key in job_ids:
                job = self._jobs.get(key)
                if job is None or job.status not in ACTIVE:
                    gone.add(key)
                else:
                    self._jobs[key] = replace(job, heartbeat=now)
        return gone

    def expire(self, now: float, *, created_before: float, beat_before: float) -> None:
        with self._lock:
            for key, job in list(self._jobs.items()):
                if job.status not in ACTIVE:
                    continue
                if job.created < created_before:
                    error = timeout_error(now - job.created)
                elif job.heartbeat < beat_before:
                    error = LOST_ERROR
                else:
                    continue
                self._jobs[key] = replace(job, status="failed", finished=now, error=error)

    def purge(self, finished_before: float) -> None:
        with self._lock:
            old = [k for k, j in self._jobs.items() if j.finished and j.finished < finished_before]
            for key in old:
                del self._jobs[key]

    def counts(self) -> dict[str, int]:
        with self._lock:
            states = [j.status for j in self._jobs.values()]
        return {s: states.count(s) for s in STATES}

    def close(self) -> None:
        pass


class ResultCodec(Protocol):
    """Turns a job's return value into what its store keeps, and back for rendering.

    Example::

        class Identity:
            def encode(self, result): return result
            def decode(self, data): return data
    """

    def encode(self, result: Any) -> Any: ...

    def decode(self, data: Any) -> Any: ...


class _Identity:
    def encode(self, result: Any) -> Any:
        return result

    def decode(self, data: Any) -> Any:
        return data


class JobProgress:
    """The progress callback a job's work receives: call it with a line. A long step
    polls :meth:`cancel_requested` to stop early (the Ray prover cancels its task).

    Example::

        def work(progress):
            progress("step 1")
            if getattr(progress, "cancel_requested", lambda: False)():
                return None
    """

    def __init__(self, jobs: Jobs, job_id: str, cancelled: threading.Event) -> None:
        self._jobs, self._id, self._cancelled = jobs, job_id, cancelled

    def __call__(self, line: str) -> None:
        self._jobs._store.progress(self._id, str(line)[:MAX_LINE_CHARS], time.time())

    def cancel_requested(self) -> bool:
        """Whether the job was cancelled (here, or on another worker sharing the store)."""
        return self._cancelled.is_set()


@dataclass
class _Local:
    """What this process holds for a job it runs: its wake-up event and cancel flag."""

    loop: asyncio.AbstractEventLoop | None
    done: asyncio.Event
    cancelled: threading.Event = field(default_factory=threading.Event)

    def wake(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.loop.call_soon_threadsafe(self.done.set)


def _worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{new_id()[:8]}"


class Jobs:
    """A bounded pool of jobs; ``submit`` refuses with 429 when it is full.

    ``max_running`` jobs run at once on this process's threads. With a shared
    ``store`` the capacity (``max_running + max_queued``) counts the active jobs of
    every worker. ``heartbeat`` is how often this worker beats its jobs' heartbeat
    (and reads cancellations made elsewhere); a job whose worker has not beaten for
    ``lost_after`` seconds is failed with ``worker_lost``. ``poll`` is how often a wait
    on another worker's job reads the store. ``codec`` turns results into what the
    store keeps (a SQL store keeps JSON values only).

    Example::

        jobs = Jobs(1, 16, 3600.0, 3600.0, store=SQLJobStore("sqlite:////tmp/jobs.sqlite"))
        job = jobs.submit("zk", owner, lambda progress: prove(progress))
        await jobs.wait(job, 30)
    """

    def __init__(
        self,
        max_running: int,
        max_queued: int,
        timeout: float,
        retention: float,
        *,
        store: JobStore | None = None,
        codec: ResultCodec | None = None,
        heartbeat: float = 2.0,
        lost_after: float = 30.0,
        poll: float = 0.2,
    ) -> None:
        self._pool = ThreadPoolExecutor(max(1, max_running), thread_name_prefix="prove")
        self._capacity = max(1, max_running) + max(0, max_queued)
        self._timeout, self._retention = timeout, retention
        self._store: JobStore = store if store is not None else MemoryJobStore()
        self._codec: ResultCodec = codec if codec is not None else _Identity()
        self._beat_every, self._lost_after = heartbeat, max(lost_after, 2 * heartbeat)
        self._poll = max(0.01, poll)
        self.worker = _worker_id()
        self._local: dict[str, _Local] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None
        self._last_expire = 0.0

    @property
    def store(self) -> JobStore:
        return self._store

    # -- state -----------------------------------------------------------------------------
    def _expire(self, force: bool = False) -> None:
        now = time.time()
        if force or now - self._last_expire >= self._poll:
            self._last_expire = now
            self._store.expire(
                now, created_before=now - self._timeout, beat_before=now - self._lost_after
            )

    def counts(self) -> dict[str, int]:
        self._expire()
        return self._store.counts()

    def _state(self, record: JobRecord) -> JobState:
        local = self._local.get(record.id)
        if local is not None:
            done = local.done  # set by the running thread, through the loop
        else:
            done = asyncio.Event()
            if record.status not in ACTIVE:
                done.set()
        return JobState(
            record.id, record.mode, record.owner, record.created, record.status, record.started,
            record.finished, list(record.progress), self._codec.decode(record.result),
            record.error, done,
        )  # fmt: skip

    def get(self, job_id: str) -> JobState | None:
        """The job ``job_id`` as its store has it (any worker's), or None."""
        self._expire()
        record = self._store.get(job_id)
        return None if record is None else self._state(record)

    def snapshot(self, job: JobState) -> JobState:
        """A fresh copy of ``job`` (progress copied) to render."""
        self._expire()
        record = self._store.get(job.id)
        return job if record is None else self._state(record)

    # -- running ---------------------------------------------------------------------------
    def submit(self, mode: str, owner: str, fn: JobFn) -> JobState:
        """Queue ``fn(progress)``; its return value becomes the job's result."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        now = time.time()
        self._store.purge(now - self._retention)
        self._expire(force=True)
        record = JobRecord(new_id(), mode, owner, now, worker=self.worker, heartbeat=now)
        active = self._store.add(record, capacity=self._capacity, live_since=now - self._lost_after)
        if active >= self._capacity:
            raise NodeHTTPError(
                429, f"the proving queue is full ({active} jobs)", headers={"Retry-After": "5"}
            )
        local = _Local(loop, asyncio.Event())
        with self._lock:
            self._local[record.id] = local
        self._ensure_beater()
        self._pool.submit(self._run, record.id, fn, local)
        return self._state(record)

    def _run(self, job_id: str, fn: JobFn, local: _Local) -> None:
        try:
            if local.cancelled.is_set() or not self._store.start(job_id, time.time()):
                return  # cancelled, timed out or lost while queued: it never starts
            try:
                result: Any = fn(JobProgress(self, job_id, local.cancelled))
                outcome: tuple[str, Any, tuple[str, str] | None] = (
                    "succeeded", self._codec.encode(result), None,
                )  # fmt: skip
            except InputError as exc:
                outcome = ("failed", None, ("invalid_request", str(exc)))
            except Exception as exc:  # reported in the job, never a crashed worker
                outcome = ("failed", None, ("internal", f"the node failed: {exc}"))
            self._finish(job_id, outcome)
        finally:
            with self._lock:
                self._local.pop(job_id, None)
            local.wake()

    def _finish(self, job_id: str, outcome: tuple[str, Any, tuple[str, str] | None]) -> None:
        # A job cancelled, timed out or lost meanwhile keeps that state: its result
        # is discarded (the conditional transition refuses it).
        try:
            self._store.finish(job_id, outcome[0], time.time(), outcome[1], outcome[2])
        except Exception as exc:  # a result the store cannot keep fails the job
            error = ("internal", f"the job's result could not be stored: {exc}")
            self._store.finish(job_id, "failed", time.time(), None, error)

    def _ensure_beater(self) -> None:
        with self._lock:
            if self._beater is None and not self._stop.is_set():
                self._beater = threading.Thread(
                    target=self._beat_loop, name="jobs-heartbeat", daemon=True
                )
                self._beater.start()

    def _beat_loop(self) -> None:
        while not self._stop.wait(self._beat_every):
            with self._lock:
                mine = dict(self._local)
            if not mine:
                continue
            with contextlib.suppress(Exception):  # a store hiccup: beat again next time
                for job_id in self._store.beat(mine, time.time()):
                    mine[job_id].cancelled.set()
                    mine[job_id].wake()

    def cancel(self, job_id: str, owner: str) -> JobState | None:
        """Cancel a job of ``owner``; None when there is no such job.

        A queued job never starts. A running job is marked cancelled at once and its
        result, if it ever comes, is discarded. Work on this process's threads cannot
        be interrupted: it runs to its end (a ZK inference may still append its receipt
        to the log, which is append-only); work that polls
        :meth:`JobProgress.cancel_requested` stops early (the Ray prover cancels its
        Ray task). A cancel made on another worker reaches the running worker with
        its next heartbeat. Another owner's job is refused with 403, a finished one
        with 409.

        Example::

            state = jobs.cancel(job.id, owner)
            assert state.status == "cancelled"
        """
        self._expire()
        record = self._store.get(job_id)
        if record is None:
            return None
        if record.owner != owner:
            raise NodeHTTPError(403, f"job {job_id} was made by another token; only it can cancel")
        if record.status not in ACTIVE and record.status != "cancelled":
            raise NodeHTTPError(409, f"job {job_id} already {record.status}: nothing to cancel")
        after = self._store.cancel(job_id, time.time())
        local = self._local.get(job_id)
        if local is not None:
            local.cancelled.set()
            local.wake()
        return None if after is None else self._state(after)

    async def wait(self, job: JobState, seconds: float) -> None:
        """Return when ``job`` has ended, or after ``seconds`` (and never past its timeout).
        A job of this worker wakes the waiter at once; another worker's is polled in
        the store every ``poll`` seconds."""
        if seconds <= 0 or job.status not in ACTIVE:
            return
        end = time.monotonic() + min(seconds, job.created + self._timeout - time.time() + 1.0)
        while (left := end - time.monotonic()) > 0:
            record = self._read(job.id)
            if record is None or record.status not in ACTIVE:
                return
            local = self._local.get(job.id)
            if local is not None and local.loop is asyncio.get_running_loop():
                # Ours: the running thread (or a cancel) sets the event; the bound
                # re-reads a timeout the store decided.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(local.done.wait(), left)
            else:
                await asyncio.sleep(min(left, self._poll))

    def _read(self, job_id: str) -> JobRecord | None:
        self._expire()
        return self._store.get(job_id)

    def shutdown(self) -> None:
        """Drop queued jobs (failed, so no worker waits on them) and wait for the running
        ones (their log appends finish)."""
        self._stop.set()
        with self._lock:
            queued = list(self._local)
        for job_id in queued:
            record = self._store.get(job_id)
            if record is not None and record.status == "queued":
                self._store.cancel(job_id, time.time(), SHUTDOWN_ERROR)
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._beater is not None:
            self._beater.join(timeout=5)
