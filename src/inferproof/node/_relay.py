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
from collections.abc import Callable

import httpx
from fastapi import FastAPI, Request
from starlette.responses import Response

__all__ = ["create_relay"]

_REQUEST = "message/ohttp-req"
_RESPONSE = "message/ohttp-res"
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
    """An ASGI app relaying ``POST /`` (``message/ohttp-req``) to ``gateway`` (the node's
    ``/.well-known/ohttp-gateway`` URL). ``record`` receives each log line (the tests
    read what the relay wrote).

    Example::

        uvicorn.run(create_relay("https://node.example/.well-known/ohttp-gateway"))
    """
    write = record or log.info
    app = FastAPI(title="inferproof relay", docs_url=None, redoc_url=None, openapi_url=None)
    client = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)

    @app.post("/")
    async def relay(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != _REQUEST:
            return Response(f"a relay takes {_REQUEST}\n", 415, media_type="text/plain")
        body = await _capped(request)
        if body is None:
            return Response("the sealed request is too large\n", 413, media_type="text/plain")
        started = time.monotonic()
        try:
            answer = await client.post(gateway, content=body, headers={"content-type": _REQUEST})
        except httpx.HTTPError as exc:
            write(f"relay: {len(body)} bytes -> gateway unreachable ({type(exc).__name__})")
            return Response("the gateway is unreachable\n", 502, media_type="text/plain")
        took = time.monotonic() - started
        write(f"relay: {len(body)} bytes -> {answer.status_code}, {len(answer.content)} bytes, "
              f"{took * 1000:.0f} ms")  # fmt: skip
        kind = answer.headers.get("content-type", "")
        media = _RESPONSE if kind.startswith(_RESPONSE) else "text/plain"
        return Response(answer.content, answer.status_code, media_type=media,
                        headers={"Cache-Control": "private, no-store"})  # fmt: skip

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.router.on_shutdown.append(client.aclose)
    return app


async def _capped(request: Request) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_RELAYED:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
