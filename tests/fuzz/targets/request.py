"""Request bodies of the node: its pydantic models, its tensor inputs, the chat parser.

The node reads a body with the strict JSON parser, validates ``/v1/infer`` and
``/v1/infer/batch`` bodies with pydantic (a ``ValidationError`` is its 422),
turns the inputs into tensors (``Service.parse_inputs``, whose ``NodeHTTPError``
is a 413), and hands chat and completion bodies to ``parse_request``. Each of
these may refuse; none may fail any other way, and no refusal may be a 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from inferproof._canonical import parse_json
from inferproof.errors import Error
from inferproof.node import NodeConfig
from inferproof.node._errors import NodeHTTPError
from inferproof.node._schemas import BatchRequest, InferRequest
from inferproof.node._service import Service
from inferproof.runtime import ChatRequest, parse_request

from .._harness import JSON_TOKENS, Target, must, parse
from .._material import Material

TOKENS = (
    b'"model"',
    b'"inputs"',
    b'"items"',
    b'"mode"',
    b'"zk"',
    b'"private_input"',
    b'"messages"',
    b'"role"',
    b'"content"',
    b'"type"',
    b'"text"',
    b'"prompt"',
    b'"max_tokens"',
    b'"temperature"',
    b'"seed"',
    b'"stop"',
    b'"stream"',
    b'"stream_options"',
    b'"include_usage"',
    b'"sampling"',
    b'"task"',
)
DIGEST = "sha256:" + "ab" * 32
X = [[0.5, -1.0, 2.0, 0.25]]


def _seeds() -> list[Any]:
    chat = {
        "model": "tiny",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        "max_tokens": 8,
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
        "presence_penalty": 0.1,
        "frequency_penalty": -0.1,
        "seed": 7,
        "stop": ["\n", "END"],
        "n": 1,
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "u",
    }
    canonical = parse_request(chat, "chat").request.bind(DIGEST, max_tokens=8).to_json()
    explicit = {"dtype": "float32", "shape": [1, 4], "b64": "AAAAPwAAgL8AAABAAACAPg=="}
    return [
        {"model": "mlp", "inputs": {"x": X}, "nonce": "n", "mode": "vanilla"},
        {"model": DIGEST, "inputs": {"x": explicit}, "private_input": True},
        {
            "model": "mlp:1",
            "mode": "vanilla",
            "items": [{"inputs": {"x": X}}, {"inputs": {"x": X}}],
        },
        chat,
        {"model": "tiny", "prompt": "once upon", "max_tokens": 4, "stop": "."},
        canonical,
    ]


def _pydantic(service: Service, obj: Any) -> None:
    for model in (InferRequest, BatchRequest):
        try:
            body: Any = model.model_validate(obj)
        except ValidationError:
            continue
        for item in body.items if isinstance(body, BatchRequest) else [body]:
            try:
                parse(service.parse_inputs, item.inputs)
            except NodeHTTPError as exc:
                must(400 <= exc.status < 500, f"parse_inputs answered {exc.status}")


def _chat(obj: Any) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: parse_request(obj, "chat"),
        lambda: parse_request(obj, "completion"),
        lambda: parse_request(obj, "chat", relay=True),
    ]
    for call in calls:
        parsed = parse(call)
        if parsed is not None:
            parse(lambda p=parsed: p.request.bind(DIGEST, max_tokens=16).digest)
    canonical = parse(ChatRequest.from_json, obj)
    if canonical is not None:
        canonical.digest  # noqa: B018 (hashing the canonical form must work)


def target(m: Material) -> Target:
    service = Service(m.node, NodeConfig())

    def run(data: bytes) -> None:
        obj = parse(parse_json, data, "request body", NodeConfig().max_body_bytes)
        if obj is not None:
            _pydantic(service, obj)
            _chat(obj)

    def accepts(data: bytes) -> bool:
        obj = json.loads(data)
        tries: list[Callable[[], Any]] = [
            lambda: service.parse_inputs(InferRequest.model_validate(obj).inputs),
            lambda: [
                service.parse_inputs(i.inputs) for i in BatchRequest.model_validate(obj).items
            ],
            lambda: parse_request(obj, "chat"),
            lambda: parse_request(obj, "completion"),
            lambda: ChatRequest.from_json(obj),
        ]
        return any(_succeeds(t) for t in tries)

    seeds = tuple(json.dumps(s).encode() for s in _seeds())
    return Target("request", run, seeds, JSON_TOKENS + TOKENS, accepts)


def _succeeds(call: Callable[[], Any]) -> bool:
    try:
        call()
    except (ValidationError, Error):
        return False
    return True
