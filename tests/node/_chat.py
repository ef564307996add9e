"""Shared pieces of the chat endpoint tests: the tiny GGUF models, a node serving one,
the official openai client pointed at a node, and the verifier's view of a bundle."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from inferproof.node import NodeConfig
from inferproof.receipts import Bundle
from inferproof.runtime._llm_output import ChatOpening
from inferproof.testing import TinyLlamaConfig, tiny_llama_gguf
from inferproof.verify import Material, Policy

from .conftest import Running

# Greedy answers of this model to "Hi" run to max_tokens (no end-of-generation token)
# for thousands of tokens, about 3000 tokens a second here: a request that is still
# generating when the test acts on it.
LONG_CONFIG = TinyLlamaConfig(n_ctx=4096)
LONG_PROMPT = "Hi"
# Everything a receipt can prove here: signature, log, nonce, request, re-execution.
STRICT = Policy(require_log=True, require_nonce=True, require_input=True, require_reexecution=True)


@functools.cache
def tiny_gguf(long: bool = False) -> bytes:
    """The tiny test model (or the one whose answers run long), written once per run."""
    return tiny_llama_gguf(LONG_CONFIG if long else TinyLlamaConfig())


def serving(
    make_node: Callable[..., Running],
    model: bytes | None,
    config: NodeConfig | None = None,
    name: str = "node",
) -> Running:
    """A node on loopback with ``model`` pushed over HTTP as ``tiny`` (if given)."""
    running = make_node(config, name=name)
    if model is not None:
        with running.http() as http:
            response = http.post(
                "/v1/models",
                params={"name": "tiny"},
                content=model,
                headers={"content-type": "application/octet-stream"},
            )
        assert response.status_code == 201, response.text
    return running


def openai_at(url: str, api_key: str) -> Any:
    """The official client pointed at the node at ``url``, unchanged but for base_url."""
    from openai import OpenAI

    return OpenAI(base_url=f"{url}/v1", api_key=api_key, max_retries=0, timeout=60)


def openai_for(running: Running, api_key: str | None = None) -> Any:
    return openai_at(running.url, api_key if api_key is not None else running.token)


def ask(content: str = "What is the capital of France?", **params: Any) -> dict[str, Any]:
    """An OpenAI chat body, greedy unless told otherwise."""
    body: dict[str, Any] = {
        "model": "tiny",
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "max_tokens": 24,
    }
    body.update(params)
    return body


def report(
    running: Running,
    receipt: dict[str, Any],
    model: bytes | None,
    *,
    nonce: str | None = None,
    policy: Policy = STRICT,
) -> dict[str, tuple[str, str]]:
    """Verify the ``inferproof`` field of an answer with the library's Verifier: every
    check as name -> (status, detail), plus "verified"."""
    bundle = Bundle.from_json(receipt["bundle"])
    opening = receipt.get("opening")
    material = Material(
        model_bytes=model,
        nonce=nonce,
        chat_opening=ChatOpening.from_json(opening) if opening else None,
    )
    result = running.node.verifier(policy).check(bundle, material)
    out = {c.name: (c.status.value, c.detail) for c in result.checks}
    out["verified"] = (str(result.verified), "")
    return out


def sse_events(text: str) -> list[Any]:
    """The ``data:`` payloads of a server-sent event stream, in order."""
    import json

    out: list[Any] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        payload = block.removeprefix("data: ")
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out
