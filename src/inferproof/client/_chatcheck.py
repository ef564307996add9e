"""What a chat answer shows, what its receipt signs, and the client's checks between
them (sans-IO: used by the clients' chat flows and by :func:`verify_openai`).

The verifier checks the bundle on its own terms: the signed subject, the canonical
request inside it, the log. Two things only the asker can check:

- ``output.digest`` (extended): the text the answer *shows* (``choices[0]``, or the
  streamed deltas), its finish reason and token counts are the signed answer's. A node
  could otherwise sign one answer and show another;
- ``input.requested``: the canonical request the receipt commits to is the one sent
  (messages or prompt, every sampling parameter given, stop strings, ``max_tokens``
  when given, the privacy asked for). A node could otherwise answer, and sign, an
  easier question. What the node fills in is accepted: ``max_tokens`` when none was
  given, the seed of a sampled request sent without one, the chat template's time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .._checks import Check, CheckStatus, failed, not_checked, passed
from ..errors import Error, InputError, VerificationError
from ..receipts import Bundle
from ..runtime import ChatOpening, ChatOutput, ChatRequest, parse_request
from ..runtime import openai_shapes as oai
from ..verify import VerificationReport
from ._core import requested_check, with_checks

__all__ = [
    "Assembly",
    "Receipted",
    "Shown",
    "asked",
    "chat_report",
    "openai_parts",
    "raise_if_failed",
    "receipted",
    "request_check",
    "shown_check",
    "shown_whole",
    "task_of",
]

_OBJECTS = {"chat.completion": "chat", "text_completion": "completion"}
_CHUNKS = {"chat.completion.chunk": "chat", "text_completion": "completion"}


@dataclass(frozen=True)
class Shown:
    """What an OpenAI-shaped answer shows its reader, and its receipt field.

    ``usage`` is None for a stream that did not ask for it; ``response`` is the
    whole answer (for a stream, the chunks put together as a whole answer would be).
    """

    task: str
    text: str
    finish_reason: str | None
    usage: Mapping[str, Any] | None
    extra: Mapping[str, Any]
    response: dict[str, Any]


@dataclass(frozen=True)
class Receipted:
    """The receipt riding on an answer: bundle, opening (private requests), and the
    request and answer it commits to (from the bundle or the opening; None when
    malformed, which the verifier's ``input`` and ``output.digest`` checks then fail)."""

    bundle: Bundle
    opening: ChatOpening | None
    request: ChatRequest | None
    output: ChatOutput | None


def task_of(obj: Mapping[str, Any], table: Mapping[str, str]) -> str:
    task = table.get(str(obj.get("object")))
    if task is None:
        raise InputError(f"not an OpenAI answer or chunk (object {obj.get('object')!r:.60})")
    return task


def _choice(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    choices = obj.get("choices")
    if not isinstance(choices, list) or len(choices) > 1:
        raise InputError("the answer must have one choice (n=1)")
    if not choices:
        return None
    if not isinstance(choices[0], dict):
        raise InputError("the answer's choice is not an object")
    return choices[0]


def _string(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"the answer's {what} is not a string")
    return value


def _extra(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    extra = obj.get(oai.EXTRA_FIELD)
    if not isinstance(extra, Mapping):
        raise InputError(f"the answer carries no receipt (no {oai.EXTRA_FIELD!r} field)")
    return extra


def shown_whole(obj: Any) -> Shown:
    """A whole ``chat.completion`` or ``text_completion`` answer (a dict)."""
    if not isinstance(obj, dict):
        raise InputError("the node's answer is not a JSON object")
    task = task_of(obj, _OBJECTS)
    choice = _choice(obj)
    if choice is None:
        raise InputError("the answer has no choice")
    if task == "chat":
        message = choice.get("message")
        text = _string(message.get("content") if isinstance(message, dict) else None, "text")
    else:
        text = _string(choice.get("text"), "text")
    usage = obj.get("usage")
    return Shown(task, text, choice.get("finish_reason"),
                 usage if isinstance(usage, Mapping) else None, _extra(obj), obj)  # fmt: skip


@dataclass
class Assembly:
    """A stream's chunks put together: the text so far, the finish reason, the usage,
    and the receipt field once the chunk carrying it arrived (:attr:`done`)."""

    task: str | None = None
    head: dict[str, Any] = field(default_factory=dict)
    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.extra is not None

    def add(self, obj: Any) -> str:
        """Take one chunk (a dict); return the text it adds."""
        if not isinstance(obj, dict):
            raise InputError("the node's stream sent an event that is not a JSON object")
        if "error" in obj:
            raise _stream_error(obj["error"])
        task = task_of(obj, _CHUNKS)
        if self.task is None:
            self.task, self.head = task, {k: obj.get(k) for k in ("id", "created", "model")}
            self.head["system_fingerprint"] = obj.get("system_fingerprint")
        elif task != self.task:
            raise InputError("the node's stream mixes chat and text completion chunks")
        choice, delta = _choice(obj), ""
        if choice is not None:
            if task == "chat":
                moved = choice.get("delta")
                delta = _string(moved.get("content") if isinstance(moved, dict) else None, "text")
            else:
                delta = _string(choice.get("text"), "text")
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        if isinstance(obj.get("usage"), Mapping):
            self.usage = obj["usage"]
        if oai.EXTRA_FIELD in obj:
            self.extra = _extra(obj)
        self.parts.append(delta)
        return delta

    def shown(self, output: ChatOutput | None = None) -> Shown:
        """What the stream showed; ``output`` (the signed answer) fills the usage of
        the whole answer put together, when the stream did not carry it."""
        if self.task is None or self.extra is None:
            raise VerificationError("receipt", "the stream ended before its receipt")
        text = "".join(self.parts)
        made = output or ChatOutput(text, self.finish_reason or "stop", 0, 0)
        h = self.head
        response = oai.response(self.task, str(h.get("id")), int(h.get("created") or 0),
                                str(h.get("model")), made, h.get("system_fingerprint"),
                                dict(self.extra))  # fmt: skip
        return Shown(self.task, text, self.finish_reason, self.usage, self.extra, response)


def _stream_error(err: Any) -> Error:
    """An error event mid-stream (OpenAI's error body): the node gave up on the answer."""
    if not isinstance(err, dict):
        return Error("the node's stream ended with a malformed error event")
    what = f"the node's stream failed: {err.get('code') or err.get('type')}: {err.get('message')}"
    return InputError(what) if err.get("type") == "invalid_request_error" else Error(what)


def receipted(extra: Mapping[str, Any]) -> Receipted:
    """The receipt field's bundle and opening, and what they commit to."""
    if not isinstance(extra.get("bundle"), dict):
        raise InputError("the answer's receipt field has no bundle")
    bundle = Bundle.from_json(extra["bundle"])
    raw = extra.get("opening")
    opening = ChatOpening.from_json(raw) if raw is not None else None
    if opening is not None:
        return Receipted(bundle, opening, opening.request, opening.output)
    try:
        request = ChatRequest.from_json(bundle.inputs) if bundle.inputs is not None else None
    except InputError:
        request = None
    try:
        output = ChatOutput.from_json(bundle.outputs)
    except InputError:
        output = None
    return Receipted(bundle, None, request, output)


def shown_check(shown: Shown, output: ChatOutput | None, signed: Check | None) -> Check:
    """``output.digest``: the verifier's check, and the shown answer is the signed one."""
    name = "output.digest"
    if signed is None or signed.status is not CheckStatus.PASSED or output is None:
        return signed or not_checked(name, "the receipt's answer was not checked")
    if shown.text != output.text:
        return failed(name, f"the answer shows {_clip(shown.text)}, the receipt signs "
                            f"{_clip(output.text)}")  # fmt: skip
    if shown.finish_reason != output.finish_reason:
        return failed(name, f"the answer shows finish reason {shown.finish_reason!r}, the "
                            f"receipt signs {output.finish_reason!r}")  # fmt: skip
    if shown.usage is not None and (
        shown.usage.get("prompt_tokens") != output.prompt_tokens
        or shown.usage.get("completion_tokens") != output.completion_tokens
    ):
        return failed(name, "the answer shows other token counts than the receipt signs")
    return replace(signed, detail=f"{signed.detail}; the text shown is the signed answer")


def _clip(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def request_check(sent: ChatRequest, got: ChatRequest | None) -> Check:
    """``input.requested``: the receipt commits to the request sent (see the module docs)."""
    name = "input.requested"
    if got is None:
        return failed(name, "the receipt's request is not available to compare with the sent")
    s, g = sent.sampling, got.sampling
    wanted: dict[str, tuple[object, object]] = {
        "task": (sent.task, got.task),
        "messages": (sent.messages, got.messages),
        "prompt": (sent.prompt, got.prompt),
        "stop": (sent.stop, got.stop),
        "sampling": (replace(s, seed=None), replace(g, seed=None)),
    }
    if s.seed is not None:
        wanted["seed"] = (s.seed, g.seed)
    if sent.max_tokens is not None:
        wanted["max_tokens"] = (sent.max_tokens, got.max_tokens)
    differ = [key for key, (a, b) in wanted.items() if a != b]
    if differ:
        return failed(name, f"the receipt commits to another request than the one sent "
                            f"(differs in {', '.join(differ)})")  # fmt: skip
    return passed(name, f"the receipt commits to the request sent ({got.digest})")


def chat_report(
    report: VerificationReport,
    shown: Shown,
    got: Receipted,
    model: str | None,
    sent: ChatRequest | None,
    private: bool | None,
) -> VerificationReport:
    """``report`` with the client's checks: ``output.digest`` extended to what the
    answer shows, ``model.requested`` and ``input.requested`` (each not checked when
    the model asked for or the request sent is not known). ``private`` (when known) is
    what was asked: the receipt must match it."""
    signed = next((c for c in report.checks if c.name == "output.digest"), None)
    checks = [shown_check(shown, got.output, signed)]
    if model is None:
        checks.append(not_checked("model.requested", "the model asked for was not given"))
    else:
        checks.append(requested_check(got.bundle, model))
    if sent is None:
        checks.append(not_checked("input.requested", "the request sent was not given"))
    else:
        check = request_check(sent, got.request)
        is_private = got.bundle.receipt.input_commitment is not None
        if check.passed and private is not None and private != is_private:
            want, have = ("private", "public") if private else ("public", "private")
            check = failed("input.requested", f"asked for a {want} receipt, got a {have} one")
        checks.append(check)
    return with_checks(report, *checks)


def _plain(obj: Any) -> Any:
    """A dict of an ``openai`` client object (``to_dict()``, extra fields included), or
    the object itself; the library never imports ``openai``."""
    if isinstance(obj, Mapping):
        return dict(obj)
    for method in ("to_dict", "model_dump"):
        convert = getattr(obj, method, None)
        if callable(convert):
            return convert()
    return obj


def openai_parts(response: Any) -> tuple[Shown, Receipted]:
    """What an ``openai`` client answer shows and the receipt riding on it: a
    ``ChatCompletion`` or ``Completion`` (or its dict), or a stream's chunks in order
    (a list, or the stream itself), the last one carrying the receipt."""
    plain = _plain(response)
    if isinstance(plain, Mapping):
        shown = shown_whole(dict(plain))
        return shown, receipted(shown.extra)
    if isinstance(plain, str | bytes) or not hasattr(plain, "__iter__"):
        raise InputError("give an openai answer, its dict, or a stream's chunks")
    assembly = Assembly()
    for chunk in plain:
        assembly.add(_plain(chunk))
        if assembly.done:
            break
    if assembly.extra is None:
        raise VerificationError("receipt", "no chunk carries a receipt (give them all, in order)")
    got = receipted(assembly.extra)
    return assembly.shown(got.output), got


def asked(
    request: Mapping[str, Any] | None, task: str, model: str | None
) -> tuple[str | None, ChatRequest | None]:
    """The model asked for (given, else the request's) and the canonical form of the
    OpenAI request body sent (the fields given to ``create``), when known."""
    if request is None:
        return model, None
    if not isinstance(request, Mapping):
        raise InputError("request must be the OpenAI request body (a mapping)")
    body = dict(request)
    if model is None and isinstance(body.get("model"), str):
        model = body["model"]
    if model is not None:
        body.setdefault("model", model)
    return model, parse_request(body, task).request


def raise_if_failed(report: VerificationReport) -> None:
    bad = report.first_failure
    if bad is not None:
        raise VerificationError(bad.name, bad.detail)
