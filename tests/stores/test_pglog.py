"""The transparency log on PostgreSQL: the same log as on SQLite, racing sequencers in
separate processes, tampering caught by the audit, forks refused by the schema."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from inferproof.errors import Error, InputError, StoreUnavailable, VerificationError
from inferproof.log import (
    ALG_COSIGNATURE_V1,
    Log,
    LogStore,
    MemoryTree,
    Note,
    SignerKey,
    SQLiteLogStore,
    hash_leaf,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_tlog_proof,
)
from inferproof.stores import PostgresLogStore
from inferproof.stores._pglog import SEQUENCER_LOCK

ORIGIN = "pg.example/log"


def entry(i: int) -> bytes:
    return f"entry-{i}".encode()


def _libpq(url: str) -> str:
    return url.replace("+psycopg", "")


@pytest.fixture()
def pg_url(postgres: Any) -> str:
    """A fresh database on the session's server (a ``postgresql+psycopg://`` URL)."""
    name = "tlog_" + uuid.uuid4().hex[:16]
    with psycopg.connect(_libpq(postgres.url), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return str(postgres.url).rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def signer() -> SignerKey:
    return SignerKey.generate(ORIGIN)


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], LogStore]]:
    """A factory of stores on one database: an SQLite file, or a fresh PostgreSQL one."""
    if request.param == "sqlite":
        yield lambda: SQLiteLogStore(tmp_path / "log.sqlite")
    else:
        url = request.getfixturevalue("pg_url")
        yield lambda: PostgresLogStore(url)


def sql(url: str, statement: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        cur = conn.execute(statement, params or None)
        return cur.fetchall() if cur.description else []


# ---- the same log on both stores ----------------------------------------------------


def test_every_size_proves_and_audits(
    make_store: Callable[[], LogStore], signer: SignerKey
) -> None:
    data = [entry(i) for i in range(70)]
    ref = MemoryTree(data)
    with Log(make_store(), signer, max_delay=0.001) as log:
        for i, d in enumerate(data):  # one checkpoint per size 1..70
            result = log.append(d)
            assert result.index == i
            verify_tlog_proof(result.tlog_proof().encode(), d, signer.verifier())
        assert log.store.checkpoint_sizes() == list(range(71))
        roots = {n: log.root(n) for n in range(71)}
        for n in range(1, 71):
            assert roots[n] == ref.root(n) == log.checkpoint(n).root_hash
            for i in range(n):
                verify_inclusion(hash_leaf(data[i]), i, n, log.inclusion_proof(i, n), roots[n])
            for m in range(1, n):
                proof = log.consistency_proof(m, n)
                verify_consistency(m, n, roots[m], roots[n], proof)
        batch = log.append_many([entry(i) for i in range(70, 600)])  # crosses tiles 0..2
        assert (batch.first, batch.size) == (70, 600)
        pending = [log.submit(entry(i)) for i in range(600, 900)]
        assert [p.result(timeout=60).index for p in pending] == list(range(600, 900))
        audit = log.verify()
        assert (
            audit.size == 900
            and audit.root_hash == MemoryTree([entry(i) for i in range(900)]).root()
        )
        assert log.store.read_entries(255, 258) == [entry(255), entry(256), entry(257)]


def test_postgres_equals_sqlite(pg_url: str, tmp_path: Path, signer: SignerKey) -> None:
    """Same entries, same batches, same key: the same roots, notes and tiles files."""
    logs = [Log(SQLiteLogStore(tmp_path / "log.sqlite"), signer),
            Log(PostgresLogStore(pg_url), signer)]  # fmt: skip
    for log in logs:
        for i in range(70):
            log.append_many([entry(i)])
        log.append_many([entry(i) for i in range(70, 1000)])
    lite, pg = logs
    assert pg.store.checkpoint_sizes() == lite.store.checkpoint_sizes()
    for n in [*range(71), 1000]:
        assert pg.root(n) == lite.root(n)
        assert pg.store.checkpoint(n) == lite.store.checkpoint(n)
    for level, index in ((0, 0), (0, 3), (1, 0)):
        assert pg.store.read_tile(level, index) == lite.store.read_tile(level, index)
    assert lite.export_tiles(tmp_path / "lite") == pg.export_tiles(tmp_path / "pg")
    files = sorted(
        p.relative_to(tmp_path / "lite") for p in (tmp_path / "lite").rglob("*") if p.is_file()
    )
    assert len(files) == 10  # 4 level-0 tiles, their bundles, 1 level-1 tile, checkpoint
    for f in files:
        assert (tmp_path / "pg" / f).read_bytes() == (tmp_path / "lite" / f).read_bytes()
    for log in logs:
        log.close()


def test_cosignatures_are_attached(pg_url: str, signer: SignerKey) -> None:
    witness = SignerKey.generate("pg.example/witness", ALG_COSIGNATURE_V1)
    with Log(PostgresLogStore(pg_url), signer) as log:
        log.append_many([entry(i) for i in range(5)])
        note = Note.parse(log.checkpoint().encode())
        cosigned = note.with_signatures([witness.sign(note.text, int(time.time()))])
        log.attach_cosignatures(cosigned.encode())
        stored = log.store.checkpoint(5)
        assert stored is not None
        opened = open_checkpoint(stored, signer.verifier(), [witness.verifier()])
        assert [c.witness.name for c in opened.cosignatures] == [witness.name]
        with pytest.raises(InputError, match="no checkpoint of size 9"):
            log.store.replace_checkpoint(9, stored)


# ---- tampering in the database --------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("UPDATE tlog_entries SET data = set_byte(data, 0, get_byte(data, 0) # 1) "
         "WHERE idx = 299", "tile 0/1 does not match entries"),
        ("UPDATE tlog_tiles SET hashes = set_byte(hashes, 40, get_byte(hashes, 40) # 1) "
         "WHERE level = 0 AND idx = 0", "tile 0/0 does not match entries"),
        ("UPDATE tlog_tiles SET hashes = set_byte(hashes, 0, get_byte(hashes, 0) # 1) "
         "WHERE level = 1 AND idx = 0", "wrong root"),
    ],
    ids=["entry", "level-0 tile", "level-1 tile"],
)  # fmt: skip
def test_audit_catches_a_flipped_bit(
    pg_url: str, signer: SignerKey, statement: str, message: str
) -> None:
    with Log(PostgresLogStore(pg_url), signer) as log:
        log.append_many([entry(i) for i in range(300)])
        log.append_many([entry(i) for i in range(300, 70_000 // 100)])
        assert log.verify().size == 700
    sql(pg_url, statement)
    with Log(PostgresLogStore(pg_url), signer) as fresh, pytest.raises(VerificationError) as info:
        fresh.verify()
    assert info.value.check == "log.audit" and message in str(info.value)


def test_a_flipped_bit_in_a_checkpoint_fails_its_signature(pg_url: str, signer: SignerKey) -> None:
    with Log(PostgresLogStore(pg_url), signer) as log:
        log.append_many([entry(i) for i in range(5)])
        # The size line follows the origin line: "5" XOR 1 is "4", the text changes.
        at = len(ORIGIN) + 1
        sql(pg_url, "UPDATE tlog_checkpoints SET note = set_byte(note, %s, get_byte(note, %s) # 1) "
            "WHERE size = 5", at, at)  # fmt: skip
        with pytest.raises(VerificationError) as info:
            log.checkpoint(5)
        assert info.value.check == "log.checkpoint_signature"
        with pytest.raises(VerificationError):
            log.verify()


def test_missing_entries_are_an_input_error(pg_url: str, signer: SignerKey) -> None:
    with Log(PostgresLogStore(pg_url), signer) as log:
        log.append_many([entry(i) for i in range(10)])
        sql(pg_url, "DELETE FROM tlog_entries WHERE idx = 4")
        with pytest.raises(InputError, match=r"missing entries in \[0, 10\)"):
            log.store.read_entries(0, 10)
        with pytest.raises(InputError, match="missing entries"):
            log.entry(4)


# ---- ownership, URLs, schema ----------------------------------------------------------


def test_a_second_log_with_another_key_or_origin_is_refused(pg_url: str, signer: SignerKey) -> None:
    with Log(PostgresLogStore(pg_url), signer) as log:
        log.append(b"x")
    with pytest.raises(InputError, match=r"belongs to .pg\.example/log., not .other\.example/log."):
        Log(PostgresLogStore(pg_url), SignerKey.generate("other.example/log"))
    with pytest.raises(InputError, match="signed by a different key"):
        Log(PostgresLogStore(pg_url), SignerKey.generate(ORIGIN))
    assert sql(pg_url, "SELECT value FROM tlog_meta WHERE key = 'origin'") == [(ORIGIN,)]


def test_url_forms(pg_url: str, tmp_path: Path) -> None:
    rest = pg_url.split("://", 1)[1]
    for scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        store = PostgresLogStore(f"{scheme}://{rest}")
        assert store.size() == 0 and store.checkpoint() is None
        store.close()
    with pytest.raises(InputError, match="is not a postgresql:// database URL"):
        PostgresLogStore("sqlite:///" + str(tmp_path / "x.sqlite"))
    with pytest.raises(InputError, match="min_size <= max_size"):
        PostgresLogStore(pg_url, min_size=3, max_size=2)


def test_an_unreachable_server_is_unavailable_at_once() -> None:
    import socket

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(
            StoreUnavailable, match=rf"log database 127.0.0.1:{port}/db unreachable"
        ):
            PostgresLogStore(f"postgresql://u:secret@127.0.0.1:{port}/db")


def test_an_unknown_database_is_unavailable_without_the_password(postgres: Any) -> None:
    url = str(postgres.url).replace("postgres@", "postgres:hunter2@").rsplit("/", 1)[0]
    with pytest.raises(StoreUnavailable, match='database "no_such_db" does not exist') as info:
        PostgresLogStore(url + "/no_such_db")
    assert "hunter2" not in str(info.value)


def test_schema_is_created_once_by_racing_processes_threads(pg_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_one() -> None:
        start.wait()
        try:
            PostgresLogStore(pg_url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    tables = sql(pg_url, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'tlog_%%' "
                 "ORDER BY tablename")  # fmt: skip
    assert tables == [("tlog_checkpoints",), ("tlog_entries",), ("tlog_meta",), ("tlog_tiles",)]


# ---- one sequencer: the lock, and the keys that make a fork unstorable -----------------


def test_the_primary_keys_refuse_a_fork(pg_url: str, signer: SignerKey) -> None:
    with Log(PostgresLogStore(pg_url), signer) as log:
        log.append_many([entry(i) for i in range(3)])
        before = log.store.checkpoint(3)
        with pytest.raises(
            Error, match=r"refused a duplicate row \(tlog_checkpoints_pkey\)"
        ) as info:
            log.store.transaction(lambda w: w.put_checkpoint(3, b"another tree of size 3"))
        assert not isinstance(info.value, StoreUnavailable)
        with pytest.raises(Error, match=r"refused a duplicate row \(tlog_entries_pkey\)"):
            log.store.transaction(lambda w: w.put_entries(2, [b"a rival entry 2"]))
        assert log.store.checkpoint(3) == before and log.entry(2) == entry(2)
        assert log.verify().size == 3


def test_the_sequencer_lock_serialises_writers(pg_url: str, signer: SignerKey) -> None:
    """A second transaction waits for the first one's lock, so it reads the size the
    first wrote: without the lock both would read 1 and sign two trees of size 2."""
    with Log(PostgresLogStore(pg_url), signer) as log:
        log.append(b"first")
        inside, release = threading.Event(), threading.Event()
        seen: dict[str, int] = {}

        def holder(w: Any) -> None:
            seen["a"] = w.size()
            inside.set()
            assert release.wait(30)
            w.put_checkpoint(seen["a"] + 1, b"a")

        def waiter(w: Any) -> None:
            seen["b"] = w.size()
            w.put_checkpoint(seen["b"] + 1, b"b")

        a = threading.Thread(target=log.store.transaction, args=(holder,))
        a.start()
        assert inside.wait(30)
        b = threading.Thread(target=log.store.transaction, args=(waiter,))
        b.start()
        deadline = time.monotonic() + 30
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted " \
                  "AND (classid::bigint << 32 | objid::bigint) = %s"  # fmt: skip
        while sql(pg_url, waiting, SEQUENCER_LOCK & 0xFFFFFFFFFFFFFFFF) != [(1,)]:
            assert time.monotonic() < deadline, "the second writer never queued on the lock"
        assert "b" not in seen
        release.set()
        a.join()
        b.join()
        assert seen == {"a": 1, "b": 2}
        assert log.store.checkpoint_sizes() == [0, 1, 2, 3]


# One racing sequencer, in its own interpreter: opens its Log, says "ready", waits for
# "go" on stdin, submits its appends, prints every acknowledgement as JSON.
_RACER = """
import json, sys
from inferproof.log import Log, SignerKey
from inferproof.stores import PostgresLogStore
url, key, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with Log(PostgresLogStore(url), SignerKey.parse(key), max_delay=0.002) as log:
    print("ready", flush=True)
    assert sys.stdin.readline() == "go\\n"
    data = [f"w{worker}-{i}".encode() for i in range(count)]
    pending = [log.submit(d) for d in data]
    acks = []
    for d, p in zip(data, pending):
        r = p.result(timeout=120)
        acks.append([d.hex(), r.index, r.checkpoint.hex(), [h.hex() for h in r.proof]])
print(json.dumps(acks), flush=True)
"""


def _race(
    url: str, key: str, workers: int, count: int
) -> list[tuple[bytes, int, bytes, list[bytes]]]:
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, url, key, str(w), str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for w in range(workers)]  # fmt: skip
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        for p in procs:  # all are connected and waiting: start them together
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        out = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * workers
    return [(bytes.fromhex(d), i, bytes.fromhex(n), [bytes.fromhex(h) for h in pr])
            for text in out for d, i, n, pr in json.loads(text)]  # fmt: skip


def test_racing_sequencer_processes(pg_url: str, signer: SignerKey) -> None:
    workers, count = 4, 200
    with Log(PostgresLogStore(pg_url), signer) as log:  # creates the schema, signs size 0
        acks = _race(pg_url, signer.encode(), workers, count)
        assert len(acks) == workers * count
        assert sorted(i for _, i, _, _ in acks) == list(range(workers * count))
        stored = log.store.read_entries(0, workers * count)
        notes: dict[int, bytes] = {}
        for data, index, note, proof in acks:
            assert stored[index] == data
            cp = open_checkpoint(note, signer.verifier())
            assert log.store.checkpoint(cp.size) == notes.setdefault(cp.size, note) == note
            verify_inclusion(hash_leaf(data), index, cp.size, proof, cp.root_hash)
        sizes = log.store.checkpoint_sizes()
        assert sizes == sorted(set(sizes)) and sizes[-1] == workers * count
        assert set(notes) <= set(sizes) and 1 < len(sizes) <= workers * count
        assert log.verify().checkpoints == tuple(sizes)
        roots = {n: log.checkpoint(n).root_hash for n in sizes}
        # Consecutive pairs chain every checkpoint to the next; all pairs of an even
        # sample (first and last included) check longer jumps too.
        sample = sorted(set(sizes[:: max(1, len(sizes) // 40)]) | {sizes[-1]})
        pairs = list(itertools.pairwise(sizes))
        pairs += [(m, n) for m in sample for n in sample if m < n]
        for m, n in pairs:
            verify_consistency(m, n, roots[m], roots[n], log.consistency_proof(m, n))
