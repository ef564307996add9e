"""Serve a request opened by the gateway on this same app, in process, streaming.

The request goes through the whole app (its guard, limits and routes) as if it had
come over the network from the relay; its answer comes back as the app writes it, so
a streamed chat answer can be sealed chunk by chunk. The app is called through ASGI
itself: httpx's in-process transport reads a whole answer before it returns one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..confidential import BinaryRequest
from ..errors import Error

__all__ = ["InnerResponse", "serve_inside"]

_HOST = "inferproof.internal"
# Headers the sealed request may not set for itself: the hop's framing, and the host,
# which is this node's own.
_DROPPED = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass
class InnerResponse:
    """The status and headers of an answer, and its body as the app writes it."""

    status: int
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes]


async def serve_inside(app: Any, message: BinaryRequest, client: Any = None) -> InnerResponse:
    """Call ``app`` with ``message`` and wait for the start of its answer. ``client`` is
    the outer connection's address (the relay's), so per-client limits apply to it."""
    url = urlsplit(message.path)
    headers = [(b"host", _HOST.encode())] + [
        (k.encode("latin-1"), v.encode("latin-1")) for k, v in message.headers if k not in _DROPPED
    ]
    headers.append((b"content-length", str(len(message.content)).encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": message.method, "scheme": "http", "path": url.path,
        "raw_path": url.path.encode("latin-1"), "query_string": url.query.encode("latin-1"),
        "root_path": "", "headers": headers, "client": client, "server": (_HOST, 80),
    }  # fmt: skip
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    ended = asyncio.Event()
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": message.content, "more_body": False}
        await ended.wait()  # a streaming answer listens for the client going away
        return {"type": "http.disconnect"}

    async def send(event: dict[str, Any]) -> None:
        await sent.put(event)

    task = asyncio.ensure_future(app(scope, receive, send))
    task.add_done_callback(lambda _: sent.put_nowait({"type": "_done"}))
    start = await sent.get()
    if start["type"] != "http.response.start":
        ended.set()
        await _finish(task)
        return InnerResponse(500, [("content-type", "text/plain")], _once(b"no answer\n"))
    kept = [
        (k.decode("latin-1").lower(), v.decode("latin-1"))
        for k, v in start.get("headers", [])
        if k.decode("latin-1").lower() not in _DROPPED
    ]
    return InnerResponse(start["status"], kept, _body(sent, ended, task))


async def _body(
    sent: asyncio.Queue[dict[str, Any]], ended: asyncio.Event, task: asyncio.Future[Any]
) -> AsyncIterator[bytes]:
    try:
        while True:
            event = await sent.get()
            if event["type"] != "http.response.body":
                # The app stopped before its answer's end: say so, so the gateway
                # never seals the final chunk of a cut answer.
                raise Error("the node's answer broke off before its end")
            if event.get("body"):
                yield event["body"]
            if not event.get("more_body", False):
                break
    finally:
        ended.set()
        await _finish(task)


async def _finish(task: asyncio.Future[Any]) -> None:
    if not task.done():
        task.cancel()
    # An exception of the app has already been answered (a 500) by its own error
    # middleware; the cut answer is what tells the client.
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
