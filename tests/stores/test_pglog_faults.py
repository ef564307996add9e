"""The log on PostgreSQL under faults: a server restart with appends in flight, a
read-only database, a full disk. Each answers :class:`StoreUnavailable` with a clear
message, never a checkpoint over lost entries, and the log recovers and audits clean.

These tests stop and start their own server (one per module), so they never disturb
the session's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import psycopg
import pytest

from inferproof.errors import StoreUnavailable
from inferproof.log import Log, PendingAppend, SignerKey
from inferproof.stores import PostgresLogStore
from tests._postgres import Postgres

# Every wait below is bounded: a pooled connection in 2 s, a connect in 5 s
# (CONNECT_TIMEOUT), so an append answers well within this.
ANSWER_WITHIN = 60.0


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    with Postgres() as pg:
        yield pg


def _admin(pg: Postgres, statement: str) -> None:
    with psycopg.connect(pg.url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture()
def db(server: Postgres) -> str:
    name = "faults_" + uuid.uuid4().hex[:12]
    _admin(server, f"CREATE DATABASE {name}")
    return name


def _url(pg: Postgres, name: str) -> str:
    return pg.url.rsplit("/", 1)[0] + "/" + name


def _drop_sessions(pg: Postgres, name: str) -> None:
    """End the pool's sessions, so its next connections take the database's new settings."""
    _admin(pg, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")


def _append_until_it_works(log: Log, data: bytes) -> int:
    """After an outage the pool reconnects with a backoff: the first tries may still be
    refused, with our error; one succeeds within a bounded number."""
    for _ in range(30):
        try:
            return log.append(data, timeout=ANSWER_WITHIN).index
        except StoreUnavailable:
            continue
    raise AssertionError("appends never recovered")


def test_restart_with_appends_in_flight(server: Postgres, db: str) -> None:
    signer = SignerKey.generate("faults.example/restart")
    log = Log(PostgresLogStore(_url(server, db), timeout=2.0), signer, max_delay=0.002)
    log.append_many([b"before-%d" % i for i in range(100)])
    acked: dict[bytes, int] = {}
    failed: list[BaseException] = []
    stop = threading.Event()
    in_flight = threading.Event()

    def load() -> None:  # keeps appends in flight through the restart
        n = 0
        while not stop.is_set():
            batch = [(b"load-%d" % (n + i), log.submit(b"load-%d" % (n + i))) for i in range(50)]
            n += 50
            in_flight.set()
            for data, p in batch:
                _settle(p, data, acked, failed)

    loader = threading.Thread(target=load)
    loader.start()
    assert in_flight.wait(30)
    server.stop("fast")
    try:
        with pytest.raises(StoreUnavailable) as info:
            log.append(b"during the outage", timeout=ANSWER_WITHIN)
        assert str(info.value).startswith(("log database", "no connection to log database"))
        assert any(s in str(info.value) for s in ("unreachable", "restarting", "no connection"))
    finally:
        server.start()
    index = _append_until_it_works(log, b"after the restart")
    stop.set()
    loader.join(ANSWER_WITHIN)
    assert not loader.is_alive()
    assert failed and all(isinstance(e, StoreUnavailable) for e in failed)
    log.close()
    with Log(PostgresLogStore(_url(server, db)), signer) as fresh:
        audit = fresh.verify()
        assert fresh.entry(index) == b"after the restart"
        for data, i in acked.items():  # every acknowledged append, where it was told
            assert fresh.entry(i) == data
        assert audit.size == fresh.size and len(acked) >= 50


def _settle(p: PendingAppend, data: bytes, acked: dict[bytes, int], failed: list[Any]) -> None:
    try:
        acked[data] = p.result(timeout=ANSWER_WITHIN).index
    except StoreUnavailable as exc:
        failed.append(exc)
    except FutureTimeout as exc:  # a hang: reported as a failure of the wrong type
        failed.append(exc)


def test_read_only_database(server: Postgres, db: str) -> None:
    signer = SignerKey.generate("faults.example/read-only")
    with Log(PostgresLogStore(_url(server, db)), signer) as log:
        log.append_many([b"kept-%d" % i for i in range(10)])
        size, note = log.size, log.store.checkpoint()
        _admin(server, f"ALTER DATABASE {db} SET default_transaction_read_only = on")
        _drop_sessions(server, db)
        with pytest.raises(StoreUnavailable, match="is read only") as info:
            log.append(b"refused", timeout=ANSWER_WITHIN)
        assert f"/{db} is read only" in str(info.value)
        assert "nothing was appended" in str(info.value)
        with pytest.raises(StoreUnavailable, match="is read only"):
            log.append_many([b"refused too"])
        assert log.size == size and log.store.checkpoint() == note  # reads still work
        _admin(server, f"ALTER DATABASE {db} SET default_transaction_read_only = off")
        _drop_sessions(server, db)
        assert _append_until_it_works(log, b"writable again") == size
        assert log.verify().size == size + 1


def _tiny_mount() -> Path | None:
    """A 4 MiB tmpfs owned by postgres, if this machine lets us mount one (root)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return None
    path = Path(tempfile.mkdtemp(prefix="inferproof-full-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        path.rmdir()
        return None
    shutil.chown(path, "postgres", "postgres")
    return path


@pytest.fixture()
def full_disk(server: Postgres, db: str) -> Iterator[Path]:
    mount = _tiny_mount()
    if mount is None:
        pytest.skip("a small filesystem cannot be mounted here (needs root and mount)")
    space = "tiny_" + db
    _admin(server, f"CREATE TABLESPACE {space} LOCATION '{mount}'")
    _admin(server, f"ALTER DATABASE {db} SET default_tablespace = {space}")
    try:
        yield mount
    finally:
        _drop_sessions(server, db)
        _admin(server, f"DROP DATABASE {db}")
        _admin(server, f"DROP TABLESPACE {space}")
        subprocess.run(["umount", str(mount)], check=True, capture_output=True)
        mount.rmdir()


def test_full_disk(server: Postgres, db: str, full_disk: Path) -> None:
    """The log's tables live on a 4 MiB filesystem; incompressible entries fill it."""
    signer = SignerKey.generate("faults.example/full")
    with Log(PostgresLogStore(_url(server, db)), signer) as log:
        log.append_many([b"small-%d" % i for i in range(10)])
        size, note = log.size, log.store.checkpoint()
        big = [os.urandom(60_000) for _ in range(100)]  # 6 MB, over the 4 MiB
        with pytest.raises(StoreUnavailable, match="is out of disk space: nothing was appended"):
            log.append_many(big)
        assert log.size == size and log.store.checkpoint() == note
        with pytest.raises(StoreUnavailable, match="out of disk space"):  # and again
            log.append_many(big)
        subprocess.run(["mount", "-o", "remount,size=64m", str(full_disk)], check=True)
        result = log.append_many(big)
        assert (result.first, result.size) == (size, size + 100)
        assert log.verify().size == size + 100
