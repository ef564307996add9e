"""The gateway's replay record in the node's shared store (RFC 9458 section 6.5.1): the
store records a key once, on SQLite and PostgreSQL, under concurrency, and prunes
what is past its horizon; a replay is refused by another app or worker process on the
same home or database, and after a restart; an outage of the store is a 503 that
records nothing.

Times given to the store and the guard are fixed numbers, never the machine's clock;
the HTTP tests date their requests now, as a client does, and the node reads the same
clock."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from inferproof.confidential import (
    BinaryRequest,
    ClientRequest,
    decode_response,
    encapsulate_request,
    encode_request,
    parse_key_configs,
)
from inferproof.engine import CONFIG_FILE
from inferproof.errors import InputError, StoreUnavailable
from inferproof.node import NodeConfig, TokenStore
from inferproof.node._errors import NodeHTTPError
from inferproof.node._replays import ReplayGuard
from inferproof.stores import SQLReplayStore, SQLTokenStore
from inferproof.stores._replays import PRUNE_BATCH, PRUNE_EVERY, PRUNE_SECONDS
from tests._postgres import Postgres
from tests.confidential.test_gateway import GATEWAY
from tests.node.conftest import Running, start
from tests.node.test_workers import fresh_database, serve, wait_workers

__all__ = ["serve"]  # the fixture, imported so pytest finds it here

REPLAY = "this sealed request was seen before (a replay)"
NOW = 1_700_000_000.0  # a fixed time for the store and the guard
HORIZON = 660.0  # what the guard asks for: two 300 s windows and a margin
KEY = bytes(range(32))
THREADS = 16


# -- the store ---------------------------------------------------------------------------
@pytest.fixture()
def store(database: str) -> Iterator[SQLReplayStore]:
    opened = SQLReplayStore(database)
    yield opened
    opened.close()


def test_a_key_is_recorded_once_and_every_store_on_the_database_knows_it(
    store: SQLReplayStore, database: str
) -> None:
    assert store.first_seen(KEY, NOW, HORIZON) is True
    assert store.first_seen(KEY, NOW + 1, HORIZON) is False
    assert store.first_seen(KEY[::-1], NOW, HORIZON) is True
    other = SQLReplayStore(database)  # another worker process, or this one restarted
    try:
        assert other.first_seen(KEY, NOW + 2, HORIZON) is False
        assert other.seen_at(KEY) == NOW  # the first recording's time, never moved
        assert other.count() == 2
    finally:
        other.close()


def test_only_the_keys_sha256_is_stored(store: SQLReplayStore) -> None:
    store.first_seen(KEY, NOW, HORIZON)
    with store.engine.connect() as c:
        (stored,) = c.execute(sa.text("SELECT digest FROM ohttp_seen")).scalars()
    assert bytes(stored) == hashlib.sha256(KEY).digest()


@pytest.mark.parametrize(
    ("now", "horizon"), [(float("nan"), HORIZON), (NOW, -1.0), (NOW, float("inf"))]
)
def test_a_time_that_is_not_a_finite_number_is_refused(
    store: SQLReplayStore, now: float, horizon: float
) -> None:
    with pytest.raises(InputError, match="now and horizon must be finite, horizon >= 0"):
        store.first_seen(KEY, now, horizon)
    assert store.count() == 0


def test_pruning_removes_rows_past_the_horizon_and_keeps_the_rest(
    store: SQLReplayStore,
) -> None:
    old, kept, late = b"old" * 11, b"kept" * 8, b"late" * 8
    assert store.first_seen(old, NOW, HORIZON)  # the first call prunes: nothing yet
    assert store.first_seen(kept, NOW + 500, HORIZON)  # 500 s on: prunes before NOW - 160
    assert store.seen_at(old) == NOW
    assert store.first_seen(late, NOW + HORIZON + 1, HORIZON)  # prunes before NOW + 1
    assert store.seen_at(old) is None
    assert store.seen_at(kept) == NOW + 500 and store.seen_at(late) == NOW + HORIZON + 1
    # A key pruned counts as new: the guard's Date check refuses it long before then.
    assert store.first_seen(old, NOW + HORIZON + 2, HORIZON) is True


def test_pruning_runs_every_so_many_recordings_or_seconds_not_on_each(
    store: SQLReplayStore,
) -> None:
    kept, short = b"k" * 32, 5.0  # a short horizon: ``kept`` is past it 10 s on
    assert store.first_seen(kept, NOW, short)  # a prune is due at the first call
    at = NOW + 10  # less than PRUNE_SECONDS since that prune
    for n in range(PRUNE_EVERY - 1):  # neither enough calls nor enough seconds
        assert store.first_seen(n.to_bytes(4, "big"), at, short)
    assert store.seen_at(kept) == NOW and store.count() == PRUNE_EVERY
    assert store.first_seen(b"the last", at, short)  # PRUNE_EVERY since the last prune
    assert store.seen_at(kept) is None and store.count() == PRUNE_EVERY
    assert store.first_seen(kept, at, short)  # recorded again; then time alone prunes:
    assert store.first_seen(b"a second on", at + 1, short)
    assert store.seen_at(kept) == at  # one call and one second since the last prune
    later = at + PRUNE_SECONDS
    assert store.first_seen(b"a minute on", later, short)
    assert store.seen_at(kept) is None and store.count() == 1


def test_one_prune_removes_a_bounded_batch(store: SQLReplayStore) -> None:
    rows = [{"d": hashlib.sha256(n.to_bytes(4, "big")).digest(), "s": NOW - n}
            for n in range(PRUNE_BATCH + 10)]  # fmt: skip
    with store.engine.begin() as c:
        c.execute(sa.text("INSERT INTO ohttp_seen (digest, seen) VALUES (:d, :s)"), rows)
    assert store.prune(NOW + HORIZON + 1, HORIZON) == PRUNE_BATCH
    assert store.count() == 10
    assert store.seen_at((0).to_bytes(4, "big")) == NOW  # the oldest went first
    assert store.prune(NOW + HORIZON + 1, HORIZON) == 10
    assert store.count() == 0


def test_concurrent_recordings_of_one_key_let_exactly_one_through(database: str) -> None:
    # One store (one engine, its own connections) per thread, as separate worker
    # processes have; each connects first, so the recordings themselves race.
    stores = [SQLReplayStore(database) for _ in range(THREADS)]
    try:
        for n, each in enumerate(stores):
            assert each.first_seen(b"warm %d" % n, NOW, HORIZON)
        for round_ in range(10):
            key = hashlib.sha256(b"round %d" % round_).digest()
            barrier = threading.Barrier(THREADS)

            def record(
                each: SQLReplayStore, key: bytes = key, at: float = NOW + round_,
                barrier: threading.Barrier = barrier,
            ) -> bool:  # fmt: skip
                barrier.wait(timeout=60)
                return each.first_seen(key, at, HORIZON)

            with ThreadPoolExecutor(THREADS) as pool:
                results = list(pool.map(record, stores))
            assert results.count(True) == 1, results
        assert stores[0].count() == THREADS + 10
    finally:
        for each in stores:
            each.close()


# -- the guard ---------------------------------------------------------------------------
@pytest.fixture()
def guard(tmp_path: Path) -> Iterator[ReplayGuard]:
    opened = SQLReplayStore("sqlite:///" + str(tmp_path / "replays.sqlite"))
    yield ReplayGuard(opened)
    opened.close()


@pytest.mark.parametrize(
    ("date", "says"),
    [
        (None, "the sealed request has no Date header (RFC 9458 6.5.1)"),
        ("yesterday", "the sealed request's Date is not an HTTP date"),
        (formatdate(NOW - 301, usegmt=True), "the sealed request's Date is more than 300 s from now"),
        (formatdate(NOW + 301, usegmt=True), "the sealed request's Date is more than 300 s from now"),
    ],
)  # fmt: skip
def test_a_request_dated_outside_the_window_is_refused_and_not_recorded(
    guard: ReplayGuard, date: str | None, says: str
) -> None:
    with pytest.raises(NodeHTTPError) as refused:
        guard.check(KEY, date, now=NOW)
    assert (refused.value.status, refused.value.message) == (400, says)
    assert guard.store.first_seen(KEY, NOW, HORIZON) is True  # it was not recorded


def test_a_request_at_the_windows_edge_is_accepted_once(guard: ReplayGuard) -> None:
    guard.check(KEY, formatdate(NOW - 300, usegmt=True), now=NOW)
    with pytest.raises(NodeHTTPError) as refused:
        guard.check(KEY, formatdate(NOW - 300, usegmt=True), now=NOW)
    assert (refused.value.status, refused.value.message) == (400, REPLAY)
    guard.check(KEY[::-1], formatdate(NOW + 300, usegmt=True), now=NOW)


# -- nodes -------------------------------------------------------------------------------
def _sealed(url: str, token: str) -> ClientRequest:
    """A sealed ``GET /v1/identity``, dated now, to the gateway at ``url``."""
    (config,) = parse_key_configs(httpx.get(url + GATEWAY, timeout=30).content)
    headers = (("authorization", f"Bearer {token}"), ("date", formatdate(usegmt=True)))
    message = BinaryRequest("GET", "http", "node", "/v1/identity", headers, b"")
    return encapsulate_request(config, encode_request(message))


def _post(url: str, sealed: ClientRequest) -> httpx.Response:
    # A new connection each time: a worker process is picked per connection.
    kind = {"content-type": "message/ohttp-req"}
    return httpx.post(url + GATEWAY, content=sealed.encapsulated, headers=kind, timeout=60)


def _served(url: str, sealed: ClientRequest) -> dict[str, Any]:
    answer = _post(url, sealed)
    assert answer.status_code == 200, answer.text
    inner = decode_response(sealed.open_response(answer.content))
    assert inner.status == 200, inner.content
    body: dict[str, Any] = json.loads(inner.content)
    return body


def _refused_as_replay(url: str, sealed: ClientRequest) -> None:
    answer = _post(url, sealed)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"] == REPLAY


def _enc(sealed: ClientRequest) -> bytes:
    # RFC 9458 section 4.3: key id (1 byte), KEM, KDF and AEAD ids (2 each), then enc
    # (32 bytes for X25519).
    return sealed.encapsulated[7:39]


def _sql_token(database: str) -> str:
    tokens = SQLTokenStore(database)
    try:
        return tokens.create("tests")
    finally:
        tokens.close()


def _home_on(home: Path, database: str | None) -> Path:
    home.mkdir(parents=True)
    if database is not None:
        (home / CONFIG_FILE).write_text(f'[storage]\ndatabase = "{database}"\n')
    return home


@pytest.fixture()
def nodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], Running]]:
    """Start apps (uvicorn in a thread, each its own LocalNode and Service); all are
    stopped afterwards."""
    monkeypatch.delenv("INFERPROOF_DATABASE", raising=False)
    started: list[Running] = []

    def make(home: Path) -> Running:
        # One workflow scheduler per database per process; these apps share one.
        started.append(start(home, NodeConfig(workflows=False)))
        return started[-1]

    yield make
    for running in started:
        running.stop()


@pytest.mark.parametrize("where", ["home", "postgresql"])
def test_a_replay_to_another_app_on_the_same_store_is_refused(
    request: pytest.FixtureRequest, nodes: Callable[[Path], Running], tmp_path: Path, where: str
) -> None:
    database = fresh_database(request.getfixturevalue("postgres")) if where != "home" else None
    home = _home_on(tmp_path / "home", database)
    first, second = nodes(home), nodes(home)  # two workers: one home, so one OHTTP key
    token = first.token if database is None else _sql_token(database)
    sealed = _sealed(first.url, token)
    assert _served(first.url, sealed)["node_id"] == first.node.node_id
    _refused_as_replay(second.url, sealed)
    _refused_as_replay(first.url, sealed)
    _served(second.url, _sealed(second.url, token))  # a new request passes
    assert (home / "node" / "ohttp-replays.sqlite").is_file() == (database is None)
    shared = SQLReplayStore(database or "sqlite:///" + str(home / "node" / "ohttp-replays.sqlite"))
    try:
        assert shared.count() == 2 and shared.first_seen(_enc(sealed), NOW, HORIZON) is False
    finally:
        shared.close()


def test_a_replay_after_a_restart_is_refused(
    nodes: Callable[[Path], Running], tmp_path: Path
) -> None:
    home = _home_on(tmp_path / "home", None)
    before = nodes(home)
    sealed = _sealed(before.url, before.token)
    _served(before.url, sealed)
    before.stop()
    after = nodes(home)
    _refused_as_replay(after.url, sealed)
    _served(after.url, _sealed(after.url, after.token))


def test_replays_to_either_of_two_worker_processes_are_refused(
    serve: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INFERPROOF_DATABASE", raising=False)
    home = tmp_path / "home"
    token = TokenStore(home).create("tests")
    node = serve(home, token, "--workers", "2")
    wait_workers(node, 2)
    sealed = _sealed(node.url, token)
    _served(node.url, sealed)
    # Each on a new connection, so the kernel hands them to either worker (the odds
    # that 16 all reach the first one are 2^-16 if it picks evenly).
    for _ in range(16):
        _refused_as_replay(node.url, sealed)


# -- an outage ---------------------------------------------------------------------------
@pytest.fixture()
def own_postgres() -> Iterator[Postgres]:
    """A server of this test's own, which it stops and starts again."""
    with Postgres() as pg:
        yield pg


def test_an_outage_of_the_store_is_a_503_and_records_nothing(
    own_postgres: Postgres, nodes: Callable[[Path], Running], tmp_path: Path
) -> None:
    url = own_postgres.url
    token = _sql_token(url)
    store = SQLReplayStore(url)
    running = nodes(_home_on(tmp_path / "home", url))
    try:
        _served(running.url, _sealed(running.url, token))  # the node's store is open
        sealed = _sealed(running.url, token)
        own_postgres.stop()
        with pytest.raises(StoreUnavailable, match=r"^replay store: database unavailable \("):
            store.first_seen(KEY, NOW, HORIZON)
        answer = _post(running.url, sealed)
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "1"
        error = answer.json()["error"]
        assert error["code"] == "unavailable"
        assert error["message"].startswith("replay store: database unavailable (")
        own_postgres.start()
        assert store.first_seen(KEY, NOW, HORIZON) is True  # nothing was recorded
        _served(running.url, sealed)  # the request refused for the outage, now served once
        _refused_as_replay(running.url, sealed)
    finally:
        store.close()
