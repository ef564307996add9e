"""The node's Oblivious HTTP gateway (RFC 9458), at ``/.well-known/ohttp-gateway``.

``GET`` answers the key configuration (``application/ohttp-keys``, RFC 9540 section 3);
``POST`` takes an encapsulated request (``message/ohttp-req``), opens it with the node's
X25519 key, serves the Binary HTTP request inside on this same app (its own token, in
the sealed request, is what authorises it) and answers the response sealed to that
request (``message/ohttp-res``). A relay in between sees only ciphertext and the node
sees only the relay.
"""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from starlette.responses import Response

from ..confidential import (
    BinaryRequest,
    BinaryResponse,
    Gateway,
    decode_request,
    encode_response,
)
from ..errors import Error
from ._errors import NodeHTTPError, errors
from ._replays import ReplayGuard

__all__ = ["OHTTP_KEYS", "OHTTP_REQUEST", "OHTTP_RESPONSE", "router"]

OHTTP_KEYS = "application/ohttp-keys"
OHTTP_REQUEST = "message/ohttp-req"
OHTTP_RESPONSE = "message/ohttp-res"
# Only the node's API may be reached through the gateway: not the gateway itself (a
# request sealed inside a request), not the explorer's pages.
_ALLOWED_PREFIX = "/v1/"
_INTERNAL = "http://inferproof.internal"

router = APIRouter(include_in_schema=False)


def _gateway(request: Request) -> tuple[Gateway, bytes, ReplayGuard]:
    state = request.app.state
    gateway, keys, _ = state.service.ohttp()
    guard: ReplayGuard | None = getattr(state, "ohttp_replays", None)
    if guard is None:
        guard = state.ohttp_replays = ReplayGuard(state.service.replays())
    return gateway, keys, guard


@router.get("/.well-known/ohttp-gateway", responses=errors(429))
async def ohttp_keys(request: Request) -> Response:
    _, keys, _ = _gateway(request)
    return Response(keys, media_type=OHTTP_KEYS, headers={"Cache-Control": "max-age=3600"})


@router.post("/.well-known/ohttp-gateway", responses=errors(400, 413, 415, 429))
async def ohttp_gateway(request: Request) -> Response:
    if request.headers.get("content-type", "").split(";")[0].strip() != OHTTP_REQUEST:
        raise NodeHTTPError(415, f"an Oblivious HTTP request is {OHTTP_REQUEST}")
    gateway, _, guard = _gateway(request)
    sealed = await request.body()
    try:
        inner, reply = gateway.open(sealed)
        message = decode_request(inner)
    except Error as exc:
        raise NodeHTTPError(400, f"not an Oblivious HTTP request for this node: {exc}") from None
    guard.check(reply.enc, _header(message, "date"))
    if not message.path.startswith(_ALLOWED_PREFIX):
        refusal = b"only the node's /v1/ API is served through the gateway"
        answer = BinaryResponse(403, (("content-type", "text/plain"),), refusal)
    else:
        answer = await _serve(request, message)
    return Response(
        reply(encode_response(answer)),
        media_type=OHTTP_RESPONSE,
        headers={"Cache-Control": "private, no-store"},
    )


def _header(message: BinaryRequest, name: str) -> str | None:
    return next((v for k, v in message.headers if k == name), None)


async def _serve(request: Request, message: BinaryRequest) -> BinaryResponse:
    """Serve ``message`` on this app, in process, as if it had come over the network."""
    headers = [(k, v) for k, v in message.headers if k not in ("host", "content-length")]
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url=_INTERNAL) as client:
        answer = await client.request(
            message.method, message.path, headers=headers, content=message.content
        )
    kept = tuple(
        (k.lower(), v) for k, v in answer.headers.items()
        if k.lower() not in ("content-length", "transfer-encoding", "connection")
    )  # fmt: skip
    return BinaryResponse(answer.status_code, kept, answer.content)
