"""The model registry in SQL, on SQLite and on a real PostgreSQL: the embedded
registry's rules, the same answers, and concurrent pushes from separate engines."""

from __future__ import annotations

import threading
import time

import pytest

from inferproof.errors import InputError
from inferproof.hub import LATEST, ModelRecord, SQLiteRegistry
from inferproof.runtime import TensorSpec
from inferproof.stores import SQLRegistry

SPEC = (TensorSpec("x", "float32", (None, 4)),)


def _rec(digest: str, version: str = "1", *, name: str = "risk", sig: str | None = None,
         created: float | None = None) -> ModelRecord:  # fmt: skip
    return ModelRecord(digest="sha256:" + digest * 64, name=name, version=version, size=10,
                       format="onnx", created_at=created or time.time(), inputs=SPEC,
                       outputs=SPEC, signature_digest=sig, publisher=None)  # fmt: skip


def test_the_rules_hold(database: str) -> None:
    reg = SQLRegistry(database)
    try:
        first = reg.add(_rec("a"))
        assert reg.add(_rec("a")) == first  # the same bytes again: a no-op
        with pytest.raises(InputError, match="immutable"):
            reg.add(_rec("b"))
        signed = reg.add(_rec("a", sig="sha256:" + "5" * 64))  # a signature is added once
        assert signed.signature_digest == "sha256:" + "5" * 64
        with pytest.raises(InputError, match="signature is immutable"):
            reg.add(_rec("a", sig="sha256:" + "6" * 64))
        reg.add(_rec("a", LATEST, created=1.0))
        moved = reg.add(_rec("c", LATEST, created=2.0))  # latest moves to the newest push
        assert moved.digest == "sha256:" + "c" * 64
        assert reg.by_digest("sha256:" + "a" * 64).signature_digest is not None  # signed first
        assert reg.by_name("risk", "1").digest == "sha256:" + "a" * 64
        assert reg.by_name("nope") is None and reg.by_digest("sha256:" + "0" * 64) is None
        with pytest.raises(InputError, match="invalid"):
            reg.add(_rec("a", "../x"))
    finally:
        reg.close()


def test_the_same_answers_as_the_embedded_registry(database: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sql, embedded = SQLRegistry(database), SQLiteRegistry(tmp_path / "registry.sqlite")
    try:
        for reg in (sql, embedded):
            for i, (d, v) in enumerate([("a", "1"), ("b", "2"), ("b", LATEST), ("c", "1.1")]):
                reg.add(_rec(d, v, created=100.0 + i))
        assert sql.list() == embedded.list()
        for name, version in (("risk", None), ("risk", "2"), ("risk", LATEST)):
            assert sql.by_name(name, version) == embedded.by_name(name, version)
    finally:
        sql.close()
        embedded.close()


def test_concurrent_first_pushes_of_one_version(database: str) -> None:
    """Eight engines push one new version at once: one wins; the same bytes from the
    others are no-ops, other bytes are refused as immutable, and one row remains."""
    regs = [SQLRegistry(database) for _ in range(8)]
    barrier = threading.Barrier(len(regs))
    outcomes: list[str] = [""] * len(regs)

    def push(i: int) -> None:
        barrier.wait()
        try:
            regs[i].add(_rec("a" if i % 2 == 0 else "b", "7"))
            outcomes[i] = "a" if i % 2 == 0 else "b"
        except InputError as exc:
            outcomes[i] = "refused" if "immutable" in str(exc) else str(exc)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(len(regs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stored = regs[0].by_name("risk", "7")
    assert stored is not None
    winner = stored.digest[-1]
    assert set(outcomes) == {winner, "refused"}, outcomes
    assert outcomes.count(winner) == 4 and len([r for r in regs[0].list() if r.version == "7"]) == 1
    for reg in regs:
        reg.close()


def test_lookups_are_cached_for_a_while_per_process(database: str) -> None:
    """A push through one object is seen by it at once; through another (another node
    process) once the first's cache expires; a cache of 0 s always asks the database."""
    here = SQLRegistry(database, cache_seconds=3600)
    there = SQLRegistry(database, cache_seconds=0)
    try:
        here.add(_rec("a", LATEST, created=1.0))
        assert here.by_name("risk").digest == "sha256:" + "a" * 64
        there.add(_rec("b", LATEST, created=2.0))  # another process moves latest
        assert there.by_name("risk").digest == "sha256:" + "b" * 64
        assert here.by_name("risk").digest == "sha256:" + "a" * 64  # cached, stale
        assert here.by_name("risk", "2") is None
        here.add(_rec("c", "2", created=3.0))  # this object's own push empties its cache
        assert here.by_name("risk").digest == "sha256:" + "c" * 64
        assert here.by_name("risk", "2").digest == "sha256:" + "c" * 64
        assert there.by_digest("sha256:" + "c" * 64).version == "2"
    finally:
        here.close()
        there.close()


def test_the_embedded_registry_caches_the_same_way(tmp_path) -> None:  # type: ignore[no-untyped-def]
    here = SQLiteRegistry(tmp_path / "r.sqlite", cache_seconds=3600)
    there = SQLiteRegistry(tmp_path / "r.sqlite", cache_seconds=0)  # a CLI beside a node
    here.add(_rec("a", LATEST, created=1.0))
    assert here.by_name("risk").digest == "sha256:" + "a" * 64
    there.add(_rec("b", LATEST, created=2.0))
    assert there.by_name("risk", LATEST).digest == "sha256:" + "b" * 64
    assert here.by_name("risk").digest == "sha256:" + "a" * 64  # cached, stale
    here.add(_rec("c", "2", created=3.0))
    assert here.by_name("risk").digest == "sha256:" + "c" * 64
    with pytest.raises(InputError, match="immutable"):  # a refused push empties it too
        here.add(_rec("d", "2"))
    assert here.by_name("risk", "2").digest == "sha256:" + "c" * 64
    here.close()
    there.close()
