"""A real node on 127.0.0.1 (uvicorn in a thread) over a LocalNode in a temporary home."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from inferproof import LocalNode
from inferproof.node import NodeConfig, TokenStore, create_app
from inferproof.node._serve import bind, server_config, url_of
from inferproof.testing import mlp_model

MLP_SIZES = (8, 16, 2)


@dataclass
class Running:
    url: str
    token: str
    node: LocalNode
    home: Path
    server: uvicorn.Server
    thread: threading.Thread

    def http(self, auth: bool = True) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def serve_thread(server: uvicorn.Server) -> tuple[str, threading.Thread]:
    """Run ``server`` on a free loopback port in a thread; its URL once ``/healthz``
    answers 200 (the node and the relay both serve it)."""
    sock = bind("127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = url_of(sock)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return url, thread
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"the server at {url} did not start")


def start(
    home: Path, config: NodeConfig | None = None, infer: Callable[..., Any] | None = None
) -> Running:
    node = LocalNode(home)
    app = create_app(node, config, infer=infer)
    token = TokenStore(home).create("tests")
    server = uvicorn.Server(server_config(app, config or NodeConfig(), log_level="warning"))
    url, thread = serve_thread(server)
    return Running(url, token, node, home, server, thread)


@pytest.fixture()
def make_node(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Start nodes (each in its own home under tmp_path); all are stopped afterwards."""
    started: list[Running] = []

    def make(
        config: NodeConfig | None = None,
        infer: Callable[..., Any] | None = None,
        name: str = "node",
    ) -> Running:
        running = start(tmp_path / name, config, infer)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture()
def running(make_node: Callable[..., Running]) -> Running:
    return make_node()


@pytest.fixture(scope="session")
def small_model() -> bytes:
    return mlp_model(MLP_SIZES)


def pushed(running: Running, model: bytes, name: str = "mlp", version: str = "1") -> str:
    with running.http() as http:
        response = http.post(
            "/v1/models",
            params={"name": name, "version": version},
            content=model,
            headers={"content-type": "application/octet-stream"},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["digest"])
