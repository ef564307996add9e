"""The node's Oblivious HTTP gateway (RFC 9458), at ``/.well-known/ohttp-gateway``.

``GET`` answers the key configuration (``application/ohttp-keys``, RFC 9540 section 3);
``POST`` takes an encapsulated request (``message/ohttp-req``), opens it with the node's
X25519 key, serves the Binary HTTP request inside on this same app (its own token, in
the sealed request, is what authorises it) and answers the response sealed to that
request (``message/ohttp-res``). A relay in between sees only ciphertext and the node
sees only the relay.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from ..confidential import (
    CHUNK_SIZE,
    RESPONSE_END,
    BinaryRequest,
    BinaryResponse,
    ChunkedResponse,
    Gateway,
    content_chunk,
    decode_request,
    encode_response,
    open_chunked_request,
    response_head,
)
from ..errors import Error
from ._errors import NodeHTTPError, errors
from ._inprocess import InnerResponse, serve_inside
from ._replays import ReplayGuard

__all__ = [
    "OHTTP_CHUNKED_REQUEST",
    "OHTTP_CHUNKED_RESPONSE",
    "OHTTP_KEYS",
    "OHTTP_REQUEST",
    "OHTTP_RESPONSE",
    "router",
]

OHTTP_KEYS = "application/ohttp-keys"
OHTTP_REQUEST = "message/ohttp-req"
OHTTP_RESPONSE = "message/ohttp-res"
# draft-ietf-ohai-chunked-ohttp-08 section 3's media types.
OHTTP_CHUNKED_REQUEST = "message/ohttp-chunked-req"
OHTTP_CHUNKED_RESPONSE = "message/ohttp-chunked-res"
# Only the node's API may be reached through the gateway: not the gateway itself (a
# request sealed inside a request), not the explorer's pages.
_ALLOWED_PREFIX = "/v1/"

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


@router.post("/.well-known/ohttp-gateway", responses=errors(400, 413, 415, 429, 503))
async def ohttp_gateway(request: Request) -> Response:
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in (OHTTP_REQUEST, OHTTP_CHUNKED_REQUEST):
        raise NodeHTTPError(
            415, f"an Oblivious HTTP request is {OHTTP_REQUEST} or {OHTTP_CHUNKED_REQUEST}"
        )
    gateway, _, guard = _gateway(request)
    sealed = await request.body()
    try:
        if kind == OHTTP_REQUEST:
            inner, reply = gateway.open(sealed)
            enc = reply.enc
        else:
            inner, writer = open_chunked_request(gateway, sealed)
            enc = writer.enc
        message = decode_request(inner)
    except Error as exc:
        raise NodeHTTPError(400, f"not an Oblivious HTTP request for this node: {exc}") from None
    # The replay record may be a database: its round trip stays off the event loop.
    await asyncio.to_thread(guard.check, enc, _header(message, "date"))
    answer = await _answer(request, message)
    if kind == OHTTP_REQUEST:
        body = b"".join([piece async for piece in answer.body])
        whole = BinaryResponse(answer.status, tuple(answer.headers), body)
        return Response(reply(encode_response(whole)), media_type=OHTTP_RESPONSE, headers=_PRIVATE)
    if not _streamed(answer):
        # An answer the app writes at once is sealed at once: one write, not four.
        return Response(
            b"".join([piece async for piece in _sealed_stream(writer, answer)]),
            media_type=OHTTP_CHUNKED_RESPONSE, headers=_PRIVATE,
        )  # fmt: skip
    return StreamingResponse(
        _sealed_stream(writer, answer),
        media_type=OHTTP_CHUNKED_RESPONSE,
        # Draft section 3: tell intermediaries each piece is worth passing on at once.
        headers={**_PRIVATE, "Incremental": "?1"},
    )


def _streamed(answer: InnerResponse) -> bool:
    kind = next((v for k, v in answer.headers if k == "content-type"), "")
    return kind.split(";")[0].strip() == "text/event-stream"


_PRIVATE = {"Cache-Control": "private, no-store"}
# Content per sealed chunk: the draft's 2^14 (section 4) less the two-byte length that
# content_chunk puts before it (RFC 9000 section 16: two bytes hold up to 16383).
_PIECE = CHUNK_SIZE - 2


async def _answer(request: Request, message: BinaryRequest) -> InnerResponse:
    if not message.path.startswith(_ALLOWED_PREFIX):
        refusal = b"only the node's /v1/ API is served through the gateway"
        return InnerResponse(403, [("content-type", "text/plain")], _once(refusal))
    return await serve_inside(request.app, message, request.scope.get("client"))


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _sealed_stream(writer: ChunkedResponse, answer: InnerResponse) -> AsyncIterator[bytes]:
    """The answer as a chunked response, sealed as the app writes it. An answer that
    breaks off gets no final chunk, so the client sees it cut, never complete."""
    # The nonce and the head go in one write: the head alone tells a client nothing
    # it can act on before the first piece of the body.
    yield writer.start() + writer.seal(response_head(answer.status, tuple(answer.headers)))
    try:
        async for piece in answer.body:
            for i in range(0, len(piece), _PIECE):
                yield writer.seal(content_chunk(piece[i : i + _PIECE]))
    except Error:
        return
    yield writer.final(RESPONSE_END)


def _header(message: BinaryRequest, name: str) -> str | None:
    return next((v for k, v in message.headers if k == name), None)
