"""OpenAI's response shapes for chat and text completions and embeddings (no HTTP here).

Shapes follow OpenAI's API reference for ``chat.completion``,
``chat.completion.chunk``, ``text_completion`` and embedding ``list`` objects and its
error body,
so the official clients parse them unchanged. The receipt rides along in one
extra top-level field, ``inferproof``, which the clients keep as an extra
attribute and otherwise ignore.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from typing import Any

import numpy as np

from .._canonical import canonical_json, sha256_digest
from ._llm_embed import EmbeddingOutput
from ._llm_output import ChatOutput

EXTRA_FIELD = "inferproof"


def new_id(task: str) -> str:
    """``chatcmpl-…`` or ``cmpl-…`` with 96 random bits, as OpenAI's ids look."""
    return ("chatcmpl-" if task == "chat" else "cmpl-") + secrets.token_hex(12)


def fingerprint(runtime: dict[str, Any]) -> str:
    """``system_fingerprint``: names the backend configuration, as OpenAI's does; here
    the first 16 hex digits of the digest of the receipt's runtime block."""
    return "fp_" + sha256_digest(canonical_json(runtime))[7:23]


def usage(output: ChatOutput) -> dict[str, int]:
    return {
        "prompt_tokens": output.prompt_tokens,
        "completion_tokens": output.completion_tokens,
        "total_tokens": output.prompt_tokens + output.completion_tokens,
    }


def response(
    task: str,
    rid: str,
    created: int,
    model: str,
    output: ChatOutput,
    system_fingerprint: str | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """A whole ``chat.completion`` or ``text_completion`` object."""
    if task == "chat":
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": output.text},
            "logprobs": None,
            "finish_reason": output.finish_reason,
        }
    else:
        choice = {
            "index": 0,
            "text": output.text,
            "logprobs": None,
            "finish_reason": output.finish_reason,
        }
    return {
        "id": rid,
        "object": "chat.completion" if task == "chat" else "text_completion",
        "created": created,
        "model": model,
        "system_fingerprint": system_fingerprint,
        "choices": [choice],
        "usage": usage(output),
        EXTRA_FIELD: extra,
    }


def chunk(
    task: str,
    rid: str,
    created: int,
    model: str,
    *,
    text: str | None = None,
    finish_reason: str | None = None,
    first: bool = False,
    system_fingerprint: str | None = None,
) -> dict[str, Any]:
    """One streamed ``chat.completion.chunk`` (or ``text_completion``) event."""
    if task == "chat":
        delta: dict[str, Any] = {}
        if first:
            delta["role"] = "assistant"
        if text is not None:
            delta["content"] = text
        choice: dict[str, Any] = {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish_reason,
        }
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish_reason}
    return {
        "id": rid,
        "object": "chat.completion.chunk" if task == "chat" else "text_completion",
        "created": created,
        "model": model,
        "system_fingerprint": system_fingerprint,
        "choices": [choice],
    }


def usage_chunk(
    task: str, rid: str, created: int, model: str, output: ChatOutput
) -> dict[str, Any]:
    """The last event when the client asked ``stream_options.include_usage``: no
    choices, only usage."""
    return {
        "id": rid,
        "object": "chat.completion.chunk" if task == "chat" else "text_completion",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage(output),
    }


def error_body(
    message: str,
    *,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def models_list(entries: Iterable[tuple[str, int, str]]) -> dict[str, Any]:
    """``GET /v1/models``: ``(id, created, owned_by)`` entries as a ``list`` object."""
    return {
        "object": "list",
        "data": [
            {"id": mid, "object": "model", "created": created, "owned_by": owner}
            for mid, created, owner in entries
        ],
    }


def embeddings(
    model: str, output: EmbeddingOutput, encoding_format: str, extra: dict[str, Any]
) -> dict[str, Any]:
    """``POST /v1/embeddings``: a ``list`` of ``embedding`` objects. ``float`` gives each
    vector as JSON numbers (float32 values written as the binary64 numbers they are, so
    they parse back exactly); ``base64`` as its little-endian float32 bytes, which is
    what the official Python client asks for by default."""
    data = []
    for i, row in enumerate(np.ascontiguousarray(output.vectors, dtype="<f4")):
        vector: Any = (
            base64.b64encode(row.tobytes()).decode()
            if encoding_format == "base64"
            else row.astype(np.float64).tolist()
        )
        data.append({"object": "embedding", "index": i, "embedding": vector})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": output.prompt_tokens, "total_tokens": output.prompt_tokens},
        EXTRA_FIELD: extra,
    }
