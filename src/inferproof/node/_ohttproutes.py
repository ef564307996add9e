"""The node's Oblivious HTTP gateway (RFC 9458), at ``/.well-known/ohttp-gateway``.

``GET`` answers the key configuration (``application/ohttp-keys``, RFC 9540 section 3);
``POST`` takes an encapsulated request (``message/ohttp-req``), opens it with the node's
X25519 key, serves the Binary HTTP request inside on this same app (its own token, in
the sealed request, is what authorises it) and answers the response sealed to that
request (``message/ohttp-res``). A relay in between sees only ciphertext and the node
sees only the relay.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from email.utils import parsedate_to_datetime
from threading import Lock

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

__all__ = ["OHTTP_KEYS", "OHTTP_REQUEST", "OHTTP_RESPONSE", "ReplayGuard", "router"]

OHTTP_KEYS = "application/ohttp-keys"
OHTTP_REQUEST = "message/ohttp-req"
OHTTP_RESPONSE = "message/ohttp-res"
# RFC 9458 section 6.5.1: a gateway can bound replays with the request's Date and a
# record of the requests it saw within that window. Five minutes either way is the
# clock skew the receipts themselves allow (verify/_verifier.py, CLOCK_SKEW_SECONDS).
REPLAY_WINDOW_SECONDS = 300.0
# Requests remembered at most; past it the oldest go (they are older than the window
# at any rate a node serves: 100 000 in 10 minutes is 166 a second).
_MAX_REMEMBERED = 100_000
# Only the node's API may be reached through the gateway: not the gateway itself (a
# request sealed inside a request), not the explorer's pages.
_ALLOWED_PREFIX = "/v1/"
_INTERNAL = "http://inferproof.internal"

router = APIRouter(include_in_schema=False)


class ReplayGuard:
    """Refuses a sealed request seen before, or one whose Date is outside the window.

    Each encapsulated request carries a fresh ephemeral key (``enc``), so a replay is
    the same ``enc`` again; remembering those seen within the window, and refusing
    anything dated outside it, refuses every replay."""

    def __init__(self, window: float = REPLAY_WINDOW_SECONDS) -> None:
        self.window = window
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._lock = Lock()

    def check(self, enc: bytes, date: str | None, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if date is None:
            raise NodeHTTPError(400, "the sealed request has no Date header (RFC 9458 6.5.1)")
        try:
            sent = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise NodeHTTPError(400, "the sealed request's Date is not an HTTP date") from None
        if abs(now - sent) > self.window:
            raise NodeHTTPError(
                400, f"the sealed request's Date is more than {self.window:g} s from now"
            )
        with self._lock:
            while self._seen and (
                len(self._seen) >= _MAX_REMEMBERED
                or next(iter(self._seen.values())) < now - 2 * self.window
            ):
                self._seen.popitem(last=False)
            if enc in self._seen:
                raise NodeHTTPError(400, "this sealed request was seen before (a replay)")
            self._seen[enc] = now


def _gateway(request: Request) -> tuple[Gateway, bytes, ReplayGuard]:
    state = request.app.state
    gateway, keys, _ = state.service.ohttp()
    guard: ReplayGuard | None = getattr(state, "ohttp_replays", None)
    if guard is None:
        guard = state.ohttp_replays = ReplayGuard()
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
