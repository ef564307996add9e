"""Running one node process under uvicorn, with graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..engine import ChatConfig, LocalNode, RayProver, Storage
from ._app import create_app
from ._config import NodeConfig

# How long a stopping server lets in-flight requests finish before closing them;
# the log is flushed after that either way (LocalNode.close in the app's lifespan).
GRACEFUL_SECONDS = 30
# Idle keep-alive connections are closed after this many seconds.
KEEP_ALIVE_SECONDS = 15
# Seconds between forced GIL hand-offs (CPython default 0.005), see serve().
SWITCH_INTERVAL = 0.0005


class _HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol with a deadline on request headers.

    uvicorn bounds idle keep-alive connections but not a request whose headers
    trickle in byte by byte (slowloris): the application never sees such a request,
    so only the protocol can close it (review finding 11.7)."""

    header_timeout = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _waiting(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._header_timer is None and self._waiting():
            self._header_timer = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if self._waiting() and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._arm()
        super().data_received(data)
        if not self._waiting():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def server_config(app: Any, config: NodeConfig, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration of a node: graceful shutdown, keep-alive and header
    deadlines. ``options`` go to :class:`uvicorn.Config` (``log_level``...)."""
    protocol = type("HeaderDeadline", (_HeaderDeadline,), {"header_timeout": config.header_timeout})
    options.setdefault("timeout_graceful_shutdown", GRACEFUL_SECONDS)
    options.setdefault("timeout_keep_alive", KEEP_ALIVE_SECONDS)
    return uvicorn.Config(app, lifespan="on", http=protocol, **options)


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (``port`` 0 picks a free one)."""
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
    # proto must be IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only
    # then, and without it Nagle's algorithm meets delayed ACKs (40 ms per response).
    sock = socket.socket(info[0], socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(info[4])
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_on(
    sock: socket.socket,
    *,
    home: str | os.PathLike[str] | None,
    config: NodeConfig,
    chat: ChatConfig | None,
    storage: Storage | None,
    log_level: str,
) -> None:
    """Serve one node process on the bound ``sock`` until SIGINT or SIGTERM."""
    # The node's threads (event loop, inference workers, log sequencer) hand the GIL to
    # each other on every request; with the default 5 ms switch interval a waiting
    # thread can stall that long behind a busy one, which dominated request latency.
    sys.setswitchinterval(SWITCH_INTERVAL)
    prover = (
        RayProver(None if config.zk_backend == "ray" else config.zk_backend)
        if (config.zk_backend)
        else None
    )
    node = LocalNode(home, chat=chat, storage=storage, zk_prover=prover)
    if node.log_enabled:
        # Opened before serving, so a log that is another node's (another key, another
        # origin) is refused in one line here, not as a traceback from the app's startup.
        node.log.checkpoint()
    app = create_app(node, config)
    uv = server_config(app, config, log_level=log_level, access_log=False)
    logging.getLogger("inferproof.node").setLevel(log_level.upper())
    uvicorn.Server(uv).run(sockets=[sock])
