"""Issue 11, low: what a push could leave behind or rewrite in the hub.

- A refused GGUF push left its blob stored (and downloadable), and the error named
  a server path.
- A push could replace the signature recorded for an immutable version.
- The hub's ``publisher`` came from the signature bundle's unsigned key hint.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from inferproof import LocalNode
from inferproof.errors import InputError
from inferproof.hub import sign_model
from inferproof.testing import mlp_model, tiny_llama_gguf

from ..node.conftest import Running


def _key(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _blobs(node: LocalNode) -> set[str]:
    return {p.name for p in (node.home.blobs / "sha256").iterdir()}


def test_a_refused_gguf_leaves_nothing_and_names_no_path(tmp_path: Path) -> None:
    broken = tiny_llama_gguf()[:200_000]  # a valid header, then the file ends
    with LocalNode(tmp_path / "n") as node:
        with pytest.raises(InputError) as exc:
            node.push(broken, name="tiny")
        assert _blobs(node) == set() and node.hub.list() == []
    assert str(tmp_path) not in str(exc.value) and "/tmp" not in str(exc.value)


def test_a_refused_gguf_over_http(running: Running) -> None:
    broken = tiny_llama_gguf()[:200_000]
    with running.http() as http:
        got = http.post("/v1/models", params={"name": "tiny"}, content=broken,
                        headers={"content-type": "application/octet-stream"})  # fmt: skip
        blob = http.get(f"/v1/blobs/sha256:{hashlib.sha256(broken).hexdigest()}")
    assert got.status_code == 400
    assert str(running.home) not in got.text
    assert blob.status_code == 404


def test_a_bad_name_stores_nothing(tmp_path: Path) -> None:
    with LocalNode(tmp_path / "n") as node:
        with pytest.raises(InputError, match="model name"):
            node.push(tiny_llama_gguf(), name="../x")
        assert _blobs(node) == set()


def test_a_signed_version_keeps_its_signature(tmp_path: Path) -> None:
    model = mlp_model((8, 2))
    first, second = _key(tmp_path / "a.pem"), _key(tmp_path / "b.pem")
    with LocalNode(tmp_path / "n") as node:
        signed = node.push(model, name="m", version="1", sign_key=first)
        with pytest.raises(InputError, match="signature is immutable"):
            node.push(model, name="m", version="1", signature=sign_model(model, second))
        assert node.hub.resolve("m:1").signature_digest == signed.signature_digest
        # A new version may carry another signature.
        other = node.push(model, name="m", version="2", signature=sign_model(model, second))
        assert other.signature_digest != signed.signature_digest


def test_the_publisher_is_only_named_when_verified(tmp_path: Path) -> None:
    model = mlp_model((8, 2))
    stranger = sign_model(model, _key(tmp_path / "stranger.pem"))
    with LocalNode(tmp_path / "n") as node:
        unverified = node.push(model, name="m", version="1", signature=stranger)
        assert unverified.signature_digest is not None and unverified.publisher is None
        own = node.push(model, name="m", version="2", sign_key=_key(tmp_path / "own.pem"))
        assert own.publisher is not None and own.publisher.startswith("sha256:")
        assert own.publisher in node.trust_root().publishers
