"""The upstream of relay mode: an OpenAI-compatible server this node forwards to.

Nothing here signs anything. The body sent upstream is derived from the
canonical request alone, so a verifier can see exactly what was asked; the
answer is read with a size cap and checked to be an OpenAI ``chat.completion``
before any of it is committed to.
"""

from __future__ import annotations

from typing import Any

import httpx

from .._canonical import canonical_json, parse_json, sha256_digest
from ..errors import InputError, UpstreamError
from ._llm_output import ChatOutput
from ._llm_request import ChatRequest

# An upstream answer is read up to this many bytes: far above any chat completion
# (a 4096-token answer is tens of KiB) and a bound on a hostile upstream.
MAX_UPSTREAM_BYTES = 8 * 1024 * 1024


def relay_claim(upstream: str) -> str:
    return f"relayed from {upstream}: output not computed by this node"


def relay_model_digest(upstream: str, model: str) -> str:
    """The model "digest" of a relayed receipt: of the upstream and model name, since
    this node never sees the weights."""
    return sha256_digest(canonical_json({"upstream": upstream, "model": model}))


def check_upstream(upstream: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(upstream)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"upstream must be an http(s) URL, got {upstream!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InputError("upstream URL must not hold credentials, a query or a fragment")
    return upstream.rstrip("/")


def upstream_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """The body forwarded upstream, derived from the canonical request alone."""
    s = request.sampling
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": r, "content": c} for r, c in request.messages],
        "temperature": s.temperature,
        "top_p": s.top_p,
        "presence_penalty": s.presence_penalty,
        "frequency_penalty": s.frequency_penalty,
        "stream": False,
    }
    if s.seed is not None:
        body["seed"] = s.seed
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    return body


def post_chat(
    url: str,
    body: dict[str, Any],
    api_key: str | None,
    timeout: float,
    *,
    transport: httpx.BaseTransport | None = None,
) -> Any:
    """POST ``body`` to an upstream's chat endpoint; the parsed JSON answer, capped in size.

    ``transport`` replaces the network (an httpx transport, for in-process tests)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, transport=transport) as client,
            client.stream("POST", url, json=body, headers=headers) as resp,
        ):
            data = bytearray()
            for block in resp.iter_bytes():
                data += block
                if len(data) > MAX_UPSTREAM_BYTES:
                    raise UpstreamError(f"upstream answer is over {MAX_UPSTREAM_BYTES} bytes")
            status = resp.status_code
    except httpx.HTTPError as exc:
        raise UpstreamError(f"upstream {url} is unreachable: {exc}") from exc
    if status != 200:
        raise UpstreamError(f"upstream {url} answered HTTP {status}: {bytes(data[:300])!r}")
    try:
        return parse_json(bytes(data), "upstream answer", MAX_UPSTREAM_BYTES)
    except InputError as exc:
        raise UpstreamError(str(exc)) from None


def upstream_output(obj: Any) -> tuple[ChatOutput, dict[str, Any]]:
    try:
        choice = obj["choices"][0]
        text, finish = choice["message"]["content"], choice["finish_reason"]
        usage = obj["usage"]
        prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
    except (KeyError, IndexError, TypeError):
        raise UpstreamError("upstream answer is not an OpenAI chat.completion") from None
    try:
        output = ChatOutput.from_json(
            {
                "text": text,
                "finish_reason": finish,
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
            }
        )
    except InputError as exc:
        raise UpstreamError(f"unusable upstream answer: {exc}") from None
    info = {
        k: obj.get(k) if isinstance(obj.get(k), str) else None
        for k in ("id", "model", "system_fingerprint")
    }
    return output, info
