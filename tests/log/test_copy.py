"""Copying a log between stores (``inferproof migrate``): every checkpoint kept, byte for
byte; a source whose entries, tiles or checkpoints do not agree is never copied."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from inferproof.errors import InputError, VerificationError
from inferproof.log import Log, SignerKey, SQLiteLogStore, compare_logs, copy_log, verify_tlog_proof


def _source(path: Path, key: SignerKey) -> Log:
    log = Log.open(path, key)
    for batch, count in enumerate((3, 300, 1, 800, 7)):  # checkpoints 0, 3, 303, ..., 1111
        log.append_many([f"e{batch}.{i}".encode() for i in range(count)])
    return log


@pytest.fixture()
def key() -> SignerKey:
    return SignerKey.generate("example.com/copy")


def test_copy_keeps_every_checkpoint_and_proof(tmp_path: Path, key: SignerKey) -> None:
    src = _source(tmp_path / "a.sqlite", key)
    proof = src.tlog_proof(5, 303)  # a proof a client kept, against an old checkpoint
    target = SQLiteLogStore(tmp_path / "b.sqlite")
    assert copy_log(src.store, target, key.verifier()) == 1111
    copy = Log(target, key)
    audit = compare_logs(src, copy)
    assert audit.checkpoints == (0, 3, 303, 304, 1104, 1111)
    assert copy.checkpoint().note.encode() == src.checkpoint().note.encode()
    verify_tlog_proof(proof.encode(), src.entry(5), key.verifier())
    assert copy.tlog_proof(5, 303).encode() == proof.encode()
    # A batch appended to the copy continues the same tree, as it would the source's.
    copy.append_many([b"after"])
    src.append_many([b"after"])
    assert copy.root() == src.root()
    assert copy.consistency_proof(303) == src.consistency_proof(303)
    src.close()
    copy.close()


def test_copy_refuses_a_target_that_holds_a_log(tmp_path: Path, key: SignerKey) -> None:
    src = _source(tmp_path / "a.sqlite", key)
    other = Log.open(tmp_path / "b.sqlite", SignerKey.generate("example.com/other"))
    other.close()
    with pytest.raises(InputError, match="already holds a log"):
        copy_log(src.store, SQLiteLogStore(tmp_path / "b.sqlite"), key.verifier())
    src.close()


def test_copy_refuses_another_key(tmp_path: Path, key: SignerKey) -> None:
    src = _source(tmp_path / "a.sqlite", key)
    with pytest.raises(InputError, match="origin"):
        copy_log(src.store, SQLiteLogStore(tmp_path / "b.sqlite"),
                 SignerKey.generate("example.com/else").verifier())  # fmt: skip
    src.close()


def _flip_entry(db: sqlite3.Connection) -> None:
    # One bit of one entry: the recomputed root differs from the signed one.
    (data,) = db.execute("SELECT data FROM entries WHERE idx = 100").fetchone()
    db.execute("UPDATE entries SET data = ? WHERE idx = 100", (bytes([data[0] ^ 1]) + data[1:],))


def _flip_signature(db: sqlite3.Connection) -> None:
    # One bit of the log's signature on the checkpoint of size 303.
    (note,) = db.execute("SELECT note FROM checkpoints WHERE size = 303").fetchone()
    body, sig_line = note.rstrip(b"\n").rsplit(b"\n", 1)
    name, blob = sig_line.rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    forged = body + b"\n" + name + b" " + base64.b64encode(bytes(raw)) + b"\n"
    db.execute("UPDATE checkpoints SET note = ? WHERE size = 303", (forged,))


def _claim_other_size(db: sqlite3.Connection) -> None:
    # A genuine checkpoint filed under another size.
    db.execute("UPDATE checkpoints SET size = 302 WHERE size = 303")


@pytest.mark.parametrize(
    ("tamper", "error"),
    [
        (_flip_entry, "log.copy: the checkpoint of size 303 has the wrong root"),
        (_flip_signature, "signature"),
        (_claim_other_size, "log.copy: the checkpoint stored at 302 is of 303"),
    ],
)
def test_a_corrupt_source_is_not_copied(
    tmp_path: Path, key: SignerKey, tamper: Callable[[sqlite3.Connection], None], error: str
) -> None:
    src = _source(tmp_path / "a.sqlite", key)
    src.close()
    with sqlite3.connect(tmp_path / "a.sqlite") as db:
        tamper(db)
    target_path = tmp_path / "b.sqlite"
    with pytest.raises(VerificationError, match=error):
        copy_log(SQLiteLogStore(tmp_path / "a.sqlite"), SQLiteLogStore(target_path),
                 key.verifier())  # fmt: skip
    # Nothing was committed: the target is still empty and takes a copy later.
    assert SQLiteLogStore(target_path).get_meta("origin") is None
