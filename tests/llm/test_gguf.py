"""The GGUF fixture writer and the capped GGUF metadata reader."""

from __future__ import annotations

import hashlib
import struct

import pytest

from inferproof.errors import InputError
from inferproof.runtime._llm_gguf import MAX_ARRAY, gguf_signature, is_gguf, read_gguf_metadata
from inferproof.testing._gguf import CHATML_TEMPLATE, SPECIAL_TOKENS, _vocabulary

# GGUF value types (ggml docs/gguf.md): an independent, hand-rolled writer for hostile headers.
U32, BOOL, STRING, ARRAY = 4, 7, 8, 9


def _s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def _kv(key: str | bytes, vtype: int, payload: bytes) -> bytes:
    return _s(key) + struct.pack("<I", vtype) + payload


def _header(
    kvs: list[bytes], *, version: int = 3, n_tensors: int = 0, n_kv: int | None = None
) -> bytes:
    count = len(kvs) if n_kv is None else n_kv
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, count) + b"".join(kvs)


ARCH = _kv("general.architecture", STRING, _s("llama"))
CTX = _kv("llama.context_length", U32, struct.pack("<I", 2048))


def test_fixture_vocabulary_is_byte_level_bpe() -> None:
    tokens, types, merges = _vocabulary(200)
    assert 300 <= len(tokens) <= 600  # "a few hundred"
    assert len(set(tokens)) == len(tokens)
    assert tokens[-3:] == list(SPECIAL_TOKENS)
    assert types[-3:] == [3, 3, 3] and set(types[:-3]) == {1}
    # Every merge joins two tokens into a third, all in the vocabulary.
    vocab = set(tokens)
    for rule in merges:
        left, right = rule.split(" ")
        assert left in vocab and right in vocab and left + right in vocab


def test_fixture_header(gguf_bytes: bytes) -> None:
    info = gguf_signature(gguf_bytes)
    assert is_gguf(gguf_bytes)
    assert info["architecture"] == "llama"
    assert info["context_length"] == 512
    assert info["tokenizer"] == "gpt2"
    assert info["vocab_size"] == len(_vocabulary(200)[0])
    # 2 layers x 9 tensors, embeddings, output norm, output.
    assert info["tensor_count"] == 21
    assert info["chat_template"] == "sha256:" + hashlib.sha256(CHATML_TEMPLATE.encode()).hexdigest()


def test_fixture_is_deterministic() -> None:
    from inferproof.testing import TinyLlamaConfig, tiny_llama_gguf

    assert tiny_llama_gguf() == tiny_llama_gguf()
    assert tiny_llama_gguf(TinyLlamaConfig(seed=1)) != tiny_llama_gguf()


def test_fixture_loads_and_renders_chatml(llm) -> None:
    from inferproof.runtime._llm_request import ChatRequest

    req = ChatRequest("chat", "sha256:" + "0" * 64, (("system", "Be brief."), ("user", "Hi")))
    prompt = llm.render(req)
    assert prompt.text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # The control tokens are single tokens, and print as nothing.
    im_start = prompt.tokens[0]
    assert prompt.tokens.count(im_start) == 3
    assert llm.token_bytes(im_start) == b""


def test_metadata_reader_accepts_minimal_header() -> None:
    version, n, meta = read_gguf_metadata(_header([ARCH, CTX, _kv("x.flag", BOOL, b"\x01")]))
    assert (version, n) == (3, 0)
    assert meta == {"general.architecture": "llama", "llama.context_length": 2048, "x.flag": True}
    assert gguf_signature(_header([ARCH, CTX]))["chat_template"] is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GGML" + bytes(20), "missing the GGUF magic"),
        (_header([ARCH, CTX], version=1), "version 1 is not supported"),
        (_header([ARCH, CTX], n_kv=3), "truncated"),
        (_header([ARCH, CTX])[:-2], "truncated"),
        (_header([ARCH, ARCH, CTX]), "appears twice"),
        (_header([ARCH, CTX, _kv("x.flag", BOOL, b"\x02")]), "boolean must be 0 or 1"),
        (_header([ARCH, CTX, _kv("x.odd", 13, b"")]), "unknown value type 13"),
        (_header([ARCH, CTX, _kv("x.bad", STRING, _s(b"\xff\xfe"))]), "not UTF-8"),
        (_header([ARCH, CTX, _kv(b"\xc3", STRING, _s("v"))]), "not UTF-8"),
        (_header([ARCH, CTX, _kv("", STRING, _s("v"))]), "1 to 65535 bytes"),
        (
            _header([ARCH, CTX, _kv("x.big", ARRAY, struct.pack("<IQ", U32, MAX_ARRAY + 1))]),
            "over the cap",
        ),
        (
            _header([ARCH, CTX, _kv("x.nest", ARRAY, struct.pack("<IQ", ARRAY, 1))]),
            "unknown value type 9",
        ),
        (_header([ARCH, CTX], n_kv=1 << 40), "over the caps"),
        (_header([CTX]), "no general.architecture"),
        (_header([ARCH]), "no valid llama.context_length"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 40), "over the"),
    ],
)
def test_metadata_reader_rejects(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        gguf_signature(data)


def test_is_gguf() -> None:
    assert not is_gguf(b"\x08\x01onnx")
    assert not is_gguf(b"")
