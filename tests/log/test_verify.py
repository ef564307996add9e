"""verify_tlog_proof (log signature, inclusion, witness quorum) and CheckpointMemory."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferproof._checks import CheckStatus
from inferproof.errors import InputError, VerificationError
from inferproof.log import (
    ALG_COSIGNATURE_V1,
    Checkpoint,
    CheckpointMemory,
    Log,
    SignerKey,
    open_checkpoint,
    sign_note,
    verify_tlog_proof,
)

from .conftest import entry


def _cosigned_proof(log: Log, index: int, witnesses: list[SignerKey], ts: int = 1000) -> str:
    proof = log.tlog_proof(index)
    note = open_checkpoint(proof.checkpoint, log.verifier_key).note
    cosigned = note.with_signatures(w.sign(note.text, ts) for w in witnesses)
    return type(proof)(proof.index, proof.path, cosigned.encode()).encode()


@pytest.fixture
def witnesses() -> list[SignerKey]:
    return [SignerKey.generate(f"w{i}.example/w", ALG_COSIGNATURE_V1) for i in range(3)]


def test_quorum_of_cosignatures(log: Log, witnesses: list[SignerKey]) -> None:
    log.append_many([entry(i) for i in range(20)])
    text = _cosigned_proof(log, 7, witnesses[:2])
    keys = [w.verifier() for w in witnesses]
    result = verify_tlog_proof(text, entry(7), log.verifier_key, keys, quorum=2)
    assert result.index == 7 and set(result.cosigners) == {"w0.example/w", "w1.example/w"}
    assert [c.name for c in result.checks] == [
        "log.checkpoint_signature",
        "log.inclusion",
        "log.witness_quorum",
    ]
    assert all(c.status is CheckStatus.PASSED for c in result.checks)
    with pytest.raises(VerificationError) as info:
        verify_tlog_proof(text, entry(7), log.verifier_key, keys, quorum=3)
    assert info.value.check == "log.witness_quorum"
    # Cosignatures dated after "now" do not count.
    with pytest.raises(VerificationError):
        verify_tlog_proof(text, entry(7), log.verifier_key, keys, quorum=1, now=999)
    no_quorum = verify_tlog_proof(text, entry(7), log.verifier_key)
    assert no_quorum.checks[-1].status is CheckStatus.NOT_CHECKED
    with pytest.raises(InputError):
        verify_tlog_proof(text, entry(7), log.verifier_key, keys[:1], quorum=2)


def test_wrong_leaf_and_wrong_key(log: Log) -> None:
    log.append_many([entry(i) for i in range(5)])
    text = log.tlog_proof(3).encode()
    with pytest.raises(VerificationError) as info:
        verify_tlog_proof(text, entry(4), log.verifier_key)
    assert info.value.check == "log.inclusion"
    impostor = SignerKey.generate(log.origin)
    with pytest.raises(VerificationError) as info:
        verify_tlog_proof(text, entry(3), impostor.verifier())
    assert info.value.check == "log.checkpoint_signature"


def test_every_bit_flip_of_a_tlog_proof_is_rejected(log: Log, witnesses: list[SignerKey]) -> None:
    log.append_many([entry(i) for i in range(6)])
    data = _cosigned_proof(log, 5, witnesses[:1]).encode()
    keys = [witnesses[0].verifier()]
    verify_tlog_proof(data, entry(5), log.verifier_key, keys, quorum=1)
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(VerificationError):
            verify_tlog_proof(bytes(flipped), entry(5), log.verifier_key, keys, quorum=1)


def test_checkpoint_memory(tmp_path: Path, log: Log, log_signer: SignerKey) -> None:
    memory = CheckpointMemory(tmp_path / "memory", log.verifier_key)
    log.append_many([entry(i) for i in range(10)])
    cp10 = log.checkpoint()
    assert memory.observe(cp10).status is CheckStatus.PASSED  # first seen
    assert memory.observe(cp10).status is CheckStatus.PASSED  # same again
    log.append_many([entry(i) for i in range(10, 25)])
    cp25 = log.checkpoint()
    assert memory.needs_proof(cp25) == (10, 25)
    assert memory.observe(cp25).status is CheckStatus.NOT_CHECKED
    assert memory.latest(log.origin) == cp10  # not remembered without a proof
    assert memory.observe(cp25, log.consistency_proof(10, 25)).status is CheckStatus.PASSED
    assert memory.latest(log.origin) == cp25
    # An older checkpoint from an old bundle is fine when consistent.
    older = memory.observe(cp10, log.consistency_proof(10, 25))
    assert older.status is CheckStatus.PASSED and memory.latest(log.origin) == cp25
    # Split view: same size, another root, validly signed by the log key.
    split = open_checkpoint(
        sign_note(Checkpoint(log.origin, 25, bytes(32)).body(), [log_signer]).encode(),
        log.verifier_key,
    )
    check = memory.observe(split)
    assert check.status is CheckStatus.FAILED and "split view" in check.detail
    # Rollback: a smaller tree that is not a prefix of the remembered one.
    rolled = open_checkpoint(
        sign_note(Checkpoint(log.origin, 12, bytes(32)).body(), [log_signer]).encode(),
        log.verifier_key,
    )
    check = memory.observe(rolled, log.consistency_proof(12, 25))
    assert check.status is CheckStatus.FAILED and "rollback" in check.detail
    # A larger fork.
    fork = open_checkpoint(
        sign_note(Checkpoint(log.origin, 30, bytes(32)).body(), [log_signer]).encode(),
        log.verifier_key,
    )
    log.append_many([entry(i) for i in range(25, 30)])
    check = memory.observe(fork, log.consistency_proof(25, 30))
    assert check.status is CheckStatus.FAILED and memory.latest(log.origin) == cp25
