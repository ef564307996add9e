"""Verifiable chat: every answer of a GGUF model carries a signed, logged receipt.

This mirrors tensor inference for language models (see :mod:`._chatreceipt` for
what the receipt commits to). The runtime block records llama.cpp's version, the
CPU features and every pinned setting, so a verifier can re-run the request and
require the identical answer. A whole answer is the stream drained, so streamed
and whole answers cannot differ.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InputError
from ..hub import ModelRecord
from ..receipts import Bundle
from ..runtime import (
    MAX_SEED,
    ChatOpening,
    ChatOutput,
    ChatRequest,
    LlamaModel,
    Prompt,
    parse_request,
)
from ..runtime import openai_shapes as oai
from ._chatmodels import ChatModels
from ._chatreceipt import ChatIssue, check_nonce, extra, receipt_digest, sign_chat
from ._issue import Issuer, utc_now
from ._models import ModelRef

__all__ = ["REEXECUTION_PROOF", "ChatResult", "ChatStream", "answer", "open_stream"]

REEXECUTION_PROOF = "reexecution"


@dataclass(frozen=True)
class ChatResult:
    """An answer in OpenAI's shape (``response``, receipt in its ``inferproof``
    field), the bundle, and for a private request the opening (caller only)."""

    response: dict[str, Any]
    bundle: Bundle
    opening: ChatOpening | None
    request: ChatRequest
    output: ChatOutput

    @property
    def text(self) -> str:
        return self.output.text

    @property
    def receipt_digest(self) -> str:
        """``sha256`` of the envelope's RFC 8785 bytes: the log entry's digest."""
        return receipt_digest(self.bundle)


@dataclass(frozen=True)
class _Call:
    """A checked request bound to its loaded model."""

    model_ref: str
    record: ModelRecord | None
    block: dict[str, Any]
    model: LlamaModel
    request: ChatRequest
    prompt: Prompt
    include_usage: bool


def _prepare(
    models: ChatModels, task: str, model_ref: ModelRef, request: Mapping[str, Any]
) -> _Call:
    if not isinstance(request, Mapping):
        raise InputError("request must be a JSON object")
    label = model_ref if isinstance(model_ref, str) else str(model_ref)
    if request.get("model", label) != label:
        raise InputError(f"request names model {request.get('model')!r}, not {label!r}")
    parsed = parse_request({**request, "model": label}, task)
    record, block, model = models.resolve(model_ref)
    bound = parsed.request.bind(str(block["digest"]), max_tokens=parsed.request.max_tokens)
    req, prompt = model.prepare(bound)
    if req.sampling.temperature > 0 and req.sampling.seed is None:
        # Sampling without a seed would not be reproducible: pick one and record it.
        seed = secrets.randbelow(MAX_SEED + 1)
        req = replace(req, sampling=replace(req.sampling, seed=seed))
    sig = model.signature
    block = {
        **block,
        "format": "gguf",
        "architecture": sig["architecture"],
        "chat_template": sig["chat_template"],
    }
    return _Call(label, record, block, model, req, prompt, parsed.include_usage)


def _generate(
    issuer: Issuer, models: ChatModels, call: _Call, *, private: bool, nonce: str | None
) -> Generator[str, None, tuple[Bundle, ChatOpening | None, ChatOutput]]:
    """Yield text deltas; return the signed bundle once the answer is complete."""
    started = utc_now()
    stream = call.model.stream(call.request, call.prompt)
    try:
        yield from stream
    finally:
        stream.close()
    finished = utc_now()
    gen = stream.result
    assert gen is not None  # the stream ran to its end
    output = ChatOutput(gen.text, gen.finish_reason, gen.prompt_tokens, gen.completion_tokens)
    runtime = call.model.runtime_info()
    proof = {
        "type": REEXECUTION_PROOF,
        "engine": runtime["engine"],
        "settings": runtime["settings"],
    }
    issue = ChatIssue(call.record, call.block, runtime, [proof], "vanilla", started, finished)
    bundle, opening = sign_chat(
        issuer,
        models.hub,
        issue,
        call.request,
        output,
        private=private,
        nonce=nonce,
        fingerprint=gen.fingerprint,
    )
    return bundle, opening, output


class ChatStream:
    """OpenAI stream events (dicts) for one request; the last one carries the
    receipt in its ``inferproof`` field. :attr:`result` is set at the end.

    Example::

        stream = node.chat_stream("tiny", {"messages": [...], "stream": True})
        for event in stream:
            send_sse(event)
        bundle = stream.result.bundle
    """

    def __init__(
        self,
        issuer: Issuer,
        models: ChatModels,
        task: str,
        call: _Call,
        private: bool,
        nonce: str | None,
    ) -> None:
        self.result: ChatResult | None = None
        gen = _generate(issuer, models, call, private=private, nonce=nonce)
        self._it = self._events(task, call, gen)

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> dict[str, Any]:
        return next(self._it)

    def close(self) -> None:
        """Stop early (no receipt is made for an answer never finished)."""
        self._it.close()

    def _events(
        self,
        task: str,
        call: _Call,
        gen: Generator[str, None, tuple[Bundle, ChatOpening | None, ChatOutput]],
    ) -> Generator[dict[str, Any], None, None]:
        rid, created, model = oai.new_id(task), int(time.time()), call.model_ref
        fp = oai.fingerprint(call.model.runtime_info())
        if task == "chat":
            yield oai.chunk(task, rid, created, model, first=True, text="", system_fingerprint=fp)
        try:
            while True:
                delta = next(gen)
                yield oai.chunk(task, rid, created, model, text=delta, system_fingerprint=fp)
        except StopIteration as done:
            bundle, opening, output = done.value
        finally:
            gen.close()
        last = oai.chunk(
            task, rid, created, model, finish_reason=output.finish_reason, system_fingerprint=fp
        )
        if call.include_usage:
            yield last
            last = oai.usage_chunk(task, rid, created, model, output)
        last[oai.EXTRA_FIELD] = extra(bundle, opening)
        self.result = ChatResult(
            oai.response(task, rid, created, model, output, fp, last[oai.EXTRA_FIELD]),
            bundle,
            opening,
            call.request,
            output,
        )
        yield last


def open_stream(
    issuer: Issuer,
    models: ChatModels,
    task: str,
    model_ref: ModelRef,
    request: Mapping[str, Any],
    *,
    private: bool = False,
    nonce: str | None = None,
) -> ChatStream:
    """A stream answering ``request`` (``task`` is ``chat`` or ``completion``). The
    request is checked (bad requests raise :class:`InputError`) before this
    returns, so an error never starts a stream."""
    check_nonce(nonce)
    call = _prepare(models, task, model_ref, request)
    return ChatStream(issuer, models, task, call, private, nonce)


def answer(
    issuer: Issuer,
    models: ChatModels,
    task: str,
    model_ref: ModelRef,
    request: Mapping[str, Any],
    *,
    private: bool = False,
    nonce: str | None = None,
) -> ChatResult:
    """The whole answer to ``request``, with its receipt."""
    stream = open_stream(issuer, models, task, model_ref, request, private=private, nonce=nonce)
    for _ in stream:
        pass
    assert stream.result is not None  # set once the stream is exhausted
    return stream.result
