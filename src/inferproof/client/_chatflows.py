"""Verified chat and text completions, whole and streamed, as sans-IO flows.

Each request gets a fresh nonce (the ``Inferproof-Nonce`` header) unless one is
given; the answer is returned only once its receipt verified with the client's trust
root and policy, names the model asked for (``model.requested``), commits to the
request sent (``input.requested``) and signs the text shown (``output.digest``), and
its checkpoint is consistent with those seen before (``log.consistency``). A stream's
receipt arrives with its last chunk, so a streamed answer is verified at its end.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._canonical import canonical_json, parse_json, sha256_digest
from ..errors import InputError, VerificationError
from ..log import TlogProof
from ..receipts import MAX_NONCE_CHARS, Bundle
from ..runtime import ChatOpening, ChatOutput, ChatRequest, parse_request
from ..verify import Material, VerificationReport
from ._chatcheck import (
    Assembly,
    Receipted,
    Shown,
    asked,
    chat_report,
    openai_parts,
    raise_if_failed,
    receipted,
    shown_whole,
)
from ._core import MAX_RESPONSE_BYTES, ClientCore, Flow, Req, body_of, new_nonce
from ._stream import Emit, SseParser, StreamFlow, pull

__all__ = [
    "BUNDLE_ID_HEADER",
    "NONCE_HEADER",
    "PRIVATE_HEADER",
    "ChatAnswer",
    "ChatCall",
    "ChatInput",
    "chat_call",
    "chat_flow",
    "openai_flow",
    "report_flow",
    "stream_flow",
]

NONCE_HEADER = "Inferproof-Nonce"
PRIVATE_HEADER = "Inferproof-Private"
BUNDLE_ID_HEADER = "Inferproof-Bundle-Id"
MAX_MODEL_CHARS = 256
# A user message, a list of OpenAI messages, or a whole OpenAI request body.
ChatInput = str | Sequence[Mapping[str, Any]] | Mapping[str, Any]
_PATHS = {"chat": "/v1/chat/completions", "completion": "/v1/completions"}


@dataclass(frozen=True)
class ChatAnswer:
    """A verified chat (or text completion) answer.

    ``text`` is the signed answer's text; ``response`` the OpenAI-shaped answer (for a
    stream, its chunks put together); ``request`` and ``output`` what the receipt
    commits to; ``opening`` opens a private receipt (keep it to prove the exchange
    later). ``report`` is None only for a client made with ``verify=False``.
    """

    text: str
    finish_reason: str | None
    response: dict[str, Any]
    bundle: Bundle
    bundle_id: str
    receipt_digest: str
    log_index: int | None
    nonce: str
    opening: ChatOpening | None
    request: ChatRequest | None
    output: ChatOutput | None
    report: VerificationReport | None


@dataclass(frozen=True)
class ChatCall:
    """One checked request: the body as sent, its canonical form, nonce and privacy."""

    task: str
    model: str
    body: dict[str, Any]
    sent: ChatRequest
    nonce: str
    private: bool

    def req(self) -> Req:
        headers = {NONCE_HEADER: self.nonce, PRIVATE_HEADER: "true" if self.private else "false"}
        stream = bool(self.body.get("stream"))
        return Req("POST", _PATHS[self.task], True, {"json": self.body, "headers": headers}, stream)


def _base(task: str, ask: ChatInput) -> dict[str, Any]:
    if isinstance(ask, str):
        return (
            {"messages": [{"role": "user", "content": ask}]} if task == "chat" else {"prompt": ask}
        )
    if isinstance(ask, Mapping):
        return dict(ask)
    if task == "chat" and isinstance(ask, Sequence):
        return {"messages": [dict(m) if isinstance(m, Mapping) else m for m in ask]}
    what = "a message, a list of messages" if task == "chat" else "a prompt"
    raise InputError(f"give {what} or an OpenAI request body, not {type(ask).__name__}")


def chat_call(
    task: str,
    model: str,
    ask: ChatInput,
    params: Mapping[str, Any],
    *,
    nonce: str | None,
    private: bool,
    stream: bool,
) -> ChatCall:
    """Check a request before anything is sent (bad arguments raise InputError)."""
    if not isinstance(model, str) or not 0 < len(model) <= MAX_MODEL_CHARS:
        raise InputError(f"model must be a name of 1 to {MAX_MODEL_CHARS} characters")
    body = {**_base(task, ask), **params}
    if body.setdefault("model", model) != model:
        raise InputError(f"the request names model {body['model']!r:.80}, not {model!r:.80}")
    if body.setdefault("stream", stream) is not stream:
        method = "chat/complete" if stream else "chat_stream/complete_stream"
        raise InputError(f"stream is {body['stream']!r} in the request: use {method}")
    if not isinstance(private, bool):
        raise InputError("private must be True or False")
    if nonce is not None and not (isinstance(nonce, str) and 0 < len(nonce) <= MAX_NONCE_CHARS):
        raise InputError(f"nonce must be a string of 1 to {MAX_NONCE_CHARS} characters")
    parsed = parse_request(body, task)
    return ChatCall(task, model, body, parsed.request, nonce or new_nonce(), private)


def chat_flow(core: ClientCore, call: ChatCall) -> Flow[ChatAnswer]:
    """A whole answer, verified."""
    if core.verify_answers:
        yield from core._trust_flow()
    response = yield call.req()
    shown = shown_whole(body_of(response))
    got = receipted(shown.extra)
    return (yield from _finish_flow(core, call, shown, got, response.headers.get(BUNDLE_ID_HEADER)))


def stream_flow(
    core: ClientCore, call: ChatCall, chunks: bool, hold: bool
) -> StreamFlow[tuple[ChatAnswer, list[Any]]]:
    """A streamed answer: text deltas (or the chunks) emitted as they come, or, with
    ``hold``, held back; the result is the verified answer and the items held back
    (handed out once the answer is known to be verified)."""
    if core.verify_answers:
        yield from core._trust_flow()
    response = yield call.req()
    bundle_id = response.headers.get(BUNDLE_ID_HEADER)
    parser, assembly, held = SseParser(), Assembly(), list[Any]()
    extra = None
    while extra is None:
        data = yield from pull()
        if not data:
            raise VerificationError("receipt", "the stream ended before its receipt")
        for payload in parser.feed(data):
            if payload == "[DONE]":
                raise VerificationError("receipt", "the stream ended before its receipt")
            chunk = parse_json(payload.encode(), "stream event", MAX_RESPONSE_BYTES)
            delta = assembly.add(chunk)
            item = chunk if chunks else delta
            if item and hold:
                held.append(item)
            elif item:
                yield Emit(item)
            extra = assembly.extra
            if extra is not None:  # the receipt's chunk is the last that counts
                break
    got = receipted(extra)
    answer = yield from _finish_flow(core, call, assembly.shown(got.output), got, bundle_id)
    return answer, held


def _finish_flow(
    core: ClientCore, call: ChatCall, shown: Shown, got: Receipted, header_id: str | None
) -> Flow[ChatAnswer]:
    report = None
    if core.verify_answers:
        report = yield from report_flow(core, shown, got, call.nonce, call.model, call.sent,
                                        call.private)  # fmt: skip
        raise_if_failed(report)
    return _answer(call.nonce, shown, got, _bundle_id(shown.extra, header_id), report)


def report_flow(
    core: ClientCore,
    shown: Shown,
    got: Receipted,
    nonce: str | None,
    model: str | None,
    sent: ChatRequest | None,
    private: bool | None,
) -> Flow[VerificationReport]:
    """The verifier's report on the receipt, with the client's checks (never raises for
    a failed check: :func:`raise_if_failed` does)."""
    material = Material(nonce=nonce, chat_opening=got.opening)
    report = yield from core._check_flow(got.bundle, material, None)
    return chat_report(report, shown, got, model, sent, private)


def openai_flow(
    core: ClientCore,
    response: Any,
    nonce: str | None,
    model: str | None,
    request: Mapping[str, Any] | None,
) -> Flow[VerificationReport]:
    """Verify the receipt riding on an ``openai`` client answer (or a stream's chunks);
    raise VerificationError naming the first failed check, else return the report."""
    shown, got = openai_parts(response)
    model, sent = asked(request, shown.task, model)
    report = yield from report_flow(core, shown, got, nonce, model, sent, None)
    raise_if_failed(report)
    return report


def _answer(
    nonce: str, shown: Shown, got: Receipted, bundle_id: str, report: VerificationReport | None
) -> ChatAnswer:
    bundle, output = got.bundle, got.output
    index = TlogProof.parse(bundle.tlog_entry).index if bundle.tlog_entry else None
    return ChatAnswer(
        text=output.text if output is not None else shown.text,
        finish_reason=output.finish_reason if output is not None else shown.finish_reason,
        response=shown.response,
        bundle=bundle,
        bundle_id=bundle_id,
        receipt_digest=sha256_digest(canonical_json(bundle.envelope)),
        log_index=index,
        nonce=nonce,
        opening=got.opening,
        request=got.request,
        output=output,
        report=report,
    )


def _bundle_id(extra: Mapping[str, Any], header: str | None) -> str:
    """The bundle's id in the node's store: the receipt field's, which the header names
    too (a node naming two ids answers malformed)."""
    field = extra.get("bundle_id")
    ids = {str(i) for i in (field, header) if i is not None}
    if len(ids) > 1:
        raise InputError(f"the node names two bundle ids: {sorted(ids)}")
    found = ids.pop() if ids else ""
    if found and not re.fullmatch(r"[0-9a-f]{24}", found):
        raise InputError(f"the node sent a malformed bundle id {found!r:.40}")
    return found
