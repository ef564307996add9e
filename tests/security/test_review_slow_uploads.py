"""Issue 11, item 7: unauthenticated slow uploads locked everyone out.

The token was checked after the body was read, with no read timeout: 256 idle
uploads without a token filled ``max_inflight`` and every request, authorised ones
included, got 429 while the sockets stayed open. Now a write is authenticated
before its body is read, bodies and headers have deadlines, and part of the
capacity is kept for token holders. The attackers here are raw sockets.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

from inferproof.errors import InputError
from inferproof.node import NodeConfig

from ..node.conftest import Running


def _connect(running: Running) -> socket.socket:
    url = urlsplit(running.url)
    return socket.create_connection((url.hostname, url.port), timeout=10)


@contextmanager
def _socket(running: Running) -> Iterator[socket.socket]:
    sock = _connect(running)
    try:
        yield sock
    finally:
        sock.close()


def _headers(path: str, token: str | None, length: int) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: node\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\n{auth}\r\n"
    ).encode()


def _response(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of one HTTP response read from the socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return 0, b""
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n")
         if line.lower().startswith(b"content-length:")),
        0,
    )  # fmt: skip
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), body


def _status(sock: socket.socket) -> int:
    return _response(sock)[0]


def _closed(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def test_writes_without_a_token_are_refused_before_the_body(
    make_node: Callable[..., Running],
) -> None:
    running = make_node(NodeConfig(max_inflight=4))
    socks = []
    with _socket(running) as first:
        socks.append(first)
        first.sendall(_headers("/v1/models?name=m", None, 10_000_000))  # and never the body
        assert _status(first) == 401
        with _socket(running) as chat:
            chat.sendall(_headers("/v1/chat/completions", None, 10_000))
            status, body = _response(chat)
            assert status == 401 and b"invalid_api_key" in body
        # Many more idle uploads than max_inflight: none takes a slot.
        extra = [_connect(running) for _ in range(12)]
        try:
            for sock in extra:
                sock.sendall(_headers("/v1/infer", None, 1_000_000))
            assert [_status(s) for s in extra] == [401] * 12
            with running.http() as http:
                assert http.get("/v1/models").status_code == 200
        finally:
            for sock in extra:
                sock.close()


def test_a_share_of_capacity_is_kept_for_token_holders(
    make_node: Callable[..., Running],
) -> None:
    running = make_node(NodeConfig(max_inflight=3, reserved_inflight=1, body_idle_timeout=30))
    uploads = [_connect(running) for _ in range(2)]
    try:
        for sock in uploads:  # two authorised uploads in progress hold two slots
            sock.sendall(_headers("/v1/models?name=m", running.token, 1_000_000) + b"x" * 10)
        deadline = time.monotonic() + 10
        with running.http(auth=False) as anon, running.http() as holder:
            while anon.get("/v1/models").status_code != 429:  # the uploads take their slots
                assert time.monotonic() < deadline
                time.sleep(0.02)
            refused = anon.get("/v1/models")
            assert refused.status_code == 429 and "kept for token holders" in refused.text
            assert holder.get("/v1/models").status_code == 200
    finally:
        for sock in uploads:
            sock.close()


def test_a_stalled_body_ends_with_408(make_node: Callable[..., Running]) -> None:
    running = make_node(NodeConfig(body_idle_timeout=0.5, body_timeout=5))
    with _socket(running) as sock:
        sock.sendall(_headers("/v1/models?name=m", running.token, 1_000_000) + b"\x08" * 100)
        started = time.monotonic()
        status, body = _response(sock)
        assert status == 408 and b"did not arrive in time" in body
        assert time.monotonic() - started < 5
    with running.http() as http:  # the node goes on serving
        assert http.get("/v1/models").status_code == 200


def test_slow_headers_are_cut_off(make_node: Callable[..., Running]) -> None:
    running = make_node(NodeConfig(header_timeout=0.5))
    with _socket(running) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: node\r\n")  # the headers never end
        for _ in range(3):
            time.sleep(0.2)
            sock.sendall(b"X-Slow: 1\r\n")
        assert _closed(sock, 5)
    with _socket(running) as idle:  # a connection that never sends a byte
        assert _closed(idle, 5)


@pytest.mark.parametrize("reserved", [-1, 3])
def test_a_reserve_outside_the_limit_is_refused(reserved: int) -> None:
    with pytest.raises(InputError, match="reserved_inflight"):
        NodeConfig(max_inflight=3, reserved_inflight=reserved)
