"""The request guard: who gets in, how long a body may take, and the metrics.

Review finding 11.7: the token was checked after the body was read, with no read
timeout, so 256 idle uploads without a token filled ``max_inflight`` and every
request, authorised ones included, got 429 while the sockets stayed open. Now:

1. A write (any POST) without a valid token is answered 401 at once, before a
   byte of its body is read.
2. Anonymous requests (the public reads) may take only part of ``max_inflight``;
   the rest is kept for token holders, so readers cannot lock writers out.
3. A body must keep arriving: each chunk within ``body_idle_timeout`` and the
   whole within ``body_timeout``, else the request ends with 408 and the
   connection is closed. Once it is in, the deadlines end: a streamed answer
   (chat, workflow events) may last longer than them.

Header reads are bounded by the server protocol (:mod:`._serve`), since the
application only sees a request once its headers are complete.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import StoreUnavailable
from ._auth import Tokens
from ._chaterrors import chat_unauthorized
from ._errors import error_response, unauthorized
from ._metrics import NodeMetrics

__all__ = ["Guard"]

# Paths that stay answerable when the node is at its in-flight limit.
_UNGUARDED = ("/healthz", "/metrics")
# The OpenAI-compatible routes answer errors in OpenAI's shape.
_CHAT = ("/v1/chat/", "/v1/completions", "/v1/embeddings")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The Oblivious HTTP gateway takes writes without a token of its own: a relay forwards
# them and holds none; the sealed request inside carries its own, checked when the
# gateway serves it on this app (node/_ohttproutes.py).
_OHTTP_GATEWAY = "/.well-known/ohttp-gateway"


class _BodyTimeout(BaseException):
    """The client stopped sending its body. A BaseException, so that no route's
    ``except Exception`` (FastAPI's body parsing has one) turns it into a 400."""


def _token(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


class Guard:
    """Pure ASGI middleware: authentication before the body, in-flight shares, body
    deadlines, 429 over the limit; counts and times every request."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: NodeMetrics,
        tokens: Tokens,
        *,
        max_inflight: int,
        reserved: int,
        body_idle_timeout: float,
        body_timeout: float,
    ) -> None:
        if not 0 <= reserved < max_inflight:
            raise ValueError("reserved must be at least 0 and below max_inflight")
        self.app, self.metrics, self.tokens = app, metrics, tokens
        self.max_inflight, self.reserved = max_inflight, reserved
        self.idle, self.total = body_idle_timeout, body_timeout
        self._inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guarded = not scope["path"].startswith(_UNGUARDED)
        try:
            authorised = self.tokens.check(_token(scope)) is not None
        except StoreUnavailable as exc:  # tokens in a database that is down
            response = error_response(503, str(exc), "unavailable", {"Retry-After": "1"})
            self._count(scope, 503, 0.0)
            await response(scope, receive, send)
            return
        refusal = self._refusal(scope, guarded, authorised)
        if refusal is not None:
            status, response = refusal
            self._count(scope, status, 0.0)
            await response(scope, receive, send)
            return
        self._inflight += guarded
        self.metrics.inflight.inc()
        status, started = 500, time.perf_counter()
        try:
            status = await self._serve(scope, receive, send)
        finally:
            self._inflight -= guarded
            self.metrics.inflight.dec()
            self._count(scope, status, time.perf_counter() - started)

    def _refusal(self, scope: Scope, guarded: bool, authorised: bool) -> tuple[int, Any] | None:
        if scope.get("method") in _WRITES and not authorised and scope["path"] != _OHTTP_GATEWAY:
            if scope["path"].startswith(_CHAT):
                return 401, chat_unauthorized().response()
            err = unauthorized()
            return 401, error_response(401, err.message, headers=err.headers)
        limit = self.max_inflight if authorised else self.max_inflight - self.reserved
        if guarded and self._inflight >= limit:
            who = "" if authorised else " (a share is kept for token holders)"
            return 429, error_response(
                429, f"the node is serving {self._inflight} requests{who}; retry shortly",
                headers={"Retry-After": "1"},
            )  # fmt: skip
        return None

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Run the app with a deadline on the body; return the status sent."""
        status, started, replaced, body_done = 500, False, False, False
        deadline = time.monotonic() + self.total

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                # The body is in: what comes next is the disconnect, whenever the client
                # leaves (a streamed answer listens for it all along).
                return await receive()
            left = min(self.idle, deadline - time.monotonic())
            try:
                message = await asyncio.wait_for(receive(), max(left, 0.0))
            except TimeoutError:
                raise _BodyTimeout from None
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def watch(message: Message) -> None:
            nonlocal status, started, replaced
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                json_type = (b"content-type", b"application/json")
                if status == 413 and json_type not in message.get("headers", []):
                    # Starlette's body limit answers in plain text; every error here is JSON.
                    replaced = True
                    await error_response(413, "the request body is over this node's cap")(
                        scope, receive, send
                    )
                    return
            if not replaced:
                await send(message)

        try:
            await self.app(scope, timed_receive, watch)
        except _BodyTimeout:
            if started:
                raise
            status = 408
            response = error_response(
                408, f"the request body did not arrive in time (each part within "
                f"{self.idle:g} s, all within {self.total:g} s)",
                headers={"Connection": "close"},
            )  # fmt: skip
            await response(scope, receive, send)
        return status

    def _count(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        label = getattr(route, "path", "unmatched")
        method = scope.get("method", "")
        self.metrics.requests.labels(method, label, str(status)).inc()
        if seconds:
            self.metrics.latency.labels(method, label).observe(seconds)
