"""GGUF models in the hub: signed pushes, corrupt blobs, per-node configuration, threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from inferproof import LocalNode
from inferproof._canonical import sha256_digest
from inferproof.engine import ChatConfig
from inferproof.errors import InputError
from inferproof.hub import BlobCorruptError, publisher_id, verify_model_signature
from inferproof.runtime._llm import LlamaSettings

from .conftest import ask


def test_signed_push_puts_the_signature_in_receipts(
    home: Path, gguf_path: Path, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "publisher.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with LocalNode(home) as node:
        record = node.push(gguf_path, name="tiny", version="1", sign_key=pem)
        assert record.format == "gguf" and record.publisher is not None
        result = node.chat("tiny:1", ask())
        r = result.bundle.receipt
        assert r.model["version"] == "1" and r.model["signature"] == record.signature_digest
        assert result.bundle.model_signature is not None
        assert sha256_digest(result.bundle.model_signature.encode()) == record.signature_digest
        pub = key.public_key()
        signer = verify_model_signature(
            result.bundle.model_signature.encode(), r.model_digest, {publisher_id(pub): pub}
        )
        assert signer == publisher_id(pub)


def test_a_corrupt_blob_is_never_loaded(home: Path, gguf_path: Path) -> None:
    with LocalNode(home) as node:
        record = node.push(gguf_path, name="tiny")
        blob = node.hub.blobs.path(record.digest)
    assert blob is not None
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    with LocalNode(home) as fresh, pytest.raises(BlobCorruptError, match="is corrupt"):
        fresh.chat("tiny", ask())


def test_configure_sets_caps_and_settings(chat_node) -> None:
    chat_node.configure_chat(ChatConfig(settings=LlamaSettings(n_threads=1), max_tokens_cap=8))
    with pytest.raises(InputError, match="over this node's cap of 8"):
        chat_node.chat("tiny", ask(max_tokens=9))
    result = chat_node.chat("tiny", ask(max_tokens=None))
    assert result.bundle.inputs is not None and result.bundle.inputs["max_tokens"] == 8
    assert result.bundle.receipt.runtime["settings"]["n_threads"] == 1


def test_concurrent_requests_give_the_sequential_answers(chat_node) -> None:
    bodies = [ask(f"question {i}", max_tokens=12) for i in range(4)]
    expected = [chat_node.chat("tiny", b).text for b in bodies]
    got: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            got[i] = chat_node.chat("tiny", bodies[i]).text
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [got[i] for i in range(4)] == expected


def test_unknown_models_are_model_not_found(chat_node) -> None:
    from inferproof.errors import ModelNotFound

    for ref in ("nope", "nope:1", "sha256:" + "0" * 64, "/no/such.gguf"):
        with pytest.raises(ModelNotFound):
            chat_node.chat(ref, ask())


def test_unload_and_closing_a_stream_early(chat_node) -> None:

    stream = chat_node.chat_stream("tiny", ask(max_tokens=20))
    events = [next(stream), next(stream)]
    assert events[1]["choices"][0]["delta"]["content"]
    stream.close()
    assert stream.result is None  # no receipt for an answer never finished
    before = chat_node.log.size
    chat_node._chat.unload()  # does not wait on the closed stream
    assert chat_node.chat("tiny", ask(max_tokens=4)).output.completion_tokens == 4
    assert chat_node.log.size == before + 1
