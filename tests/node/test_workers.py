"""``inferproof serve --workers N`` and several nodes on one database, as real processes.

Every node here is an ``inferproof serve`` process on loopback; the clients are the
verifying :class:`~inferproof.client.Client`, each thread with its own home (so its own
checkpoint memory). After the load the log is read back from its store and checked:
every acknowledged receipt is in it exactly once, at the index its response named, the
checkpoints the clients saw are the store's (one chain, no fork) and consistent with
each other, and a full audit passes.

That both workers serve is shown without a worker id in the answers: with one worker
stopped (SIGSTOP) new requests are still answered, by the other; then the other way
round. With a single worker the stopped one would leave every request unanswered.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from inferproof._canonical import canonical_json
from inferproof.client import Client
from inferproof.log import (
    Log,
    SQLiteLogStore,
    TlogProof,
    load_or_create_key,
    open_checkpoint,
    verify_consistency,
)
from inferproof.node import TokenStore
from inferproof.stores import PostgresLogStore, SQLTokenStore
from tests.conftest import mlp_input

WAIT = 60.0  # a bound on every wait (start, stop, one request), never a synchronisation
INFERPROOF = str(Path(sys.executable).parent / "inferproof")
MODEL = "mlp:1"


# -- processes ---------------------------------------------------------------------------
@dataclass
class Served:
    """One ``inferproof serve`` process (its own session, so its workers go with it)."""

    proc: subprocess.Popen[str]
    url: str
    home: Path
    token: str

    def workers(self) -> list[int]:
        """The pids of the worker processes (multiprocessing's spawn children; its
        resource tracker is a child too, and is left out)."""
        return workers_of(self.proc.pid)

    def client(self, home: Path, **kw: Any) -> Client:
        kw.setdefault("timeout", WAIT)
        return Client(self.url, token=self.token, home=home, **kw)


def wait_workers(node: Served, count: int, other_than: set[int] = frozenset()) -> list[int]:
    """The node's worker pids once there are ``count`` of them, none in ``other_than``
    (a dead worker is restarted after a delay)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        pids = node.workers()
        if len(pids) == count and not set(pids) & other_than:
            return pids
        assert node.proc.poll() is None, "the node's parent process exited"
        time.sleep(0.05)
    raise AssertionError(f"the node has workers {node.workers()}, not {count} new ones")


def workers_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    found = []
    for child in text.split():
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(int(child))
    return sorted(found)


def _wait_ready(proc: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the node exited with code {proc.returncode} while starting")
        time.sleep(0.05)
    raise RuntimeError("the node did not become ready")


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Stop the node gracefully (SIGTERM), then kill whatever of its session is left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(WAIT)
    with contextlib.suppress(ProcessLookupError):  # leftover workers share its pgid
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(WAIT)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start ``inferproof serve`` processes; every one (and its workers) is killed at
    teardown, whatever the test did."""
    started: list[subprocess.Popen[str]] = []

    def start(
        home: Path,
        token: str,
        *args: str,
        preexec_fn: Callable[[], None] | None = None,
    ) -> Served:
        home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "INFERPROOF_HOME": str(home)}
        env.pop("INFERPROOF_DATABASE", None)
        stderr = (home.parent / f"{home.name}.stderr").open("w")
        proc = subprocess.Popen(
            [INFERPROOF, "serve", "--port", "0", *args], stdout=subprocess.PIPE,
            stderr=stderr, text=True, env=env, start_new_session=True,
            preexec_fn=preexec_fn,
        )  # fmt: skip
        stderr.close()
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # bounded: the process prints or exits
        if not line.startswith("listening on "):
            proc.wait(WAIT)
            raise RuntimeError(f"serve did not start (code {proc.returncode}): {stderr_of(home)}")
        url = line.removeprefix("listening on ")
        _wait_ready(proc, url)
        return Served(proc, url, home, token)

    yield start
    for proc in started:
        _kill_group(proc)


def stderr_of(home: Path) -> str:
    path = home.parent / f"{home.name}.stderr"
    return path.read_text() if path.exists() else ""


def fresh_database(pg: Any) -> str:
    name = "w_" + uuid.uuid4().hex[:16]
    with psycopg.connect(pg.url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return str(pg.url.rsplit("/", 1)[0] + "/" + name)


def push_model(node: Served, model: bytes, tmp: Path) -> None:
    with node.client(tmp / "pusher") as c:
        c.push(model, name="mlp", version="1")


# -- load and what it acknowledged -------------------------------------------------------
@dataclass(frozen=True)
class Ack:
    """One acknowledged, verified inference: where the node said it is logged, the
    entry it logged (the receipt's envelope) and the checkpoint its proof named."""

    index: int
    entry: bytes
    checkpoint: bytes
    client: int


@dataclass
class Load:
    acks: list[Ack] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    retried: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, ack: Ack) -> None:
        with self.lock:
            self.acks.append(ack)


def ack_of(result: Any, client: int) -> Ack:
    assert result.report is not None and result.report.verified, result.report
    assert result.bundle.tlog_entry is not None and result.log_index is not None
    proof = TlogProof.parse(result.bundle.tlog_entry)
    assert proof.index == result.log_index
    return Ack(result.log_index, canonical_json(result.bundle.envelope), proof.checkpoint, client)


def run_load(
    urls: list[Served],
    tmp: Path,
    *,
    threads: int,
    per_thread: int,
    retry: Callable[[BaseException], bool] | None = None,
    stop: threading.Event | None = None,
    into: Load | None = None,
) -> Load:
    """``threads`` threads, each with its own client (and home), ``per_thread`` verified
    inferences each; thread ``i`` uses ``urls[i % len(urls)]`` (a round robin). An error
    for which ``retry`` says yes is retried (a new request: a new nonce, a new receipt)."""
    load = into if into is not None else Load()

    def one(i: int) -> None:
        node = urls[i % len(urls)]
        with node.client(tmp / f"client{i}") as c:
            done = 0
            while done < per_thread and not (stop is not None and stop.is_set()):
                try:
                    result = c.infer(MODEL, mlp_input(seed=i * 10_000 + done))
                except Exception as exc:
                    if retry is not None and retry(exc):
                        with load.lock:
                            load.retried.append(exc)
                        time.sleep(0.05)
                        continue
                    with load.lock:
                        load.failures.append(exc)
                    return
                load.add(ack_of(result, i))
                done += 1

    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(one, range(threads)))
    return load


# -- checking the log --------------------------------------------------------------------
def check_log(log: Log, acks: list[Ack]) -> None:
    """Every ack at its index, once; no entry twice; checkpoints one consistent chain."""
    size = log.size
    entries = log.store.read_entries(0, size)
    assert len(entries) == size
    assert len(set(entries)) == size, "two log entries are the same receipt"
    for ack in acks:
        assert ack.index < size
        assert entries[ack.index] == ack.entry, f"receipt not at index {ack.index}"
    assert len({a.index for a in acks}) == len(acks), "two acknowledgements share an index"
    sizes = log.store.checkpoint_sizes()
    assert sizes == sorted(set(sizes)) and sizes[-1] == size
    key = log.verifier_key
    seen = sorted({open_checkpoint(a.checkpoint, key) for a in acks}, key=lambda s: s.size)
    for signed in seen:  # what a client saw is what the store holds: no fork
        assert log.store.checkpoint(signed.size) == signed.note.encode() or (
            log.checkpoint(signed.size).root_hash == signed.root_hash
        )
    by_client: dict[int, list[int]] = {}
    for ack in acks:
        by_client.setdefault(ack.client, []).append(open_checkpoint(ack.checkpoint, key).size)
    for client_sizes in by_client.values():  # each client's checkpoints never go back
        assert client_sizes == sorted(client_sizes)
    first, last = seen[0], seen[-1]
    verify_consistency(first.size, last.size, first.root_hash, last.root_hash,
                       log.consistency_proof(first.size, last.size))  # fmt: skip
    audit = log.verify()
    assert audit.size == size


def pg_log(url: str, home: Path) -> Log:
    key = load_or_create_key(home / "keys" / "log.key", "inferproof.local")
    return Log(PostgresLogStore(url), key)


def sqlite_log(home: Path) -> Log:
    key = load_or_create_key(home / "keys" / "log.key", "inferproof.local")
    return Log(SQLiteLogStore(home / "log" / "log.sqlite"), key)


def served_alone(node: Served, tmp: Path, name: str, *, infer: bool = True) -> None:
    """Stop each worker in turn (SIGSTOP) and see a new client still served: by the
    other worker. The node must be idle (a stopped worker holding the log's lock would
    hold up the other)."""
    for _attempt in range(5):  # a worker that failed its start is being replaced
        pids = wait_workers(node, 2)
        try:
            for stopped in pids:
                _serve_without(node, stopped, tmp / f"{name}-{stopped}", infer)
            return
        except ProcessLookupError:
            continue
    raise AssertionError("the node's workers kept exiting")


def _serve_without(node: Served, stopped: int, home: Path, infer: bool) -> None:
    os.kill(stopped, signal.SIGSTOP)
    try:
        if not infer:  # a new connection, so the stopped worker cannot hold it
            assert httpx.get(f"{node.url}/healthz", timeout=20).status_code == 200
            return
        with node.client(home, timeout=20, retries=0) as c:
            result = c.infer(MODEL, mlp_input(seed=stopped))
        assert result.report is not None and result.report.verified
    finally:
        os.kill(stopped, signal.SIGCONT)


# -- the tests ---------------------------------------------------------------------------
def test_two_workers_on_postgresql_log_every_receipt_once(
    serve: Callable[..., Served], postgres: Any, mlp_bytes: bytes, tmp_path: Path
) -> None:
    url = fresh_database(postgres)
    token = SQLTokenStore(url).create("tests")
    node = serve(tmp_path / "home", token, "--workers", "2", "--database", url)
    wait_workers(node, 2)
    push_model(node, mlp_bytes, tmp_path)
    load = run_load([node], tmp_path, threads=6, per_thread=15)
    assert not load.failures, load.failures
    served_alone(node, tmp_path, "alone")
    assert len(load.acks) == 90
    with pg_log(url, node.home) as log:
        check_log(log, load.acks)
        assert log.size == 92  # and the two answered with one worker stopped


def test_two_workers_on_the_embedded_default_share_the_sqlite_files(
    serve: Callable[..., Served], mlp_bytes: bytes, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    token = TokenStore(home).create("tests")
    node = serve(home, token, "--workers", "2")
    wait_workers(node, 2)
    push_model(node, mlp_bytes, tmp_path)
    load = run_load([node], tmp_path, threads=4, per_thread=10)
    assert not load.failures, load.failures
    served_alone(node, tmp_path, "alone")
    with sqlite_log(home) as log:
        check_log(log, load.acks)
        assert log.size == 42


def test_two_nodes_on_one_database_behind_a_round_robin_keep_one_log(
    serve: Callable[..., Served], postgres: Any, mlp_bytes: bytes, tmp_path: Path
) -> None:
    url = fresh_database(postgres)
    token = SQLTokenStore(url).create("tests")
    first = serve(tmp_path / "a", token, "--database", url)
    (tmp_path / "b" / "keys").mkdir(parents=True)
    shutil.copy(tmp_path / "a" / "keys" / "log.key", tmp_path / "b" / "keys" / "log.key")
    second = serve(tmp_path / "b", token, "--database", url)
    node_keys = {(n.home / "keys" / "node.key").read_bytes() for n in (first, second)}
    assert len(node_keys) == 2  # each node signs its receipts with its own key
    # The registry is shared; model files are in each home's blobs (or one S3 bucket).
    push_model(first, mlp_bytes, tmp_path)
    push_model(second, mlp_bytes, tmp_path / "b-pusher")
    load = run_load([first, second], tmp_path, threads=4, per_thread=12)
    assert not load.failures, load.failures
    assert {a.client % 2 for a in load.acks} == {0, 1}  # both nodes answered
    with pg_log(url, first.home) as log:
        check_log(log, load.acks)
        assert log.size == 48


def test_a_node_with_another_log_key_on_the_same_database_is_refused(
    serve: Callable[..., Served], postgres: Any, tmp_path: Path
) -> None:
    url = fresh_database(postgres)
    token = SQLTokenStore(url).create("tests")
    first = serve(tmp_path / "a", token, "--database", url)
    with pytest.raises(RuntimeError, match="exited with code 2 while starting"):
        serve(tmp_path / "b", token, "--database", url)  # its own, new keys/log.key
    # Refused at start, when the node opens the log, before it appends anything: one
    # line naming the log's owner, no traceback.
    message = stderr_of(tmp_path / "b")
    assert "log store belongs to 'inferproof.local/" in message, message
    assert "Traceback" not in message, message
    # With workers, the refusing worker stops the node instead of restarting forever.
    with pytest.raises(RuntimeError, match="exited with code 2 while starting"):
        serve(tmp_path / "b", token, "--workers", "2", "--database", url)
    message = stderr_of(tmp_path / "b")
    assert "log store belongs to 'inferproof.local/" in message, message
    assert "a worker refused to start" in message, message
    assert httpx.get(f"{first.url}/healthz", timeout=WAIT).status_code == 200
    with pg_log(url, first.home) as log:
        assert log.size == 0


def test_workers_starting_together_on_a_fresh_database_all_start(
    serve: Callable[..., Served], postgres: Any, tmp_path: Path
) -> None:
    url = fresh_database(postgres)
    node = serve(tmp_path / "home", SQLTokenStore(url).create("tests"), "--workers", "2",
                 "--database", url)  # fmt: skip
    served_alone(node, tmp_path, "alone", infer=False)  # both workers up and serving
    assert "exited with code" not in stderr_of(node.home), stderr_of(node.home)
