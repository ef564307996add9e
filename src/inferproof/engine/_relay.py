"""Relay mode: forward a chat request to an upstream OpenAI-compatible server and
sign what came back, saying so.

The receipt's proof is ``relay`` ("relayed from <upstream>: output not computed
by this node"), never re-execution, and a policy decides whether it accepts such
receipts (they mean something when the relaying node is hardware-attested).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from ..errors import InputError
from ..hub import Hub
from ..runtime import (
    check_upstream,
    parse_request,
    post_chat,
    relay_claim,
    relay_model_digest,
    upstream_body,
    upstream_output,
)
from ..runtime import openai_shapes as oai
from ._chat import ChatResult
from ._chatreceipt import ChatIssue, check_nonce, extra, sign_chat
from ._issue import Issuer, utc_now

__all__ = ["RELAY_PROOF", "relay_chat"]

RELAY_PROOF = "relay"


def relay_chat(
    issuer: Issuer,
    hub: Hub,
    upstream: str,
    request: Mapping[str, Any],
    *,
    api_key: str | None = None,
    private: bool = False,
    nonce: str | None = None,
    timeout: float = 120.0,
    transport: httpx.BaseTransport | None = None,
) -> ChatResult:
    """Forward an OpenAI-shaped chat request to ``upstream`` (a base URL such as
    ``https://api.example.com/v1``), sign what comes back and log it.

    The request is committed as for a local answer (the model digest names the
    upstream and model name). Parameters only llama.cpp knows (top_k, min_p,
    repeat_penalty) are refused, and the answer is fetched whole (``stream`` is
    not forwarded). ``transport`` replaces the network (an httpx transport).
    """
    check_nonce(nonce)
    base = check_upstream(upstream)
    if not isinstance(request, Mapping):
        raise InputError("request must be a JSON object")
    parsed = parse_request(dict(request), "chat", relay=True)
    digest = relay_model_digest(base, parsed.model_ref)
    req = parsed.request.bind(digest, max_tokens=parsed.request.max_tokens)
    started = utc_now()
    body = upstream_body(req, parsed.model_ref)
    answer = post_chat(f"{base}/chat/completions", body, api_key, timeout, transport=transport)
    finished = utc_now()
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
    issue = ChatIssue(None, block, runtime, [proof], "relay", started, finished)
    bundle, opening = sign_chat(issuer, hub, issue, req, output, private=private, nonce=nonce)
    response = oai.response(
        "chat",
        oai.new_id("chat"),
        int(time.time()),
        parsed.model_ref,
        output,
        info["system_fingerprint"],
        extra(bundle, opening),
    )
    return ChatResult(response, bundle, opening, req, output)
