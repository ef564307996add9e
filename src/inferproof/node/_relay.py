"""An Oblivious HTTP relay (RFC 9458 section 2.1): forwards sealed requests to one
gateway and their sealed answers back, and nothing else.

The relay cannot read what it forwards (the requests are sealed to the gateway's key)
and keeps the client's identity from the gateway: the forwarded request carries only
its content type and body, never the client's address, cookies, authorisation or any
other header (RFC 9458 section 6.2). What it logs is a size, a status and a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

import httpx
from fastapi import FastAPI, Request
from starlette.responses import Response, StreamingResponse

__all__ = ["create_relay"]

# Each request type and the answer type it gets (RFC 9458 section 9; the chunked
# draft's section 3).
_ANSWERS = {
    "message/ohttp-req": "message/ohttp-res",
    "message/ohttp-chunked-req": "message/ohttp-chunked-res",
}
_KEYS = "application/ohttp-keys"
# A key configuration list is a few hundred bytes; anything much larger is not one.
_MAX_KEYS = 64 * 1024
# The largest sealed request forwarded: the node's body cap (16 MiB) and the
# encapsulation around it; a relay is not a place to buffer more.
MAX_RELAYED = 16 * 1024 * 1024 + 4096
log = logging.getLogger("inferproof.relay")


def create_relay(
    gateway: str,
    *,
    timeout: float = 120.0,
    transport: httpx.AsyncBaseTransport | None = None,
    record: Callable[[str], None] | None = None,
) -> FastAPI:
    """An ASGI app relaying ``POST /`` (``message/ohttp-req``, or the chunked
    ``message/ohttp-chunked-req``) to ``gateway`` (the node's
    ``/.well-known/ohttp-gateway`` URL), streaming each answer back as it arrives.
    ``GET /`` forwards the gateway's key configuration, so a client need never reach
    the node itself. ``record`` receives each log line (the tests read what the relay
    wrote).

    Example::

        uvicorn.run(create_relay("https://node.example/.well-known/ohttp-gateway"))
    """
    write = record or log.info
    app = FastAPI(title="inferproof relay", docs_url=None, redoc_url=None, openapi_url=None)
    client = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)

    @app.post("/")
    async def relay(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind not in _ANSWERS:
            return _text(f"a relay takes {' or '.join(_ANSWERS)}", 415)
        body = await _capped(request)
        if body is None:
            return _text("the sealed request is too large", 413)
        started = time.monotonic()
        try:
            sent = client.build_request("POST", gateway, content=body,
                                        headers={"content-type": kind})  # fmt: skip
            answer = await client.send(sent, stream=True)
        except httpx.HTTPError as exc:
            write(f"relay: {len(body)} bytes -> gateway unreachable ({type(exc).__name__})")
            return _text("the gateway is unreachable", 502)
        media = answer.headers.get("content-type", "").split(";")[0].strip()
        if answer.status_code != 200 or media != _ANSWERS[kind]:
            # The gateway refused the sealed request itself: pass its short reason on.
            refusal = await _bounded(answer)
            write(f"relay: {len(body)} bytes -> {answer.status_code}, {len(refusal)} bytes")
            return _text(refusal.decode("utf-8", "replace").strip(), answer.status_code)
        return StreamingResponse(
            _forward(answer, len(body), started, write),
            media_type=media,
            headers={"Cache-Control": "private, no-store", "Incremental": "?1"},
        )

    @app.get("/")
    async def keys() -> Response:
        try:
            answer = await client.get(gateway)
        except httpx.HTTPError as exc:
            write(f"relay: keys -> gateway unreachable ({type(exc).__name__})")
            return _text("the gateway is unreachable", 502)
        if answer.status_code != 200 or len(answer.content) > _MAX_KEYS:
            return _text("the gateway serves no key configuration", 502)
        write(f"relay: keys -> {len(answer.content)} bytes")
        return Response(answer.content, media_type=_KEYS, headers={"Cache-Control": "max-age=3600"})

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.router.on_shutdown.append(client.aclose)
    return app


def _text(message: str, status: int) -> Response:
    return Response(message + "\n", status, media_type="text/plain")


async def _bounded(answer: httpx.Response) -> bytes:
    """At most a few KiB of a refusal: it is only ever a short message."""
    out = bytearray()
    try:
        async for chunk in answer.aiter_raw():
            out += chunk
            if len(out) > 4096:
                break
    finally:
        await answer.aclose()
    return bytes(out[:4096])


async def _forward(
    answer: httpx.Response, sent: int, started: float, write: Callable[[str], None]
) -> AsyncIterator[bytes]:
    size = 0
    try:
        async for chunk in answer.aiter_raw():
            size += len(chunk)
            yield chunk
    finally:
        await answer.aclose()
        took = time.monotonic() - started
        write(f"relay: {sent} bytes -> {answer.status_code}, {size} bytes, {took * 1000:.0f} ms")


async def _capped(request: Request) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_RELAYED:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
