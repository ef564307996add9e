from __future__ import annotations

from pathlib import Path

import pytest

from inferproof._canonical import sha256_digest
from inferproof.errors import InputError
from inferproof.hub import BlobCorruptError, LocalBlobStore


def test_push_is_idempotent(node, credit_model) -> None:  # type: ignore[no-untyped-def]
    data, _ = credit_model
    first = node.push(data, name="risk", version="1")
    second = node.push(data, name="risk", version="1")
    assert first.digest == second.digest == sha256_digest(data)
    assert [(r.name, r.version) for r in node.hub.list()] == [("risk", "1"), ("risk", "latest")]


def test_versions_are_immutable(node, credit_model, mlp_bytes) -> None:  # type: ignore[no-untyped-def]
    node.push(credit_model[0], name="risk", version="1")
    with pytest.raises(InputError, match="immutable"):
        node.push(mlp_bytes, name="risk", version="1")


def test_latest_moves(node, credit_model, mlp_bytes) -> None:  # type: ignore[no-untyped-def]
    node.push(credit_model[0], name="m", version="1")
    node.push(mlp_bytes, name="m", version="2")
    assert node.hub.resolve("m:1").digest == sha256_digest(credit_model[0])
    assert node.hub.resolve("m").digest == sha256_digest(mlp_bytes)


def test_resolve_by_digest_name_and_version(node, mlp_bytes) -> None:  # type: ignore[no-untyped-def]
    rec = node.push(mlp_bytes, name="mlp", version="0.1")
    assert node.hub.resolve(rec.digest).name == "mlp"
    assert node.hub.resolve("mlp:0.1").digest == rec.digest
    with pytest.raises(InputError, match="no model 'nope'"):
        node.hub.resolve("nope")
    with pytest.raises(InputError, match="invalid"):
        node.hub.resolve("../etc/passwd")


def test_records_tensor_signature(node, credit_model) -> None:  # type: ignore[no-untyped-def]
    rec = node.push(credit_model[0], name="risk")
    assert [(t.name, t.dtype, t.shape) for t in rec.inputs] == [("X", "float32", (None, 4))]
    assert {t.name for t in rec.outputs} == {"label", "probabilities"}


def test_non_onnx_is_refused(node) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="not a loadable ONNX model"):
        node.push(b"this is not a model", name="junk")
    assert node.hub.list() == []


def test_corrupt_blob_refused_on_load(node, mlp_bytes, home: Path) -> None:  # type: ignore[no-untyped-def]
    rec = node.push(mlp_bytes, name="mlp")
    blob = home / "blobs" / "sha256" / rec.digest.split(":")[1]
    raw = bytearray(blob.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    blob.write_bytes(bytes(raw))
    with pytest.raises(BlobCorruptError, match="corrupt"):
        node.hub.load(rec.digest)
    from inferproof import LocalNode

    fresh = LocalNode(home)  # a new process has no cached session
    with pytest.raises(BlobCorruptError):
        fresh.infer("mlp", {"x": __import__("numpy").zeros((1, 8), "float32")})


def test_blob_store_roundtrip_and_missing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    digest = store.put(b"abc")
    assert digest == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert store.get(digest) == b"abc"
    with pytest.raises(InputError, match="no blob"):
        store.get("sha256:" + "0" * 64)
    with pytest.raises(InputError, match="not a sha256"):
        store.get("sha256:../../etc")
