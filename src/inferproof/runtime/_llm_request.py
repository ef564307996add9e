"""Chat and completion requests: OpenAI-shaped bodies in, one canonical request out.

The canonical request is what a receipt commits to and what a verifier re-runs:
the task, the model digest, the messages (or prompt), the maximum number of new
tokens, every sampling parameter with its default filled in, the seed and the
stop strings. Two requests that produce the same answer by construction have the
same canonical form, and a verifier needs nothing else to reproduce the answer.

Bodies from outside are checked strictly: unknown parameters, wrong types and
out-of-range values are :class:`InputError` naming the field, never ignored, so
a client never believes a parameter took effect when it did not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .._canonical import canonical_json, check_digest, sha256_digest
from ..errors import InputError

TASKS = ("chat", "completion")
# The roles a request may use. ``developer`` is OpenAI's newer name for system
# messages ("developer messages replace the previous system messages", OpenAI's
# chat API reference, o1 and later models).
ROLES = ("system", "developer", "user", "assistant")
# The roles of a canonical request: ``developer`` is normalised to ``system``. It
# means the same (above), and the chat templates GGUF files carry know ``system``
# only: SmolLM2's inserts its own system prompt unless messages[0] is ``system``, and
# ChatML templates write the role's name, which no model trained before the new name
# reads as its instructions. Normalising in the canonical request, rather than keeping
# the caller's word and mapping it at render time, keeps the receipt's promise that
# the canonical request is exactly what the template saw: a verifier renders it as it
# stands, verifiers that predate the role re-execute it, and two requests that give
# the same answer by construction have the same digest.
CANONICAL_ROLES = ("system", "user", "assistant")
_ROLE_ALIASES = {"developer": "system"}
# Caps on untrusted requests. 1 Mi characters of text is far beyond any context
# window this runtime serves and bounds tokenisation work before the context check.
MAX_MESSAGES = 1024
MAX_TEXT_CHARS = 1024 * 1024
# OpenAI's API takes up to 4 stop sequences.
MAX_STOP = 4
MAX_STOP_CHARS = 256
# llama.cpp seeds are uint32 and 0xFFFFFFFF (LLAMA_DEFAULT_SEED) means "random".
MAX_SEED = 0xFFFFFFFE
# OpenAI's documented defaults: temperature 1, top_p 1, no penalties; 16 new tokens
# for a text completion. The llama.cpp extensions default to "off".
DEFAULT_COMPLETION_TOKENS = 16

_COMMON = {
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "stop",
    "n",
    "stream",
    "stream_options",
    "user",
}
_CHAT_KEYS = _COMMON | {"messages", "max_completion_tokens"}
_COMPLETION_KEYS = _COMMON | {"prompt"}
# Parameters only llama.cpp understands: never forwarded to an OpenAI upstream.
EXTENSIONS = ("top_k", "min_p", "repeat_penalty")


@dataclass(frozen=True)
class Sampling:
    """Every parameter of the token sampler, defaults filled in."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "min_p": self.min_p,
            "repeat_penalty": self.repeat_penalty,
            "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class ChatRequest:
    """The canonical request a receipt commits to.

    Example::

        req = parse_request({"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                             "temperature": 0}, "chat")
        canonical = req.bind("sha256:...", max_tokens=64)
        print(canonical.digest)
    """

    task: str
    model: str
    messages: tuple[tuple[str, str], ...] = ()
    prompt: str | None = None
    max_tokens: int | None = None
    sampling: Sampling = Sampling()
    stop: tuple[str, ...] = ()
    template_time: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task": self.task,
            "model": self.model,
            "max_tokens": self.max_tokens,
            "sampling": self.sampling.to_json(),
            "stop": list(self.stop),
        }
        if self.task == "chat":
            out["messages"] = [{"role": r, "content": c} for r, c in self.messages]
        else:
            out["prompt"] = self.prompt
        if self.template_time is not None:
            out["template_time"] = self.template_time
        return out

    @property
    def digest(self) -> str:
        """``sha256`` of the request's RFC 8785 bytes: the receipt's input digest."""
        return sha256_digest(canonical_json(self.to_json()))

    def bind(self, model_digest: str, *, max_tokens: int | None) -> ChatRequest:
        digest = check_digest(model_digest, "model digest")
        return replace(self, model=digest, max_tokens=max_tokens)

    @classmethod
    def from_json(cls, obj: Any) -> ChatRequest:
        """Read a canonical request back (from a bundle or an opening), strictly."""
        if not isinstance(obj, dict):
            raise InputError("canonical request must be an object")
        task = obj.get("task")
        if task not in TASKS:
            raise InputError(f"canonical request task must be one of {', '.join(TASKS)}")
        keys = {"task", "model", "max_tokens", "sampling", "stop", "template_time"}
        keys |= {"messages"} if task == "chat" else {"prompt"}
        _no_unknown(obj, keys, "canonical request")
        sampling = obj.get("sampling")
        if not isinstance(sampling, dict):
            raise InputError("canonical request sampling must be an object")
        _no_unknown(sampling, set(Sampling().to_json()), "canonical request sampling")
        missing = set(Sampling().to_json()) - set(sampling)
        if missing:
            raise InputError(f"canonical request sampling lacks {sorted(missing)}")
        fields = _parse_fields({**sampling, "stop": obj.get("stop")}, relay=False)
        max_tokens = obj.get("max_tokens")
        if max_tokens is not None:
            max_tokens = _int(max_tokens, "max_tokens", 1, 1 << 31)
        template_time = obj.get("template_time")
        if template_time is not None and not _is_utc_second(template_time):
            raise InputError("canonical request template_time must be YYYY-MM-DDTHH:MM:SSZ")
        req = cls(
            task=task,
            model=check_digest(obj.get("model"), "canonical request model"),
            messages=_messages(obj.get("messages"), CANONICAL_ROLES) if task == "chat" else (),
            prompt=_prompt(obj.get("prompt")) if task == "completion" else None,
            max_tokens=max_tokens,
            sampling=fields.sampling,
            stop=fields.stop,
            template_time=template_time,
        )
        if canonical_json(req.to_json()) != canonical_json(obj):
            raise InputError("canonical request is not in canonical form")
        return req


@dataclass(frozen=True)
class ParsedBody:
    """An OpenAI-shaped body, checked: the model reference, the request (model not
    yet bound), whether to stream, and the extensions the client set."""

    model_ref: str
    request: ChatRequest
    stream: bool
    include_usage: bool
    extensions: tuple[str, ...]


@dataclass(frozen=True)
class _Fields:
    sampling: Sampling
    stop: tuple[str, ...]


_UTC_SECOND = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def _is_utc_second(value: Any) -> bool:
    """An RFC 3339 UTC time to the second, as the node writes ``template_time``."""
    if not isinstance(value, str) or not _UTC_SECOND.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _no_unknown(obj: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise InputError(f"{what}: unsupported parameter(s) {unknown}")


def _number(value: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{name} must be a number")
    if not lo <= value <= hi:
        raise InputError(f"{name} must be between {lo:g} and {hi:g} (got {value})")
    return float(value)


def _int(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be an integer")
    if not lo <= value <= hi:
        raise InputError(f"{name} must be between {lo} and {hi} (got {value})")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string")
    if len(value) > MAX_TEXT_CHARS:
        raise InputError(f"{what} is over the cap of {MAX_TEXT_CHARS} characters")
    return value


def _content(value: Any, where: str) -> str:
    """A message's content: a string, or a list of ``{"type": "text", "text"}`` parts
    (joined, since that is what the chat template sees)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}.content must be a string or a list of text parts")
    parts = []
    for j, part in enumerate(value):
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise InputError(f"{where}.content[{j}]: only text parts are supported (got {kind!r})")
        _no_unknown(part, {"type", "text"}, f"{where}.content[{j}]")
        parts.append(_text(part.get("text"), f"{where}.content[{j}].text"))
    return "".join(parts)


def _messages(value: Any, roles: tuple[str, ...] = ROLES) -> tuple[tuple[str, str], ...]:
    """Checked messages, ``developer`` read as ``system`` (see :data:`CANONICAL_ROLES`);
    a canonical request (``roles=CANONICAL_ROLES``) must already be normalised."""
    if not isinstance(value, list) or not value:
        raise InputError("messages must be a non-empty list")
    if len(value) > MAX_MESSAGES:
        raise InputError(f"messages: {len(value)} messages, over the cap of {MAX_MESSAGES}")
    out = []
    total = 0
    for i, msg in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise InputError(f"{where} must be an object with role and content")
        _no_unknown(msg, {"role", "content"}, where)
        role = msg.get("role")
        if role not in roles:
            raise InputError(f"{where}.role must be one of {', '.join(roles)} (got {role!r})")
        if "content" not in msg:
            raise InputError(f"{where} has no content")
        content = _content(msg["content"], where)
        total += len(content)
        if total > MAX_TEXT_CHARS:
            raise InputError(f"messages are over the cap of {MAX_TEXT_CHARS} characters")
        out.append((_ROLE_ALIASES.get(str(role), str(role)), content))
    return tuple(out)


def _prompt(value: Any) -> str:
    if not isinstance(value, str):
        raise InputError("prompt must be one string (lists and token arrays are not supported)")
    return _text(value, "prompt")


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > MAX_STOP:
        raise InputError(f"stop must be a string or a list of up to {MAX_STOP} strings")
    for s in items:
        if not isinstance(s, str) or not 0 < len(s) <= MAX_STOP_CHARS:
            raise InputError(f"each stop sequence must be a string of 1 to {MAX_STOP_CHARS} chars")
    return tuple(items)


def _parse_fields(body: Mapping[str, Any], *, relay: bool) -> _Fields:
    d = Sampling()
    seed = body.get("seed")
    sampling = Sampling(
        temperature=_number(body.get("temperature", d.temperature), "temperature", 0.0, 2.0),
        top_p=_number(body.get("top_p", d.top_p), "top_p", 0.0, 1.0),
        top_k=_int(body.get("top_k", d.top_k), "top_k", 0, 1 << 20),
        min_p=_number(body.get("min_p", d.min_p), "min_p", 0.0, 1.0),
        repeat_penalty=_number(body.get("repeat_penalty", 1.0), "repeat_penalty", 0.0, 10.0),
        presence_penalty=_number(body.get("presence_penalty", 0.0), "presence_penalty", -2, 2),
        frequency_penalty=_number(body.get("frequency_penalty", 0.0), "frequency_penalty", -2, 2),
        seed=None if seed is None else _int(seed, "seed", 0, MAX_SEED),
    )
    if sampling.top_p == 0.0:
        raise InputError("top_p must be above 0")
    if relay:
        given = [k for k in EXTENSIONS if body.get(k) is not None]
        if given:
            names = ", ".join(given)
            raise InputError(f"{names}: llama.cpp parameter(s) not forwarded in relay mode")
    return _Fields(sampling, _stop(body.get("stop")))


def parse_request(body: Any, task: str, *, relay: bool = False) -> ParsedBody:
    """Check an OpenAI-shaped ``/v1/chat/completions`` (``task="chat"``) or
    ``/v1/completions`` (``task="completion"``) body. The model is bound later,
    once the reference is resolved to a digest (:meth:`ChatRequest.bind`)."""
    if task not in TASKS:
        raise InputError(f"task must be one of {', '.join(TASKS)}")
    if not isinstance(body, dict):
        raise InputError("request body must be a JSON object")
    _no_unknown(body, _CHAT_KEYS if task == "chat" else _COMPLETION_KEYS, "request")
    model_ref = body.get("model")
    if not isinstance(model_ref, str) or not model_ref:
        raise InputError("model must be a non-empty string")
    if body.get("n", 1) != 1:
        raise InputError("n must be 1 (one choice per request)")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise InputError("user must be a string")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InputError("stream must be true or false")
    include_usage = _stream_options(body.get("stream_options"), stream)
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if "max_completion_tokens" in body and "max_tokens" in body:
        raise InputError("give max_tokens or max_completion_tokens, not both")
    if max_tokens is not None:
        max_tokens = _int(max_tokens, "max_tokens", 1, 1 << 31)
    fields = _parse_fields(body, relay=relay)
    request = ChatRequest(
        task=task,
        model="",
        messages=_messages(body.get("messages")) if task == "chat" else (),
        prompt=_prompt(body.get("prompt")) if task == "completion" else None,
        max_tokens=max_tokens,
        sampling=fields.sampling,
        stop=fields.stop,
    )
    given = tuple(k for k in EXTENSIONS if body.get(k) is not None)
    return ParsedBody(model_ref, request, stream, include_usage, given)


def _stream_options(value: Any, stream: bool) -> bool:
    if value is None:
        return False
    if not stream:
        raise InputError("stream_options is only allowed with stream: true")
    if not isinstance(value, dict):
        raise InputError("stream_options must be an object")
    _no_unknown(value, {"include_usage"}, "stream_options")
    include = value.get("include_usage", False)
    if not isinstance(include, bool):
        raise InputError("stream_options.include_usage must be true or false")
    return include
