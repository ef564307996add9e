"""The Log: batched appends, proofs against an in-memory reference, audit, concurrency."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from inferproof.errors import InputError, VerificationError
from inferproof.log import (
    Log,
    MemoryTree,
    SignerKey,
    hash_leaf,
    open_default_log,
    verify_inclusion,
    verify_tlog_proof,
)

from .conftest import entry


def test_append_returns_index_proof_and_checkpoint(log: Log) -> None:
    first = log.append(b"one")
    second = log.append(b"two")
    assert (first.index, second.index) == (0, 1)
    cp = log.checkpoint()
    assert cp.size == 2 and cp.root_hash == MemoryTree([b"one", b"two"]).root()
    result = verify_tlog_proof(second.tlog_proof().encode(), b"two", log.verifier_key)
    assert result.index == 1


def test_proofs_match_the_reference_tree(log: Log) -> None:
    data = [entry(i) for i in range(1100)]
    for start in range(0, 1100, 137):  # uneven batches cross tile boundaries
        log.append_many(data[start : start + 137])
    ref = MemoryTree(data)
    for size in log.store.checkpoint_sizes():
        assert log.root(size) == ref.root(size) == log.checkpoint(size).root_hash
    for i in (0, 1, 255, 256, 511, 512, 1023, 1099):
        assert log.inclusion_proof(i) == ref.inclusion_proof(i)
        if i < 1096:
            assert log.inclusion_proof(i, 1096) == ref.inclusion_proof(i, 1096)
    for m in (0, 1, 137, 256, 548, 1100):
        assert log.consistency_proof(m) == ref.consistency_proof(m)


def test_concurrent_appenders_get_distinct_indexes(log: Log) -> None:
    results: list[tuple[bytes, int, bytes, tuple[bytes, ...]]] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        for i in range(60):
            data = f"{t}-{i}".encode()
            r = log.append(data)
            with lock:
                results.append((data, r.index, r.checkpoint, r.proof))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(i for _, i, _, _ in results) == list(range(480))
    for data, index, note, proof in results:
        assert log.entry(index) == data
        cp = log.checkpoint(int(note.split(b"\n")[1]))
        verify_inclusion(hash_leaf(data), index, cp.size, proof, cp.root_hash)
    assert len(log.store.checkpoint_sizes()) < 481  # appends were batched


def test_submit_pipelines_many_appends(log: Log) -> None:
    pending = [log.submit(entry(i)) for i in range(500)]
    results = [p.result(timeout=30) for p in pending]
    assert [r.index for r in results] == list(range(500))
    assert log.checkpoint().root_hash == MemoryTree([entry(i) for i in range(500)]).root()


def test_audit_detects_a_tampered_entry(log: Log) -> None:
    log.append_many([entry(i) for i in range(300)])
    assert log.verify().size == 300
    path = Path(str(log.store.path))  # type: ignore[attr-defined]
    with sqlite3.connect(path) as db:
        db.execute("UPDATE entries SET data = ? WHERE idx = 299", (b"forged",))
    with pytest.raises(VerificationError) as info:
        log.verify()
    assert info.value.check == "log.audit"


def test_audit_detects_a_tampered_checkpoint(log: Log, log_signer: SignerKey) -> None:
    log.append_many([entry(i) for i in range(5)])
    other = Log.open(Path(str(log.store.path)).with_name("other.sqlite"), log_signer)  # type: ignore[attr-defined]
    other.append_many([b"x"] * 5)
    forged = other.checkpoint(5).encode()
    other.close()
    log.store.replace_checkpoint(5, forged)  # validly signed, wrong root
    with pytest.raises(VerificationError, match="wrong root"):
        log.verify()


def test_bad_inputs(log: Log, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        log.append(b"x" * 65536)
    with pytest.raises(InputError):
        log.inclusion_proof(0)
    with pytest.raises(InputError):
        log.consistency_proof(2, 1)
    with pytest.raises(InputError):
        log.checkpoint(7)
    with pytest.raises(InputError, match="belongs to"):
        Log.open(Path(str(log.store.path)), SignerKey.generate("someone.else/log"))  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="different key"):
        Log.open(Path(str(log.store.path)), SignerKey.generate(log.origin))  # type: ignore[attr-defined]
    (tmp_path / "junk.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(InputError):
        Log.open(tmp_path / "junk.sqlite", SignerKey.generate("a.example/b"))


def test_default_log_creates_a_private_key_once(tmp_path: Path) -> None:
    with open_default_log(tmp_path) as log:
        origin = log.origin
        log.append(b"kept")
    key = tmp_path / "keys" / "log.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert origin.startswith("inferproof.local/")
    with open_default_log(tmp_path) as again:
        assert again.origin == origin and again.entry(0) == b"kept"
