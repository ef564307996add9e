"""Jobs shared by node workers through SQLJobStore, on SQLite and on a real PostgreSQL.

Two ``Jobs`` objects on one database play two node workers: what one accepts and runs,
the other reads, waits on and cancels. A third worker is a real child process killed
with SIGKILL, to show a dead worker's job is reported failed rather than running.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from inferproof.node._errors import NodeHTTPError
from inferproof.node._jobs import MAX_PROGRESS_LINES, Jobs, JobState
from inferproof.node._routes import job_json
from inferproof.node._service import Issued, IssuedCodec
from inferproof.stores import SQLJobStore

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0  # a bound on every wait below, never a synchronisation by itself


@pytest.fixture()
def workers(database: str) -> Iterator[Callable[..., Jobs]]:
    made: list[Jobs] = []

    def make(running: int = 1, queued: int = 1, **kw: Any) -> Jobs:
        kw.setdefault("heartbeat", 0.05)
        jobs = Jobs(running, queued, 600.0, 600.0, store=SQLJobStore(database), **kw)
        made.append(jobs)
        return jobs

    yield make
    for jobs in made:
        jobs.shutdown()
        jobs.store.close()


def blocking(release: threading.Event, result: Any = None) -> Callable[[Any], Any]:
    def work(progress: Any) -> Any:
        progress("started")
        release.wait(WAIT)
        return result

    return work


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_job_made_on_one_worker_is_read_and_awaited_on_another(
    workers: Callable[..., Jobs],
) -> None:
    a, b = workers(), workers()
    release = threading.Event()

    async def main() -> JobState:
        job = a.submit("zk", "alice", blocking(release, {"answer": 42, "proof": [1, 2]}))
        seen = b.get(job.id)
        assert seen is not None and seen.status in ("queued", "running")
        assert seen.owner == "alice" and seen.mode == "zk"
        release.set()
        await b.wait(seen, WAIT)
        done = b.snapshot(seen)
        return done

    done = run(main())
    assert done.status == "succeeded", done.error
    assert done.result == {"answer": 42, "proof": [1, 2]}
    assert done.progress == ["started"]
    assert done.started is not None and done.finished is not None
    assert b.counts()["succeeded"] == 1


def test_capacity_is_counted_across_workers(workers: Callable[..., Jobs]) -> None:
    a, b = workers(running=1, queued=1), workers(running=1, queued=1)
    release = threading.Event()

    async def main() -> None:
        a.submit("zk", "alice", blocking(release))
        a.submit("zk", "alice", blocking(release))
        with pytest.raises(NodeHTTPError) as caught:
            b.submit("zk", "bob", blocking(release))
        assert caught.value.status == 429
        assert "the proving queue is full (2 jobs)" in str(caught.value.message)
        release.set()

    run(main())


def test_the_opening_is_rendered_for_the_owner_only_from_another_worker(
    workers: Callable[..., Jobs],
) -> None:
    """GET /v1/jobs/{id} shows a job to whoever has its id (96 random bits); the
    opening of a private input only to the token that made it, on any worker."""
    a, b = workers(codec=IssuedCodec()), workers(codec=IssuedCodec())
    issued = Issued(b'{"outputs":{"y":[1]}}', {"salt": "c2FsdA=="})

    async def main() -> dict[str, Any]:
        job = a.submit("zk", "alice", lambda progress: issued)
        await b.wait(job, WAIT)
        svc = SimpleNamespace(jobs=b)
        mine = job_json(svc, job, "alice")  # type: ignore[arg-type]
        theirs = job_json(svc, job, "mallory")  # type: ignore[arg-type]
        assert theirs["result"]["opening"] is None
        return mine

    mine = run(main())
    assert mine["status"] == "succeeded"
    assert mine["result"] == {"outputs": {"y": [1]}, "opening": {"salt": "c2FsdA=="}}


def test_cancel_refuses_another_owner_a_finished_job_and_knows_no_unknown_job(
    workers: Callable[..., Jobs],
) -> None:
    a, b = workers(), workers()

    async def main() -> None:
        job = a.submit("zk", "alice", lambda progress: {"ok": True})
        await b.wait(job, WAIT)
        with pytest.raises(NodeHTTPError) as other:
            b.cancel(job.id, "mallory")
        assert other.value.status == 403 and "another token" in str(other.value.message)
        with pytest.raises(NodeHTTPError) as finished:
            b.cancel(job.id, "alice")
        assert finished.value.status == 409
        assert "already succeeded" in str(finished.value.message)
        assert b.cancel("0" * 24, "alice") is None

    run(main())


def test_a_queued_job_cancelled_on_another_worker_never_starts(
    workers: Callable[..., Jobs],
) -> None:
    a, b = workers(running=1, queued=4), workers()
    release, started = threading.Event(), threading.Event()

    def second(progress: Any) -> Any:
        started.set()
        return {"ran": True}

    async def main() -> None:
        first = a.submit("zk", "alice", blocking(release))
        queued = a.submit("zk", "alice", second)
        cancelled = b.cancel(queued.id, "alice")
        assert cancelled is not None and cancelled.status == "cancelled"
        assert cancelled.error == ("cancelled", "the job was cancelled by its owner")
        release.set()
        await b.wait(first, WAIT)

    run(main())
    a.shutdown()  # the pool drains: the cancelled job's turn has come and gone
    assert not started.is_set()
    after = b.get(_only(b, "cancelled"))
    assert after is not None and after.status == "cancelled" and after.result is None


def _only(jobs: Jobs, status: str) -> str:
    store = jobs.store
    assert isinstance(store, SQLJobStore)
    import sqlalchemy as sa

    with store.engine.connect() as c:
        rows = c.execute(sa.text("SELECT id FROM node_jobs WHERE status = :s"), {"s": status})
        ids = [r[0] for r in rows]
    assert len(ids) == 1, ids
    return str(ids[0])


def test_a_running_job_cancelled_on_another_worker_sees_it_and_its_result_is_dropped(
    workers: Callable[..., Jobs],
) -> None:
    a, b = workers(), workers()
    running, saw_cancel = threading.Event(), threading.Event()

    def work(progress: Any) -> Any:
        running.set()
        for _ in range(int(WAIT / 0.01)):
            if progress.cancel_requested():
                saw_cancel.set()
                break
            threading.Event().wait(0.01)  # a long step polling its flag
        return {"late": "result"}

    async def main() -> str:
        job = a.submit("zk", "alice", work)
        assert await asyncio.to_thread(running.wait, WAIT)
        state = b.cancel(job.id, "alice")
        assert state is not None and state.status == "cancelled"
        # The running worker learns of it with its next heartbeat.
        assert await asyncio.to_thread(saw_cancel.wait, WAIT)
        await a.wait(job, WAIT)
        return job.id

    job_id = run(main())
    a.shutdown()
    for worker in (a, b):
        final = worker.get(job_id)
        assert final is not None and final.status == "cancelled" and final.result is None
        assert final.error is not None and final.error[0] == "cancelled"


def test_progress_is_bounded(workers: Callable[..., Jobs]) -> None:
    a, b = workers(), workers()

    def chatty(progress: Any) -> Any:
        for i in range(MAX_PROGRESS_LINES + 50):
            progress(f"{i:04d} " + "x" * 1000)
        return None

    async def main() -> JobState:
        job = a.submit("zk", "alice", chatty)
        await b.wait(job, WAIT)
        return b.snapshot(job)

    done = run(main())
    assert done.status == "succeeded"
    assert len(done.progress) == MAX_PROGRESS_LINES
    assert done.progress[0].startswith("0050 ") and done.progress[-1].startswith("0305 ")
    assert all(len(line) == 500 for line in done.progress)


def test_a_result_the_store_cannot_keep_fails_the_job(workers: Callable[..., Jobs]) -> None:
    a = workers()

    async def main() -> JobState:
        job = a.submit("zk", "alice", lambda progress: object())
        await a.wait(job, WAIT)
        return a.snapshot(job)

    done = run(main())
    assert done.status == "failed"
    assert done.error is not None and done.error[0] == "internal"
    assert "the job's result could not be stored" in done.error[1]
    assert "JSON serializable" in done.error[1]


_CHILD = textwrap.dedent(
    """
    import asyncio, sys, threading
    from inferproof.node._jobs import Jobs
    from inferproof.stores import SQLJobStore

    async def main():
        jobs = Jobs(1, 1, 600.0, 600.0, store=SQLJobStore(sys.argv[1]), heartbeat=0.05)
        started = threading.Event()
        def work(progress):
            progress("working")
            started.set()
            threading.Event().wait()  # until killed
        job = jobs.submit("zk", "alice", work)
        await asyncio.to_thread(started.wait)
        print(job.id, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def test_a_dead_workers_job_is_reported_failed(workers: Callable[..., Jobs], database: str) -> None:
    reader = workers(lost_after=1.0)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, database], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        job_id = child.stdout.readline().strip()
        alive = reader.get(job_id)
        assert alive is not None and alive.status == "running"
        assert alive.progress == ["working"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(WAIT)

    async def main() -> JobState:
        assert alive is not None
        await reader.wait(alive, WAIT)
        return reader.snapshot(alive)

    dead = run(main())
    assert dead.status == "failed"
    assert dead.error == ("worker_lost", "the node worker running the job stopped responding")
    # A dead worker's jobs no longer count against the capacity.
    assert reader.counts()["running"] == 0


def test_a_bad_database_url_is_one_clear_error() -> None:
    from inferproof.errors import InputError

    with pytest.raises(InputError, match="is not a postgresql:// or sqlite:/// database URL"):
        SQLJobStore("mysql://db/jobs")


def test_results_are_stored_as_json(workers: Callable[..., Jobs]) -> None:
    a = workers()

    async def main() -> str:
        job = a.submit("zk", "alice", lambda progress: {"n": 1, "s": "é"})
        await a.wait(job, WAIT)
        return job.id

    job_id = run(main())
    store = a.store
    assert isinstance(store, SQLJobStore)
    import sqlalchemy as sa

    with store.engine.connect() as c:
        text = c.execute(sa.text("SELECT result FROM node_jobs WHERE id = :i"), {"i": job_id})
        assert json.loads(text.scalar_one()) == {"n": 1, "s": "é"}
