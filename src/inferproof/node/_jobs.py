"""Background jobs for long inference modes (zero-knowledge proving).

A job runs on a small pool (``max_jobs`` at once, ``max_queued_jobs`` waiting) and
reports progress lines from the library's ``progress`` callback. A caller polls
``GET /v1/jobs/{id}`` or waits on it with ``?wait=seconds``. Job ids are 96 random
bits, and a private input's opening is shown only to the token that made the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ._bundles import new_id
from ._errors import NodeHTTPError

# A job keeps at most this many progress lines (the latest ones): a prover that
# reports per step stays far below it, and memory stays bounded if one does not.
MAX_PROGRESS_LINES = 256
# A job's work: called with a progress callback, returns the job's result.
JobFn = Callable[[Callable[[str], None]], Any]


@dataclass
class JobState:
    """One job's mutable state; read it through :meth:`Jobs.view`."""

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


class Jobs:
    """A bounded pool of jobs; ``submit`` refuses with 429 when it is full."""

    def __init__(self, max_running: int, max_queued: int, timeout: float, retention: float):
        self._pool = ThreadPoolExecutor(max(1, max_running), thread_name_prefix="prove")
        self._capacity = max(1, max_running) + max(0, max_queued)
        self._timeout, self._retention = timeout, retention
        self._jobs: dict[str, JobState] = {}
        self._lock = threading.Lock()

    def counts(self) -> dict[str, int]:
        with self._lock:
            states = [j.status for j in self._jobs.values()]
        return {s: states.count(s) for s in ("queued", "running", "succeeded", "failed")}

    def submit(self, mode: str, owner: str, fn: JobFn) -> JobState:
        """Queue ``fn(progress)``; its return value becomes the job's result."""
        loop = asyncio.get_running_loop()
        now = time.time()
        with self._lock:
            self._purge(now)
            active = sum(j.status in ("queued", "running") for j in self._jobs.values())
            if active >= self._capacity:
                raise NodeHTTPError(
                    429, f"the proving queue is full ({active} jobs)", headers={"Retry-After": "5"}
                )
            job = JobState(new_id(), mode, owner, now)
            self._jobs[job.id] = job
        self._pool.submit(self._run, job, fn, loop)
        return job

    def _run(
        self,
        job: JobState,
        fn: Callable[[Callable[[str], None]], Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        with self._lock:
            if job.status != "queued":
                return  # timed out while queued
            job.status, job.started = "running", time.time()

        def progress(line: str) -> None:
            with self._lock:
                job.progress.append(str(line)[:500])
                del job.progress[:-MAX_PROGRESS_LINES]

        try:
            result: Any = fn(progress)
            outcome: tuple[str, Any] = ("succeeded", result)
        except InputError as exc:
            outcome = ("failed", ("invalid_request", str(exc)))
        except Exception as exc:  # reported in the job, never a crashed worker
            outcome = ("failed", ("internal", f"the node failed: {exc}"))
        with self._lock:
            if job.status == "running":  # not already failed by a timeout
                job.status, job.finished = outcome[0], time.time()
                if outcome[0] == "succeeded":
                    job.result = outcome[1]
                else:
                    job.error = outcome[1]
        loop.call_soon_threadsafe(job.done.set)

    def get(self, job_id: str) -> JobState | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                self._expire(job, time.time())
            return job

    def _expire(self, job: JobState, now: float) -> None:
        if job.status in ("queued", "running") and now - job.created > self._timeout:
            job.status, job.finished = "failed", now
            job.error = ("timeout", f"the job did not finish within {self._timeout:.0f} s")
            job.done.set()

    def _purge(self, now: float) -> None:
        old = [
            k for k, j in self._jobs.items() if j.finished and now - j.finished > self._retention
        ]
        for key in old:
            del self._jobs[key]

    async def wait(self, job: JobState, seconds: float) -> None:
        if seconds > 0 and job.status in ("queued", "running"):
            remaining = job.created + self._timeout - time.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.done.wait(), max(0.0, min(seconds, remaining)))

    def snapshot(self, job: JobState) -> JobState:
        """A consistent copy of ``job`` (progress copied) to render."""
        with self._lock:
            self._expire(job, time.time())
            return JobState(
                job.id, job.mode, job.owner, job.created, job.status, job.started,
                job.finished, list(job.progress), job.result, job.error, job.done,
            )  # fmt: skip

    def shutdown(self) -> None:
        """Drop queued jobs and wait for the running ones (their log appends finish)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
