"""The node's tokens in SQL, on SQLite and on a real PostgreSQL: the file store's
rules and answers, several store objects (processes) on one database, revocation
seen by all, concurrent writers, and every rejection with its type and message."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

import inferproof.node._auth as file_tokens
from inferproof.errors import Error, InputError, StoreUnavailable
from inferproof.node import TokenInfo, TokenStore
from inferproof.stores import TOKEN_BYTES, TOKEN_PREFIX, SQLTokenStore, hash_token
from inferproof.stores import TokenInfo as SQLTokenInfo


def _both(database: str, tmp_path: Path) -> list[Any]:
    """The SQL store and the file store: every behaviour test runs on the two."""
    return [SQLTokenStore(database, cache_seconds=0), TokenStore(tmp_path / "home")]


def _plant(store: Any, digest: str, label: str) -> None:
    """Store a hash directly (only the hash is stored, so a chosen hash needs no token)."""
    if isinstance(store, SQLTokenStore):
        with store.engine.begin() as c:
            c.exec_driver_sql(
                "INSERT INTO node_tokens (hash, created, label) VALUES "
                f"('{digest}', 1.0, '{label}')"
            )
    else:
        store.path.parent.mkdir(parents=True, exist_ok=True)
        with store.path.open("a") as f:
            f.write(f"{digest} 1 {label}\n")


def test_the_values_are_the_file_stores(database: str) -> None:
    # Defined twice (stores/ may not import node/): held equal here.
    assert (TOKEN_PREFIX, TOKEN_BYTES) == (file_tokens.TOKEN_PREFIX, file_tokens.TOKEN_BYTES)
    assert hash_token("ipt_x") == file_tokens.hash_token("ipt_x")
    assert SQLTokenInfo.__dataclass_fields__.keys() == TokenInfo.__dataclass_fields__.keys()


def test_create_check_list_revoke(database: str, tmp_path: Path) -> None:
    for store in _both(database, tmp_path):
        first = store.create("  ci \n runner\t")
        second = store.create()
        long = store.create("x" * 100)
        assert first.startswith("ipt_") and len(first) == 4 + 43  # 32 bytes in base64url
        assert store.check(first) == hash_token(first)
        listed = store.list()
        assert [t.label for t in listed] == ["ci runner", "-", "x" * 64]  # oldest first
        assert [t.hash for t in listed] == [hash_token(t) for t in (first, second, long)]
        assert all(first not in repr(t) for t in listed)  # only the hash is kept
        gone = store.revoke(listed[0].hash[:10].upper())  # any case, >= 8 digits
        assert gone.hash == hash_token(first) and gone.label == "ci runner"
        assert store.check(first) is None and store.check(second) == hash_token(second)
        assert [t.hash for t in store.list()] == [hash_token(second), hash_token(long)]


def test_what_check_refuses(database: str, tmp_path: Path) -> None:
    for store in _both(database, tmp_path):
        token = store.create("t")
        flipped = token[:-1] + ("A" if token[-1] != "A" else "B")  # one character off
        for bad in (None, "", "abc", token[4:], "Bearer " + token, flipped, token + "x",
                    "ipt_" + "a" * 200, token.upper()):  # fmt: skip
            assert store.check(bad) is None, bad
        assert store.check(token) == hash_token(token)


def test_revoke_rejections(database: str, tmp_path: Path) -> None:
    for store in _both(database, tmp_path):
        keep = store.create("keep")
        with pytest.raises(InputError, match=r"^give at least 8 hex digits of the token's hash$"):
            store.revoke("abc1234")
        # Not hex, or LIKE's wildcards: they match nothing (a wildcard reaching LIKE
        # would match every hash).
        for prefix in ("zzzzzzzz", "________", "%%%%%%%%", "abcd%123", "0" * 65):
            with pytest.raises(InputError, match=r"^0 tokens match '.*'; need exactly one$"):
                store.revoke(prefix)
        _plant(store, "abcdef01" + "0" * 56, "one")
        _plant(store, "abcdef01" + "1" * 56, "two")
        with pytest.raises(InputError, match=r"^2 tokens match 'abcdef01'; need exactly one$"):
            store.revoke("abcdef01")
        assert [t.label for t in store.list()] == ["keep", "one", "two"]  # none removed
        assert store.revoke("abcdef010").label == "one"
        assert store.check(keep) == hash_token(keep)


def test_two_processes_share_tokens(database: str) -> None:
    a, b = SQLTokenStore(database, cache_seconds=0), SQLTokenStore(database, cache_seconds=0)
    cached = SQLTokenStore(database, cache_seconds=3600)
    try:
        token = a.create("made by a")
        assert b.check(token) == hash_token(token)  # a new token is accepted at once
        assert cached.check(token) == hash_token(token)
        assert [t.label for t in b.list()] == ["made by a"]
        b.revoke(hash_token(token)[:8])
        assert a.check(token) is None  # cache_seconds=0: refused at once
        # The long cache still admits it: revocation reaches it within cache_seconds.
        assert cached.check(token) == hash_token(token)
        with pytest.raises(InputError, match=r"^0 tokens match"):
            a.revoke(hash_token(token)[:8])  # already gone, for every process
        # A revocation by the cached store itself takes effect in it at once.
        other = a.create("other")
        assert cached.check(other) is not None
        cached.revoke(hash_token(other)[:12])
        assert cached.check(other) is None and b.check(other) is None
        # Refusals are cached as well: a hash stored after its refusal stays refused
        # by the long cache, and is admitted by a store without one.
        late = "ipt_" + "L" * 43
        assert cached.check(late) is None
        _plant(a, hash_token(late), "late")
        assert cached.check(late) is None and b.check(late) == hash_token(late)
    finally:
        for store in (a, b, cached):
            store.close()


def test_concurrent_creates_and_revokes(database: str) -> None:
    stores = [SQLTokenStore(database, cache_seconds=0) for _ in range(4)]
    made: list[str] = []
    lock, start = threading.Lock(), threading.Barrier(4)

    def create(store: SQLTokenStore) -> None:
        start.wait()
        tokens = [store.create(f"t{i}") for i in range(10)]
        with lock:
            made.extend(tokens)

    _run(create, stores)
    assert len(made) == 40 and len({t.hash for t in stores[0].list()}) == 40
    assert all(stores[3].check(t) == hash_token(t) for t in made)
    # Four processes revoke one token at once: exactly one removes it.
    target = hash_token(made[0])[:16]
    outcomes: list[str] = []

    def revoke(store: SQLTokenStore) -> None:
        start.wait()
        try:
            outcome = store.revoke(target).hash
        except InputError as exc:
            outcome = str(exc)
        with lock:
            outcomes.append(outcome)

    _run(revoke, stores)
    assert sorted(outcomes) == sorted(
        [hash_token(made[0])] + [f"0 tokens match {target!r}; need exactly one"] * 3
    )
    assert len(stores[1].list()) == 39
    for store in stores:
        store.close()


def _run(work: Any, stores: list[SQLTokenStore]) -> None:
    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_bad_cache_seconds(database: str, value: float) -> None:
    with pytest.raises(InputError, match=r"^cache_seconds must be a number >= 0, not"):
        SQLTokenStore(database, cache_seconds=value)


def test_an_unreachable_database_is_unavailable() -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreUnavailable, match=r"^token store: database unavailable \("):
        SQLTokenStore(f"postgresql://postgres@127.0.0.1:{port}/none")


def test_a_read_only_database_is_unavailable(postgres: Any) -> None:
    url = _fresh(postgres)
    store = SQLTokenStore(url, cache_seconds=0)
    token = store.create("before")
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(postgres.url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    store.engine.dispose()  # new connections pick the setting up
    try:
        with pytest.raises(StoreUnavailable, match="ReadOnlySqlTransaction"):
            store.create("after")
        with pytest.raises(StoreUnavailable, match=r"^token store: database unavailable"):
            store.revoke(hash_token(token)[:8])
        assert store.check(token) == hash_token(token)  # reads still answer
    finally:
        store.close()


def test_a_foreign_table_is_a_plain_error(database: str) -> None:
    engine = sa.create_engine(database)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE node_tokens (hash TEXT)")
    engine.dispose()
    store = SQLTokenStore(database, cache_seconds=0)
    try:
        with pytest.raises(Error, match=r"^token store: database error \(") as caught:
            store.create("x")
        assert not isinstance(caught.value, StoreUnavailable)
        assert "INSERT" not in str(caught.value)  # no SQL in the message
    finally:
        store.close()


def _fresh(postgres: Any) -> str:
    name = "tok_" + uuid.uuid4().hex[:16]
    with psycopg.connect(postgres.url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return str(postgres.url.rsplit("/", 1)[0] + "/" + name)
