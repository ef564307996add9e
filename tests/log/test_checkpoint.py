"""tlog-checkpoint parsing and opening, and the tlog-proof text format."""

from __future__ import annotations

import pytest

from inferproof.errors import InputError, VerificationError
from inferproof.log import Checkpoint, MemoryTree, Note, SignerKey, TlogProof, open_checkpoint
from inferproof.log import sign_note as sign

from .conftest import VECTORS

ROOT = bytes(range(32))


def test_c2sp_example_checkpoint_parses() -> None:
    note = Note.parse((VECTORS / "c2sp_cosigned_checkpoint.note").read_bytes())
    cp = Checkpoint.parse(note.text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert cp.root_hash.hex().startswith("0ac5186a91863e8e")
    assert [s.name for s in note.signatures] == [
        "example.com/behind-the-sofa",
        "witness.example.com/w1",
    ]
    assert note.signatures[1].timestamp == 1679315147
    assert cp.body() == note.text


@pytest.mark.parametrize(
    "text",
    [
        "o\n007\n" + "A" * 43 + "=\n",  # leading zero
        "o\n+7\n" + "A" * 43 + "=\n",
        "o\n\n" + "A" * 43 + "=\n",
        "\n7\n" + "A" * 43 + "=\n",  # empty origin
        "o\n7\n" + "A" * 42 + "==\n",  # 31-byte root
        "o\n7\n" + "A" * 42 + "B=\n",  # non-canonical base64 trailing bits
        "o\n7\n" + "A" * 43 + "=\n\n",  # empty extension line
        "o\n7\n" + "A" * 43 + "=",  # no final newline
        "o\n18446744073709551616\n" + "A" * 43 + "=\n",  # over uint64
    ],
)
def test_malformed_checkpoints_are_rejected(text: str) -> None:
    with pytest.raises(InputError):
        Checkpoint.parse(text)


def test_extension_lines_round_trip() -> None:
    cp = Checkpoint("o.example/l", 7, ROOT, ("ext one", "ext two"))
    assert Checkpoint.parse(cp.body()) == cp


def test_open_checkpoint_checks_origin_and_signature(log_signer: SignerKey) -> None:
    cp = Checkpoint(log_signer.name, 3, ROOT)
    data = sign(cp.body(), [log_signer]).encode()
    assert open_checkpoint(data, log_signer.verifier()).checkpoint == cp
    other = SignerKey.generate("elsewhere.example/log")
    with pytest.raises(VerificationError) as info:
        open_checkpoint(
            sign(Checkpoint(other.name, 3, ROOT).body(), [other]).encode(), log_signer.verifier()
        )
    assert info.value.check == "log.origin"
    stranger = SignerKey.generate(log_signer.name)
    with pytest.raises(VerificationError) as info:
        open_checkpoint(sign(cp.body(), [stranger]).encode(), log_signer.verifier())
    assert info.value.check == "log.checkpoint_signature"


def test_tlog_proof_round_trip_and_spec_layout(log_signer: SignerKey) -> None:
    tree = MemoryTree([b"a", b"b", b"c", b"d", b"e"])
    note = sign(Checkpoint(log_signer.name, 5, tree.root()).body(), [log_signer]).encode()
    proof = TlogProof(2, tuple(tree.inclusion_proof(2)), note, extra=b"context")
    text = proof.encode()
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra Y29udGV4dA=="
    assert lines[2] == "index 2"
    assert lines[6] == "" and text.endswith(note.decode())
    assert TlogProof.parse(text) == proof
    assert TlogProof.parse(TlogProof(2, proof.path, note).encode()).extra is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
        lambda t: t.replace("index 2", "index 02"),
        lambda t: t.replace("index 2", "idx 2"),
        lambda t: t.replace("\n\n", "\n", 1),
        lambda t: t.split("\n\n")[0] + "\n\n",
        lambda t: t.replace("index 2\n", "index 2\nnot base64!\n"),
    ],
)
def test_malformed_tlog_proofs_are_rejected(log_signer: SignerKey, mangle: object) -> None:
    tree = MemoryTree([b"a", b"b", b"c"])
    note = sign(Checkpoint(log_signer.name, 3, tree.root()).body(), [log_signer]).encode()
    text = TlogProof(2, tuple(tree.inclusion_proof(2)), note).encode()
    with pytest.raises(InputError):
        TlogProof.parse(mangle(text))  # type: ignore[operator]
