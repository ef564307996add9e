"""Real faults under a node serving verified inferences: a worker killed with SIGKILL,
PostgreSQL restarted, the database made read-only, a full disk under the embedded files.

After each fault the log is read back from its store and audited: every acknowledged
receipt is in it once, at the index its response named, and no checkpoint covers an
entry that was not durably stored. A request that fails during a fault must fail
cleanly: a JSON 503 whose code is ``unavailable``, within a bound, never a 500.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from inferproof.errors import VerificationError
from inferproof.node import TokenStore
from inferproof.stores import PostgresLogStore, SQLTokenStore
from tests._postgres import Postgres
from tests.conftest import mlp_input
from tests.node.test_workers import (
    MODEL,
    WAIT,
    Load,
    Served,
    check_log,
    fresh_database,
    pg_log,
    push_model,
    run_load,
    serve,
    served_alone,
    sqlite_log,
    stderr_of,
    wait_workers,
)

__all__ = ["serve"]  # the fixture, imported so pytest finds it here

# A request during a fault must be answered within this. The log's connection pool
# waits 10 s for a connection (PostgresLogStore's timeout) and a request may queue
# behind one batch already waiting: about 20 s, plus margin for a loaded machine.
PROBE_SECONDS = 45.0


def _wait_for(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _unavailable(exc: BaseException) -> bool:
    return "answered 503 unavailable" in str(exc)


def _probe(node: Served, tmp: Path, name: str) -> BaseException | None:
    """One inference from a new client that does not retry; the error, or None."""
    started = time.monotonic()
    try:
        with node.client(tmp / name, timeout=PROBE_SECONDS, retries=0) as c:
            c.infer(MODEL, mlp_input(seed=7))
    except Exception as exc:  # the caller checks what it is
        assert time.monotonic() - started < PROBE_SECONDS + 5
        return exc
    return None


class _Background:
    """A load in a thread until :meth:`finish`; errors ``retry`` accepts are retried."""

    def __init__(
        self, node: Served, tmp: Path, retry: Callable[[BaseException], bool], threads: int = 4
    ) -> None:
        self.load, self.stop = Load(), threading.Event()
        self.thread = threading.Thread(
            target=run_load, args=([node], tmp),
            kwargs={"threads": threads, "per_thread": 10**6, "retry": retry,
                    "stop": self.stop, "into": self.load},
            daemon=True,
        )  # fmt: skip
        self.thread.start()

    def acked(self) -> int:
        with self.load.lock:
            return len(self.load.acks)

    def until(self, count: int) -> None:
        _wait_for(lambda: self.acked() >= count or not self.thread.is_alive(), f"{count} acks")
        assert self.thread.is_alive(), self.load.failures

    def finish(self) -> Load:
        self.stop.set()
        self.thread.join(WAIT * 2)
        assert not self.thread.is_alive()
        return self.load


@pytest.fixture()
def own_postgres() -> Iterator[Postgres]:
    """A server of this test's own, which it may stop and restart."""
    with Postgres() as pg:
        yield pg


def _not_a_forgery(exc: BaseException) -> bool:
    return not isinstance(exc, VerificationError)


def test_a_worker_killed_under_load_loses_no_receipt_and_is_restarted(
    serve: Callable[..., Served], postgres: Any, mlp_bytes: bytes, tmp_path: Path
) -> None:
    url = fresh_database(postgres)
    node = serve(tmp_path / "home", SQLTokenStore(url).create("t"), "--workers", "2",
                 "--database", url)  # fmt: skip
    push_model(node, mlp_bytes, tmp_path)
    served_alone(node, tmp_path, "alone")  # both workers up (a start may have failed)
    pids = wait_workers(node, 2)
    load = _Background(node, tmp_path, _not_a_forgery)
    load.until(30)
    os.kill(pids[0], signal.SIGKILL)
    restarted = wait_workers(node, 2, other_than={pids[0]})
    assert pids[1] in restarted  # the other worker was left alone
    load.until(load.acked() + 30)
    result = load.finish()
    assert not result.failures, result.failures
    assert _probe(node, tmp_path, "after") is None  # the node serves afterwards
    # Workers are numbered by slot, pids by start: a worker whose first start failed was
    # restarted with a later pid, so the one killed is not always slot 0.
    assert re.search(r"worker \d exited with code -9; restarting it", stderr_of(node.home))
    with pg_log(url, node.home) as log:
        check_log(log, result.acks)


def test_postgresql_restarted_under_load_answers_503_then_recovers(
    serve: Callable[..., Served], own_postgres: Postgres, mlp_bytes: bytes, tmp_path: Path
) -> None:
    url = own_postgres.url
    node = serve(tmp_path / "home", SQLTokenStore(url).create("t"), "--workers", "2",
                 "--database", url)  # fmt: skip
    push_model(node, mlp_bytes, tmp_path)
    served_alone(node, tmp_path, "alone")  # both workers up (a start may have failed)
    # Clients retry a 503 (after Retry-After) and an unreachable moment; anything else,
    # a 500 above all, fails the load.
    load = _Background(node, tmp_path, _unavailable)
    load.until(20)
    own_postgres.stop()
    try:
        for n in range(3):
            error = _probe(node, tmp_path, f"outage{n}")
            assert error is not None and _unavailable(error), error
    finally:
        own_postgres.start()
    deadline = time.monotonic() + WAIT  # pooled connections to the old server are dropped
    while (error := _probe(node, tmp_path, "back")) is not None:
        assert _unavailable(error), error
        assert time.monotonic() < deadline, "the node did not recover after the restart"
    load.until(load.acked() + 20)
    result = load.finish()
    assert not result.failures, result.failures
    assert node.proc.poll() is None and node.workers()
    with pg_log(url, node.home) as log:
        check_log(log, result.acks)


def _read_only(url: str, on: bool) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0].replace("+psycopg", "") + "/postgres",
                         autocommit=True) as conn:  # fmt: skip
        conn.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = "
                     f"{'on' if on else 'off'}")  # fmt: skip
        # Sessions take the setting when they start: end the node's open ones.
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))  # fmt: skip


def test_a_read_only_database_answers_503_and_writes_no_checkpoint(
    serve: Callable[..., Served], postgres: Any, mlp_bytes: bytes, tmp_path: Path
) -> None:
    url = fresh_database(postgres)
    node = serve(tmp_path / "home", SQLTokenStore(url).create("t"), "--workers", "2",
                 "--database", url)  # fmt: skip
    push_model(node, mlp_bytes, tmp_path)
    before = run_load([node], tmp_path, threads=2, per_thread=5)
    assert not before.failures
    store = PostgresLogStore(url)
    try:
        size, checkpoint = store.size(), store.checkpoint()
        _read_only(url, True)
        try:
            named = []  # the first answers may name the ended sessions instead
            for n in range(20):
                error = _probe(node, tmp_path, f"ro{n}")
                assert error is not None and _unavailable(error), error
                named.append("read-only" in str(error) or "read only" in str(error))
                if sum(named) >= 2:
                    break
            assert sum(named) >= 2, error
        finally:
            _read_only(url, False)
        assert (store.size(), store.checkpoint()) == (size, checkpoint)
    finally:
        store.close()
    deadline = time.monotonic() + WAIT
    while (error := _probe(node, tmp_path, "rw")) is not None:
        assert _unavailable(error) and time.monotonic() < deadline, error
    after = run_load([node], tmp_path / "after", threads=2, per_thread=5)
    assert not after.failures
    with pg_log(url, node.home) as log:
        check_log(log, before.acks + after.acks)


def _files_size(home: Path) -> int:
    return max(p.stat().st_size for p in home.rglob("*") if p.is_file())


def test_a_full_disk_on_the_embedded_default_answers_503_and_keeps_the_log_sound(
    serve: Callable[..., Served], mlp_bytes: bytes, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    token = TokenStore(home).create("t")
    first = serve(home, token)
    push_model(first, mlp_bytes, tmp_path)
    warm = run_load([first], tmp_path / "warm", threads=2, per_thread=5)
    assert not warm.failures
    first.proc.terminate()
    first.proc.wait(WAIT)
    # No file may grow past the largest one's size now, plus a little (one WAL frame
    # or two): SQLite's next growth fails with SQLITE_FULL ("database or disk is full";
    # the kernel's EFBIG, with SIGXFSZ ignored so the process is not killed).
    limit = _files_size(home) + 16 * 1024

    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    node = serve(home, token, preexec_fn=cap)
    acks: list[Any] = []
    errors: list[Exception] = []
    with node.client(tmp_path / "full", retries=0, timeout=PROBE_SECONDS) as c:
        for n in range(400):  # bounded: the files hit the cap after a few dozen
            try:
                acks.append(c.infer(MODEL, mlp_input(seed=n)))
            except Exception as exc:  # checked below
                errors.append(exc)
                if len(errors) >= 5:
                    break
    assert errors, "no write failed under the file size limit"
    for exc in errors:
        assert _unavailable(exc), exc
    assert node.proc.poll() is None  # the node did not crash
    assert "Traceback" not in stderr_of(home), stderr_of(home)  # logged as one line
    assert httpx.get(f"{node.url}/healthz", timeout=WAIT).status_code == 200
    node.proc.terminate()
    node.proc.wait(WAIT)
    from tests.node.test_workers import ack_of

    with sqlite_log(home) as log:  # opened without the cap
        check_log(log, warm.acks + [ack_of(r, 99) for r in acks])
