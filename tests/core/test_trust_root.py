"""TrustRoot.from_directory: the one builder of a trust root from INFERPROOF_HOME/trust."""

from __future__ import annotations

import base64
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferproof._keys import key_id, raw_public
from inferproof.errors import InputError
from inferproof.hub import load_publisher_key, publisher_id
from inferproof.log import SignerKey
from inferproof.verify import TrustRoot


def _folder(tmp_path: Path) -> tuple[Path, bytes, str, SignerKey, SignerKey]:
    trust = tmp_path / "trust"
    for sub in ("nodes", "publishers", "logs", "witnesses"):
        (trust / sub).mkdir(parents=True)
    node = raw_public(Ed25519PrivateKey.generate().public_key())
    (trust / "nodes" / "a.pub").write_text(base64.b64encode(node).decode() + "\n")
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (trust / "publishers" / "p.pem").write_bytes(pem)
    log, witness = SignerKey.generate("example.com/log"), SignerKey.generate("witness.example")
    (trust / "logs" / "l.vkey").write_text(str(log.verifier()) + "\n")
    (trust / "witnesses" / "w.vkey").write_text(str(witness.verifier()) + "\n")
    return trust, node, publisher_id(load_publisher_key(pem)), log, witness


def test_every_kind_of_key_is_read(tmp_path: Path) -> None:
    trust, node, pid, _log, witness = _folder(tmp_path)
    root = TrustRoot.from_directory(trust)
    assert set(root.node_keys) == {key_id(node)}
    assert set(root.publishers) == {pid}
    assert list(root.log_keys) == ["example.com/log"]
    assert [str(k) for k in root.witness_keys] == [str(witness.verifier())]


def test_given_keys_are_added(tmp_path: Path) -> None:
    trust, node, _, _log, _ = _folder(tmp_path)
    own = raw_public(Ed25519PrivateKey.generate().public_key())
    other_log = SignerKey.generate("own.example/log").verifier()
    root = TrustRoot.from_directory(trust, node_keys=[own], log_keys=[other_log])
    assert set(root.node_keys) == {key_id(node), key_id(own)}
    assert set(root.log_keys) == {"example.com/log", "own.example/log"}


def test_missing_folder_trusts_nothing(tmp_path: Path) -> None:
    root = TrustRoot.from_directory(tmp_path / "absent")
    assert (root.node_keys, root.publishers, root.log_keys, root.witness_keys) == ({}, {}, {}, ())


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("nodes/bad.pub", "not base64!", "not a base64 Ed25519 public key"),
        ("nodes/short.pub", base64.b64encode(b"x" * 31).decode(), "32 bytes"),
        (
            "publishers/bad.pem",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "not a PEM public key",
        ),
        ("logs/bad.vkey", "no+key", r"not name\+keyid\+base64"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, name: str, content: str, message: str) -> None:
    trust, *_ = _folder(tmp_path)
    (trust / name).write_text(content)
    with pytest.raises(InputError, match=message):
        TrustRoot.from_directory(trust)


def test_deprecated_aliases_still_work_and_warn(tmp_path: Path) -> None:
    from inferproof import testing

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from inferproof.runtime import _llm_fixture

        assert _llm_fixture.write_tiny_llama is testing.write_tiny_llama
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    from inferproof import _chat

    with pytest.raises(AttributeError):
        _llm_fixture.not_there  # noqa: B018
    assert callable(_chat.chat) and callable(_chat.push_gguf)
