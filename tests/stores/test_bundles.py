"""Issued bundles in SQL, on SQLite and on a real PostgreSQL: the embedded store's
answers (the same queries run on both), several store objects (processes) on one
database, concurrent writers, and every rejection with its type and message.

The bundles are real: issued by a LocalNode for a small MLP, so the model and nonce a
search reads come from signed receipts."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import sqlalchemy as sa

import inferproof.node._bundles as embedded
from inferproof._canonical import canonical_json, sha256_digest
from inferproof.engine import LocalNode
from inferproof.errors import Error, InputError, StoreUnavailable
from inferproof.node._bundleroutes import MAX_PAGE as NODE_MAX_PAGE
from inferproof.stores import BundleQuery, BundleSummary, SQLBundleStore, is_id, new_id
from inferproof.stores._bundles import MAX_PAGE
from inferproof.testing import mlp_model

A, B = "a" * 64, "b" * 64  # two token hashes
Row = tuple[str, int | None, bytes]


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> list[Row]:
    """Four bundles: mlp:1 with nonces n0, n1, n3 and mlp:2 with n2."""
    model = mlp_model((8, 4, 2))
    with LocalNode(tmp_path_factory.mktemp("node") / "home") as node:
        node.push(model, name="mlp", version="1")
        node.push(model, name="mlp", version="2")
        x = {"x": np.zeros((1, 8), np.float32)}
        bundles = [node.infer(ref, x, nonce=f"n{i}").bundle
                   for i, ref in enumerate(["mlp:1", "mlp:1", "mlp:2", "mlp:1"])]  # fmt: skip
    return [
        (sha256_digest(canonical_json(b.envelope)), i,
         json.dumps(b.to_json(), separators=(",", ":")).encode())
        for i, b in enumerate(bundles)
    ]  # fmt: skip


def _fill(store: Any, issued: list[Row]) -> list[str]:
    """The four bundles, owned A, A, A, B, under fixed ids (so both stores hold the same)."""
    ids = [f"{i:024x}" for i in range(1, 5)]
    assert store.add_many(issued[:3], ids[:3], owners=[A, A, A]) == ids[:3]
    assert store.add(*issued[3], bundle_id=ids[3], owner=B) == ids[3]
    return ids


def _queries(model_digest: str) -> list[Any]:
    now = time.time()
    return [dict(), dict(model="mlp"), dict(model="mlp:1"), dict(model="mlp:2"),
            dict(model="mlp:3"), dict(model="other"), dict(model=model_digest),
            dict(model="sha256:" + "0" * 64), dict(nonce="n1"), dict(nonce="n3"),
            dict(since=now - 3600), dict(since=now + 60), dict(until=now - 3600),
            dict(until=now + 60, since=now - 60), dict(model="mlp", nonce="n2")]  # fmt: skip


def _page(summaries: list[Any]) -> list[tuple[Any, ...]]:
    return [(s.id, s.receipt_digest, s.log_index, s.model_digest, s.model_name,
             s.model_version, s.nonce) for s in summaries]  # fmt: skip


def test_the_values_are_the_embedded_stores() -> None:
    # Defined twice (stores/ may not import node/): held equal here.
    assert MAX_PAGE == NODE_MAX_PAGE
    for mine, theirs in ((BundleQuery, embedded.BundleQuery),
                         (BundleSummary, embedded.BundleSummary)):  # fmt: skip
        assert [(f.name, f.type, f.default) for f in mine.__dataclass_fields__.values()] == [
            (f.name, f.type, f.default) for f in theirs.__dataclass_fields__.values()
        ]
    for text in (new_id(), embedded.new_id(), "0" * 24, "A" * 24, "0" * 23, "g" * 24, ""):
        assert is_id(text) == embedded.is_id(text)


def test_the_same_answers_as_the_embedded_store(
    database: str, issued: list[Row], tmp_path: Path
) -> None:
    sql, old = SQLBundleStore(database), embedded.IssuedBundles(tmp_path / "b.sqlite")
    try:
        ids = _fill(sql, issued)
        assert _fill(old, issued) == ids
        digest = sql.find(BundleQuery(owner=A))[0][0].model_digest
        assert digest is not None and digest.startswith("sha256:")
        for q in _queries(digest):
            for owner in (A, B, "c" * 64):
                query = BundleQuery(owner=owner, **q)
                assert _page(sql.find(query)[0]) == _page(old.find(query)[0]), query
        for store in (sql, old):
            assert store.count() == 4
            page, cursor = store.find(BundleQuery(owner=A))
            assert [s.id for s in page] == ids[2::-1] and cursor is None  # newest first
            assert [(s.model_version, s.nonce) for s in page] == [("2", "n2"), ("1", "n1"),
                                                                  ("1", "n0")]  # fmt: skip
            assert [s.id for s in store.find(BundleQuery(owner=A, model="mlp:1"))[0]] == [
                ids[1], ids[0]]  # fmt: skip
            assert [s.id for s in store.find(BundleQuery(owner=B))[0]] == [ids[3]]
            assert store.by_id(ids[3]) == issued[3][2]
            assert store.by_digest(issued[0][0], A) == issued[0][2]
            assert store.by_digest(issued[0][0], B) is None  # another owner's receipt
            assert page[0].to_json()["model"] == {"digest": digest, "name": "mlp",
                                                  "version": "2"}  # fmt: skip
    finally:
        sql.close()
        old.close()


def test_pages_with_a_cursor(database: str, issued: list[Row], tmp_path: Path) -> None:
    sql, old = SQLBundleStore(database), embedded.IssuedBundles(tmp_path / "b.sqlite")
    try:
        for store in (sql, old):
            ids = _fill(store, issued)
            first, cursor = store.find(BundleQuery(owner=A, limit=2))
            assert [s.id for s in first] == [ids[2], ids[1]] and cursor is not None
            second, end = store.find(BundleQuery(owner=A, limit=2, before=cursor))
            assert [s.id for s in second] == [ids[0]] and end is None
            exact, none = store.find(BundleQuery(owner=A, limit=3))
            assert len(exact) == 3 and none is None
            one, after = store.find(BundleQuery(owner=A, limit=1, model="mlp:1"))
            assert [s.id for s in one] == [ids[1]]
            assert [s.id for s in store.find(BundleQuery(owner=A, model="mlp:1",
                                                         before=after))[0]] == [ids[0]]  # fmt: skip
    finally:
        sql.close()
        old.close()


def test_lookups_that_find_nothing(database: str, issued: list[Row]) -> None:
    store = SQLBundleStore(database)
    try:
        bundle_id = store.add(*issued[0], owner=A)
        assert store.by_id(bundle_id) == issued[0][2]
        for bad in (bundle_id.upper(), bundle_id[:-1], bundle_id + "0", "x" * 24, "",
                    "%" * 24, new_id()):  # fmt: skip
            assert store.by_id(bad) is None, bad
        assert store.by_digest(issued[0][0], B) is None
        assert store.by_digest(issued[1][0], A) is None  # not stored
        for bad in ("sha256:" + "%" * 64, issued[0][0].upper(), "nonsense", ""):
            assert store.by_digest(bad, A) is None
        # No owner recorded: read by id, listed and found by digest for nobody.
        orphan = store.add(*issued[1])
        assert store.by_id(orphan) == issued[1][2]
        assert [s.id for s in store.find(BundleQuery(owner=A))[0]] == [bundle_id]
    finally:
        store.close()


def test_rejections(database: str, issued: list[Row]) -> None:
    store = SQLBundleStore(database)
    try:
        store.add(*issued[0], owner=A)
        digest = issued[0][0]
        with pytest.raises(
            InputError, match=rf"^the bundle of receipt {digest} is already stored$"
        ):
            store.add(*issued[0], owner=A)
        with pytest.raises(InputError, match=r"^the bundle of receipt sha256:\w+ is already"):
            store.add_many([issued[1], issued[0]], owners=[A, A])  # all or none
        assert store.count() == 1 and store.by_digest(issued[1][0], A) is None
        with pytest.raises(
            InputError, match=r"^a batch of bundles holds one receipt digest twice$"
        ):
            store.add_many([issued[1], issued[1]])
        taken = store.find(BundleQuery(owner=A))[0][0].id
        with pytest.raises(InputError, match=r"^a bundle id in this batch is already taken"):
            store.add(*issued[1], bundle_id=taken)
        with pytest.raises(InputError, match=r"^bundle id 'ABC' is not 24 hex digits$"):
            store.add(*issued[1], bundle_id="ABC")
        with pytest.raises(InputError, match=r"^receipt digest 'sha256:x' is not sha256:<64 hex>$"):
            store.add("sha256:x", None, issued[1][2])
        with pytest.raises(
            InputError, match=r"^2 bundles need as many ids and owners, not 1 and 2$"
        ):
            store.add_many(issued[1:3], [new_id()])
        with pytest.raises(InputError, match="bundle"):  # not a bundle: the parser's message
            store.add(issued[1][0], None, b"{}")
        for limit in (0, -1, MAX_PAGE + 1):
            with pytest.raises(InputError, match=rf"^a page is 1 to {MAX_PAGE} bundles, not"):
                store.find(BundleQuery(owner=A, limit=limit))
        for cursor in (0, -5, 2**63):
            with pytest.raises(InputError, match=rf"^cursor {cursor} is out of range$"):
                store.find(BundleQuery(owner=A, before=cursor))
        assert store.count() == 1 and store.add_many([]) == []
    finally:
        store.close()


def test_two_processes_share_bundles(database: str, issued: list[Row]) -> None:
    a, b = SQLBundleStore(database), SQLBundleStore(database)
    try:
        first = a.add(*issued[0], owner=A)
        second = b.add(*issued[1], owner=A)
        assert b.by_id(first) == issued[0][2] and a.by_id(second) == issued[1][2]
        assert [s.id for s in a.find(BundleQuery(owner=A))[0]] == [second, first]
        with pytest.raises(InputError, match="already stored"):
            a.add(*issued[1], owner=B)  # b stored it
        assert a.count() == b.count() == 2
    finally:
        a.close()
        b.close()


def test_concurrent_writers(database: str, issued: list[Row]) -> None:
    stores = [SQLBundleStore(database) for _ in range(4)]
    start, lock = threading.Barrier(4), threading.Lock()
    made: list[str] = []
    refused: list[str] = []

    def work(n: int) -> None:
        store = stores[n]
        start.wait()
        # Ten batches of two each (receipt digests only need to be unique here), and
        # everyone races for one receipt: exactly one wins it.
        for k in range(10):
            rows = [(f"sha256:{n:032x}{k * 2 + j:032x}", k, issued[0][2]) for j in range(2)]
            ids = store.add_many(rows, owners=[A, A])
            with lock:
                made.extend(ids)
        try:
            won = store.add(*issued[1], owner=B)
            with lock:
                made.append(won)
        except InputError as exc:
            with lock:
                refused.append(str(exc))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert refused == [f"the bundle of receipt {issued[1][0]} is already stored"] * 3
    assert len(made) == len(set(made)) == 81 and stores[0].count() == 81
    # Paging walks every one of A's 80 exactly once, newest first.
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = stores[1].find(BundleQuery(owner=A, limit=7, before=cursor))
        seen.extend(s.id for s in page)
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 80 and set(seen) <= set(made)
    for store in stores:
        store.close()


def test_an_unreachable_database_is_unavailable() -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreUnavailable, match=r"^bundle store: database unavailable \("):
        SQLBundleStore(f"postgresql://postgres@127.0.0.1:{port}/none")


def test_a_read_only_database_is_unavailable(postgres: Any, issued: list[Row]) -> None:
    name = "bun_" + uuid.uuid4().hex[:16]
    admin = postgres.url.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    store = SQLBundleStore(postgres.url.rsplit("/", 1)[0] + "/" + name)
    try:
        kept = store.add(*issued[0], owner=A)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
        store.engine.dispose()  # new connections pick the setting up
        with pytest.raises(StoreUnavailable, match=r"^bundle store: database unavailable \("):
            store.add(*issued[1], owner=A)
        assert store.by_id(kept) == issued[0][2] and store.count() == 1  # reads still answer
    finally:
        store.close()


def test_a_foreign_table_is_a_plain_error(database: str, issued: list[Row]) -> None:
    engine = sa.create_engine(database)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE node_bundles (id TEXT)")
    engine.dispose()
    store = SQLBundleStore(database)
    try:
        with pytest.raises(Error, match=r"^bundle store: database error \(") as caught:
            store.add(*issued[0], owner=A)
        assert not isinstance(caught.value, StoreUnavailable)
        assert A not in str(caught.value)  # no parameters in the message
    finally:
        store.close()
