"""Shapes of the OpenAI-compatible endpoints, for the OpenAPI document.

Request bodies are not validated by these: the library's strict parsers
(``inferproof.runtime.parse_request``, ``parse_embedding_request``) are the one
authority on what a request is, and its refusals become OpenAI error bodies. The JSON Schemas here
describe the same rules for readers and for schemathesis. Responses follow
OpenAI's API reference (``chat.completion``, ``text_completion``, ``list`` of
``model`` or of ``embedding``) plus the ``inferproof`` field that carries the receipt.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..runtime import ENCODING_FORMATS, MAX_EMBED_INPUTS, MAX_SEED, MAX_STOP, MAX_STOP_CHARS, ROLES
from ._schemas import MAX_NONCE, ModelRecordJSON

# Response headers and request headers of the chat endpoints.
BUNDLE_ID_HEADER = "Inferproof-Bundle-Id"
NONCE_HEADER = "Inferproof-Nonce"
PRIVATE_HEADER = "Inferproof-Private"


class _Open(BaseModel):
    # OpenAI adds fields over time; documenting the ones sent today is enough.
    model_config = ConfigDict(extra="allow")


class ChatErrorDetail(BaseModel):
    message: str
    type: str | None = None
    param: str | None = None
    code: str | None = None


class ChatErrorResponse(BaseModel):
    """OpenAI's error body. Errors answered before a chat route runs (body over the
    cap, the node busy) have the node's ``{"error": {"code", "message"}}``, which fits."""

    model_config = ConfigDict(extra="forbid")
    error: ChatErrorDetail


class Usage(_Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ReceiptField(_Open):
    receipt_digest: str = Field(description="sha256 of the RFC 8785 envelope (the log entry).")
    bundle: dict[str, Any] = Field(description="The receipt bundle (docs/verification.md).")
    bundle_id: str = Field(description="The bundle's id: GET /v1/bundles/{id}.")
    opening: dict[str, Any] | None = Field(
        default=None, description="A private request's opening: for the caller only."
    )


class AssistantMessage(_Open):
    role: Literal["assistant"]
    content: str


class ChatChoice(_Open):
    index: int
    message: AssistantMessage
    logprobs: None
    finish_reason: Literal["stop", "length"]


class ChatCompletion(_Open):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    system_fingerprint: str | None
    choices: list[ChatChoice]
    usage: Usage
    inferproof: ReceiptField


class TextChoice(_Open):
    index: int
    text: str
    logprobs: None
    finish_reason: Literal["stop", "length"]


class TextCompletion(_Open):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    system_fingerprint: str | None
    choices: list[TextChoice]
    usage: Usage
    inferproof: ReceiptField


class EmbeddingUsage(_Open):
    prompt_tokens: int
    total_tokens: int


class EmbeddingObject(_Open):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(
        description="The vector: numbers (`encoding_format` float), or base64 of its "
        "little-endian float32 bytes (base64)."
    )


class EmbeddingList(_Open):
    object: Literal["list"]
    data: list[EmbeddingObject]
    model: str
    usage: EmbeddingUsage
    inferproof: ReceiptField


class OpenAIModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelListing(BaseModel):
    """The hub's models (``models``, as the inferproof client reads them) and the chat
    models as OpenAI's ``list`` object (``object``, ``data``)."""

    model_config = ConfigDict(extra="forbid")
    object: Literal["list"]
    data: list[OpenAIModel]
    models: list[ModelRecordJSON]


# -- request bodies (documentation only; see the module docs) -----------------------------
def _number(lo: float, hi: float) -> dict[str, Any]:
    return {"type": "number", "minimum": lo, "maximum": hi}


_TEXT_PART = {
    "type": "object",
    "required": ["type", "text"],
    "additionalProperties": False,
    "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}},
}
_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "additionalProperties": False,
    "properties": {
        "role": {"type": "string", "enum": list(ROLES)},
        "content": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "minItems": 1, "items": _TEXT_PART},
            ]
        },
    },
}
_STOP_ITEM = {"type": "string", "minLength": 1, "maxLength": MAX_STOP_CHARS}
_COMMON: dict[str, Any] = {
    "model": {
        "type": "string",
        "minLength": 1,
        "description": "A GGUF model on this node (NAME[:VERSION] or sha256:DIGEST); in "
        "relay mode, any name the upstream knows.",
    },
    "max_tokens": {"type": "integer", "minimum": 1},
    "temperature": _number(0, 2),
    "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "top_k": {"type": "integer", "minimum": 0, "maximum": 1 << 20},
    "min_p": _number(0, 1),
    "repeat_penalty": _number(0, 10),
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
    "stop": {"anyOf": [_STOP_ITEM, {"type": "array", "maxItems": MAX_STOP, "items": _STOP_ITEM}]},
    "n": {"type": "integer", "enum": [1]},
    "stream": {"type": "boolean"},
    "stream_options": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"include_usage": {"type": "boolean"}},
    },
    "user": {"type": "string"},
}


def request_body(task: str) -> dict[str, Any]:
    """``openapi_extra`` documenting a chat (``task="chat"``) or completion body."""
    if task == "chat":
        props = {
            **_COMMON,
            "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
            "max_completion_tokens": {"type": "integer", "minimum": 1},
        }
        required = ["model", "messages"]
    else:
        props = {**_COMMON, "prompt": {"type": "string"}}
        required = ["model", "prompt"]
    schema = {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": props,
    }
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "parameters": [
            {
                "name": NONCE_HEADER,
                "in": "header",
                "required": False,
                "description": "A nonce for the receipt (against replay).",
                "schema": {"type": "string", "minLength": 1, "maxLength": MAX_NONCE},
            },
            {
                "name": PRIVATE_HEADER,
                "in": "header",
                "required": False,
                "description": "`true`: commit to salted digests of the request and the "
                "answer; the opening comes back in `inferproof.opening` only.",
                "schema": {"type": "string", "enum": ["true", "false"]},
            },
        ],
    }


_EMBED_TEXT = {"type": "string", "minLength": 1}


def embeddings_body() -> dict[str, Any]:
    """``openapi_extra`` documenting a ``/v1/embeddings`` body."""
    schema = {
        "type": "object",
        "required": ["model", "input"],
        "additionalProperties": False,
        "properties": {
            "model": {
                "type": "string",
                "minLength": 1,
                "description": "A GGUF model on this node (NAME[:VERSION] or sha256:DIGEST).",
            },
            "input": {
                "anyOf": [
                    _EMBED_TEXT,
                    {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_EMBED_INPUTS,
                        "items": _EMBED_TEXT,
                    },
                ]
            },
            "encoding_format": {"type": "string", "enum": list(ENCODING_FORMATS)},
            "user": {"type": "string"},
        },
    }
    # The chat body's headers (nonce, private), this body.
    content = {"application/json": {"schema": schema}}
    return {**request_body("chat"), "requestBody": {"required": True, "content": content}}


# One server-sent event, as OpenAPI 3.1 documents a text/event-stream item (3.2 would
# call it itemSchema): a JSON chunk, an error object, or the final "[DONE]".
_SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {"type": "string", "description": "A chunk (JSON), an error (JSON) or [DONE]."},
        "event": {"type": "string"},
    },
}


def ok_response(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The 200 answer: JSON (``stream`` false) or server-sent events (``stream`` true)."""
    return {
        200: {
            "model": model,
            "description": "The answer; with `stream: true`, server-sent events "
            "(`data: {chunk}` ... `data: [DONE]`), the receipt on the last chunk.",
            "content": {"text/event-stream": {"schema": _SSE_EVENT}},
            "headers": {
                BUNDLE_ID_HEADER: {
                    "description": "The id of the answer's bundle (GET /v1/bundles/{id}); for "
                    "a stream, valid once the stream ends.",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
                }
            },
        }
    }


def json_response(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The 200 answer of a JSON-only endpoint, naming its bundle in a header."""
    headers = ok_response(model)[200]["headers"]
    description = "The answer, its receipt in the `inferproof` field."
    return {200: {"model": model, "description": description, "headers": headers}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ChatErrorResponse, "description": "OpenAI error body"} for s in statuses}
