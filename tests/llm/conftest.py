"""Shared fixtures: the tiny llama GGUF (written locally, nothing downloaded) and nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferproof.testing import TinyLlamaConfig, tiny_llama_gguf


@pytest.fixture(scope="session")
def gguf_bytes() -> bytes:
    return tiny_llama_gguf()


@pytest.fixture(scope="session")
def gguf_path(tmp_path_factory: pytest.TempPathFactory, gguf_bytes: bytes) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    path.write_bytes(gguf_bytes)
    return path


@pytest.fixture(scope="session")
def llm(gguf_path: Path):
    from inferproof.runtime._llm import LlamaModel

    model = LlamaModel(gguf_path)
    yield model
    model.close()


@pytest.fixture()
def chat_node(home: Path, gguf_path: Path):
    """A node with the tiny model pushed as ``tiny``."""
    from inferproof import LocalNode

    node = LocalNode(home)
    node.push(gguf_path, name="tiny")
    yield node
    node.close()


def variant(tmp_path: Path, **changes: object) -> Path:
    """Write a variant of the tiny model (another template, context, seed)."""
    path = tmp_path / "variant.gguf"
    path.write_bytes(tiny_llama_gguf(TinyLlamaConfig(**changes)))
    return path


def ask(content: str = "What is the capital of France?", **params: object) -> dict[str, object]:
    """An OpenAI-shaped chat body with greedy decoding unless told otherwise."""
    body: dict[str, object] = {
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "max_tokens": 24,
    }
    body.update(params)
    return body
