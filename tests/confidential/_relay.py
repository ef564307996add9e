"""A relay on loopback in front of a node's gateway, recording what it forwards and
what it logs (the tests assert it saw only ciphertext)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import uvicorn

from inferproof.node._relay import create_relay
from tests.node.conftest import Running, serve_thread


class Recording(httpx.AsyncBaseTransport):
    """The relay's outgoing network, recorded: every request it forwards to the node."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.sent.append(request)
        return await self.inner.handle_async_request(request)


@dataclass
class Relay:
    url: str
    forwarded: Recording
    lines: list[str] = field(default_factory=list)

    def posted(self, since: int = 0) -> list[bytes]:
        """The sealed requests forwarded since the ``since``-th request."""
        return [r.content for r in self.forwarded.sent[since:] if r.method == "POST"]


@contextlib.contextmanager
def relay_for(node: Running) -> Iterator[Relay]:
    """A relay serving on loopback in front of ``node``, stopped afterwards."""
    recording, lines = Recording(), []
    app = create_relay(node.url + "/.well-known/ohttp-gateway", transport=recording,
                       record=lines.append)  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    url, thread = serve_thread(server)
    try:
        yield Relay(url + "/", recording, lines)
    finally:
        server.should_exit = True
        thread.join(30)
