"""Verifiable chat: every answer of a GGUF model carries a signed, logged receipt.

This mirrors :meth:`LocalNode.infer` for language models. The receipt's input is
the digest of the canonical request (messages or prompt, model digest, every
sampling parameter, seed, max tokens, stop strings); its subject is the digest
of the output (exact text, finish reason, token counts). A private request puts
salted commitments in both places and hands the opening to the caller only.
The runtime block records llama.cpp's version, the CPU features and every pinned
setting, so a verifier can re-run the request and require the identical answer.

Relay mode forwards a request to an upstream OpenAI-compatible server and signs
what came back, saying so: the receipt's proof is ``relay`` ("relayed from
<upstream>: output not computed by this node"), never re-execution, and a policy
decides whether it accepts such receipts (they mean something when the relaying
node is hardware-attested).

Example::

    node = LocalNode()
    push_gguf(node, Path("tiny.gguf"), name="tiny")
    result = chat(node, "tiny", {"messages": [{"role": "user", "content": "Hi"}],
                                 "temperature": 0, "max_tokens": 32})
    print(result.response["choices"][0]["message"]["content"])
    result.bundle.write(Path("answer.bundle.json"))
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import weakref
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._canonical import canonical_json, is_digest, sha256_digest
from ._local import LocalNode, _now, _read_model
from .errors import InputError
from .hub import BlobCorruptError, ModelRecord
from .hub._registry import LATEST
from .receipts import Bundle, build_statement, commit_input
from .receipts._statement import MAX_NONCE_CHARS
from .runtime import _llm_openai as oai
from .runtime._llm import DEFAULT_MAX_CTX, MAX_TOKENS_CAP, LlamaModel, LlamaSettings, Prompt
from .runtime._llm_gguf import file_digest, gguf_signature, is_gguf
from .runtime._llm_output import SALT_BYTES, SALT_SCHEME, ChatOpening, ChatOutput, commit_output
from .runtime._llm_request import MAX_SEED, ChatRequest, parse_request
from .runtime._llm_upstream import (
    UpstreamError,
    check_upstream,
    post_chat,
    relay_claim,
    relay_model_digest,
    upstream_body,
    upstream_output,
)

REEXECUTION_PROOF = "reexecution"
RELAY_PROOF = "relay"

__all__ = [
    "ChatConfig",
    "ChatResult",
    "ChatStream",
    "ModelNotFound",
    "UpstreamError",
    "chat",
    "chat_models",
    "chat_stream",
    "complete",
    "complete_stream",
    "configure",
    "push_gguf",
    "receipt_digest",
    "relay_chat",
    "resolve_chat_model",
    "unload",
]


class ModelNotFound(InputError):
    """No GGUF model under that reference (an HTTP layer answers 404, OpenAI's
    ``model_not_found``)."""


@dataclass(frozen=True)
class ChatConfig:
    """How a node runs GGUF models: llama.cpp settings and the caps on requests."""

    settings: LlamaSettings = field(default_factory=LlamaSettings)
    max_tokens_cap: int = MAX_TOKENS_CAP
    max_ctx: int = DEFAULT_MAX_CTX


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


def receipt_digest(bundle: Bundle) -> str:
    return sha256_digest(canonical_json(bundle.envelope))


# -- models --------------------------------------------------------------------
class _Models:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.config = ChatConfig()
        self.loaded: dict[str, LlamaModel] = {}


# Loaded models per node, kept beside the node (LocalNode caches only ONNX sessions).
_CACHES: weakref.WeakKeyDictionary[LocalNode, _Models] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _models(node: LocalNode) -> _Models:
    with _CACHES_LOCK:
        models = _CACHES.get(node)
        if models is None:
            models = _CACHES[node] = _Models()
        return models


def configure(node: LocalNode, config: ChatConfig) -> None:
    """Set how ``node`` runs GGUF models; models already loaded are unloaded."""
    models = _models(node)
    with models.lock:
        models.config = config
    unload(node)


def unload(node: LocalNode) -> None:
    """Free the llama.cpp models ``node`` has loaded (for :meth:`LocalNode.close`)."""
    models = _models(node)
    with models.lock:
        loaded = list(models.loaded.values())
        models.loaded.clear()
    for model in loaded:
        model.close()


def _load(node: LocalNode, digest: str) -> LlamaModel:
    models = _models(node)
    with models.lock:
        model = models.loaded.get(digest)
        if model is not None:
            return model
        cfg = models.config
        path = node.hub.blobs.path(digest)
        source: bytes | Path
        if path is not None:
            # Load by path (memory-mapped), after checking the file's digest.
            actual = file_digest(path)
            if actual != digest:
                raise BlobCorruptError(f"blob {digest} is corrupt: its bytes hash to {actual}")
            source = path
        else:
            source = node.hub.load(digest)
        model = LlamaModel(
            source, cfg.settings, max_tokens_cap=cfg.max_tokens_cap, max_ctx=cfg.max_ctx
        )
        models.loaded[digest] = model
        return model


def push_gguf(
    node: LocalNode,
    model: Path | bytes,
    *,
    name: str,
    version: str | None = None,
    sign_key: Path | None = None,
    signature: bytes | None = None,
) -> ModelRecord:
    """Check a GGUF model loads in llama.cpp, store it in the hub, optionally sign it
    (``sign_key``) or record a publisher's ready signature bundle (``signature``).

    :meth:`LocalNode.push` does the work (it takes GGUF and ONNX alike); this only
    refuses anything that is not GGUF."""

    data = _read_model(model)
    gguf_signature(data)  # "not a GGUF file" before anything is stored
    return node.push(data, name=name, version=version, sign_key=sign_key, signature=signature)


def check_gguf(node: LocalNode, data: bytes) -> None:
    """A well-formed GGUF header, then llama.cpp must load it (it is then warm)."""
    gguf_signature(data)
    _load(node, node.hub.blobs.put(data))


def resolve_chat_model(
    node: LocalNode, ref: str
) -> tuple[ModelRecord | None, dict[str, Any], LlamaModel]:
    """Find a GGUF model by digest, ``name[:version]`` or file path; load it once."""
    path = Path(ref)
    if not is_digest(ref) and (path.suffix == ".gguf" or os.sep in ref):
        if not path.is_file():
            raise ModelNotFound(f"model file {path} does not exist")
        data = path.read_bytes()
        if not is_gguf(data):
            raise InputError(f"{path} is not a GGUF model")
        digest = node.hub.blobs.put(data)
        return None, {"digest": digest, "name": path.stem, "version": None}, _load(node, digest)
    try:
        record = node.hub.resolve(ref)
    except InputError as exc:
        raise ModelNotFound(str(exc)) from None
    if record.format != "gguf":
        raise InputError(f"model {ref!r} is an {record.format} model, not a GGUF chat model")
    block = {"digest": record.digest, "name": record.name, "version": record.version}
    return record, block, _load(node, record.digest)


def chat_models(node: LocalNode) -> dict[str, Any]:
    """The hub's GGUF models as OpenAI's ``GET /v1/models`` list."""
    entries = [
        (
            r.name if r.version == LATEST else f"{r.name}:{r.version}",
            int(r.created_at),
            r.publisher or "inferproof",
        )
        for r in node.hub.list()
        if r.format == "gguf"
    ]
    return oai.models_list(entries)


# -- receipts --------------------------------------------------------------------
def _check_nonce(nonce: str | None) -> None:
    # The statement builder checks this too; checking first saves a wasted generation.
    if nonce is not None and not 0 < len(nonce) <= MAX_NONCE_CHARS:
        raise InputError(f"nonce must be 1 to {MAX_NONCE_CHARS} characters")


@dataclass(frozen=True)
class _Issue:
    """Everything the receipt states besides the request and output."""

    record: ModelRecord | None
    model_block: dict[str, Any]
    runtime: dict[str, Any]
    proofs: list[dict[str, Any]]
    mode: str
    started: str
    finished: str


def _sign(
    node: LocalNode,
    issue: _Issue,
    request: ChatRequest,
    output: ChatOutput,
    *,
    private: bool,
    nonce: str | None,
) -> tuple[Bundle, ChatOpening | None]:
    """Build the chat receipt statement; :meth:`LocalNode.issue` signs and logs it."""
    record = issue.record
    signature = node.hub.signature(record) if record else None
    model_block = {
        **issue.model_block,
        "signature": record.signature_digest if record else None,
        "publisher": record.publisher if record else None,
    }
    salt = os.urandom(SALT_BYTES) if private else None
    if salt is not None:
        input_block = {"commitment": commit_input(request.digest, salt), "scheme": SALT_SCHEME}
        subject = commit_output(output.digest, salt)
    else:
        input_block, subject = {"digest": request.digest}, output.digest
    statement = build_statement(
        output_digest=subject,
        model=model_block,
        input_block=input_block,
        runtime=issue.runtime,
        environment=node.environment(),
        proofs=[{"type": "signature", "key": node.node_id}, *issue.proofs],
        node_id=node.node_id,
        nonce=nonce,
        started=issue.started,
        finished=issue.finished,
        parameters={
            "task": request.task,
            "mode": issue.mode,
            "finish_reason": output.finish_reason,
            "usage": output.to_json()["usage"],
        },
    )
    bundle = node.issue(
        statement,
        outputs={} if salt else output.to_json(),
        inputs=None if salt else request.to_json(),
        model_signature=signature,
    )
    return bundle, (ChatOpening(salt, request, output) if salt else None)


def _extra(bundle: Bundle, opening: ChatOpening | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"receipt_digest": receipt_digest(bundle), "bundle": bundle.to_json()}
    if opening is not None:
        extra["opening"] = opening.to_json()
    return extra


# -- local generation ----------------------------------------------------------------
@dataclass(frozen=True)
class _Call:
    model_ref: str
    record: ModelRecord | None
    block: dict[str, Any]
    model: LlamaModel
    request: ChatRequest
    prompt: Prompt
    include_usage: bool


def _prepare(node: LocalNode, task: str, model_ref: str, request: Mapping[str, Any]) -> _Call:
    if not isinstance(request, Mapping):
        raise InputError("request must be a JSON object")
    if request.get("model", model_ref) != model_ref:
        raise InputError(f"request names model {request.get('model')!r}, not {model_ref!r}")
    parsed = parse_request({**request, "model": model_ref}, task)
    record, block, model = resolve_chat_model(node, model_ref)
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
    return _Call(model_ref, record, block, model, req, prompt, parsed.include_usage)


def _generate(
    node: LocalNode, call: _Call, *, private: bool, nonce: str | None
) -> Generator[str, None, tuple[Bundle, ChatOpening | None, ChatOutput]]:
    """Yield text deltas; return the signed bundle once the answer is complete."""
    started = _now()
    stream = call.model.stream(call.request, call.prompt)
    try:
        yield from stream
    finally:
        stream.close()
    finished = _now()
    gen = stream.result
    assert gen is not None  # the stream ran to its end
    output = ChatOutput(gen.text, gen.finish_reason, gen.prompt_tokens, gen.completion_tokens)
    runtime = call.model.runtime_info()
    issue = _Issue(
        call.record,
        call.block,
        runtime,
        [{"type": REEXECUTION_PROOF, "engine": runtime["engine"], "settings": runtime["settings"]}],
        "vanilla",
        started,
        finished,
    )
    bundle, opening = _sign(node, issue, call.request, output, private=private, nonce=nonce)
    return bundle, opening, output


def _run(
    node: LocalNode,
    task: str,
    model_ref: str,
    request: Mapping[str, Any],
    private: bool,
    nonce: str | None,
) -> ChatResult:
    _check_nonce(nonce)
    call = _prepare(node, task, model_ref, request)
    gen = _generate(node, call, private=private, nonce=nonce)
    while True:
        try:
            next(gen)
        except StopIteration as done:
            bundle, opening, output = done.value
            break
    runtime = bundle.receipt.runtime
    response = oai.response(
        task,
        oai.new_id(task),
        int(time.time()),
        model_ref,
        output,
        oai.fingerprint(runtime),
        _extra(bundle, opening),
    )
    return ChatResult(response, bundle, opening, call.request, output)


def chat(
    node: LocalNode,
    model_ref: str,
    request: Mapping[str, Any],
    *,
    private: bool = False,
    nonce: str | None = None,
) -> ChatResult:
    """Answer an OpenAI-shaped chat request (``messages``, ``max_tokens``,
    ``temperature``, ``seed``…) with the model ``model_ref``; sign and log it.

    ``private=True`` commits to salted digests of the request and the answer; the
    opening is in :attr:`ChatResult.opening` (and the response's ``inferproof``
    field). Bad requests raise :class:`InputError`.
    """
    return _run(node, "chat", model_ref, request, private, nonce)


def complete(
    node: LocalNode,
    model_ref: str,
    request: Mapping[str, Any],
    *,
    private: bool = False,
    nonce: str | None = None,
) -> ChatResult:
    """As :func:`chat` for a text completion (``prompt`` instead of ``messages``)."""
    return _run(node, "completion", model_ref, request, private, nonce)


class ChatStream:
    """OpenAI stream events (dicts) for one request; the last one carries the
    receipt in its ``inferproof`` field. :attr:`result` is set at the end.

    Example::

        stream = chat_stream(node, "tiny", {"messages": [...], "stream": True})
        for event in stream:
            send_sse(event)
        bundle = stream.result.bundle
    """

    def __init__(
        self, node: LocalNode, task: str, call: _Call, private: bool, nonce: str | None
    ) -> None:
        self.result: ChatResult | None = None
        self._it = self._events(node, task, call, private, nonce)

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> dict[str, Any]:
        return next(self._it)

    def close(self) -> None:
        """Stop early (no receipt is made for an answer never finished)."""
        self._it.close()

    def _events(
        self, node: LocalNode, task: str, call: _Call, private: bool, nonce: str | None
    ) -> Generator[dict[str, Any], None, None]:
        rid, created, model = oai.new_id(task), int(time.time()), call.model_ref
        fp = oai.fingerprint(call.model.runtime_info())
        if task == "chat":
            yield oai.chunk(task, rid, created, model, first=True, text="", system_fingerprint=fp)
        gen = _generate(node, call, private=private, nonce=nonce)
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
        last[oai.EXTRA_FIELD] = _extra(bundle, opening)
        self.result = ChatResult(
            oai.response(task, rid, created, model, output, fp, last[oai.EXTRA_FIELD]),
            bundle,
            opening,
            call.request,
            output,
        )
        yield last


def chat_stream(
    node: LocalNode,
    model_ref: str,
    request: Mapping[str, Any],
    *,
    private: bool = False,
    nonce: str | None = None,
) -> ChatStream:
    """As :func:`chat`, streamed. The request is checked (and bad requests raise
    :class:`InputError`) before this returns, so an error never starts a stream."""
    _check_nonce(nonce)
    return ChatStream(node, "chat", _prepare(node, "chat", model_ref, request), private, nonce)


def complete_stream(
    node: LocalNode,
    model_ref: str,
    request: Mapping[str, Any],
    *,
    private: bool = False,
    nonce: str | None = None,
) -> ChatStream:
    """As :func:`complete`, streamed."""
    _check_nonce(nonce)
    call = _prepare(node, "completion", model_ref, request)
    return ChatStream(node, "completion", call, private, nonce)


# -- relay -------------------------------------------------------------------------
def relay_chat(
    node: LocalNode,
    upstream: str,
    request: Mapping[str, Any],
    *,
    api_key: str | None = None,
    private: bool = False,
    nonce: str | None = None,
    timeout: float = 120.0,
) -> ChatResult:
    """Forward an OpenAI-shaped chat request to ``upstream`` (a base URL such as
    ``https://api.example.com/v1``), sign what comes back and log it.

    The receipt's proof is ``relay`` and says "relayed from <upstream>: output not
    computed by this node"; the request is committed as for a local answer (the
    model digest names the upstream and model name). Parameters only llama.cpp
    knows (top_k, min_p, repeat_penalty) are refused, and the answer is fetched
    whole (``stream`` is not forwarded).
    """
    _check_nonce(nonce)
    base = check_upstream(upstream)
    if not isinstance(request, Mapping):
        raise InputError("request must be a JSON object")
    parsed = parse_request(dict(request), "chat", relay=True)
    digest = relay_model_digest(base, parsed.model_ref)
    req = parsed.request.bind(digest, max_tokens=parsed.request.max_tokens)
    started = _now()
    body = upstream_body(req, parsed.model_ref)
    answer = post_chat(f"{base}/chat/completions", body, api_key, timeout)
    finished = _now()
    output, info = upstream_output(answer)
    runtime = {
        "engine": "relay",
        "upstream": base,
        "upstream_model": info["model"],
        "upstream_id": info["id"],
        "upstream_fingerprint": info["system_fingerprint"],
    }
    block = {
        "digest": digest,
        "name": parsed.model_ref,
        "version": None,
        "format": "relay",
        "upstream": base,
    }
    proof = {"type": RELAY_PROOF, "upstream": base, "claim": relay_claim(base)}
    issue = _Issue(None, block, runtime, [proof], "relay", started, finished)
    bundle, opening = _sign(node, issue, req, output, private=private, nonce=nonce)
    response = oai.response(
        "chat",
        oai.new_id("chat"),
        int(time.time()),
        parsed.model_ref,
        output,
        info["system_fingerprint"],
        _extra(bundle, opening),
    )
    return ChatResult(response, bundle, opening, req, output)
