"""The client and the relay take an httpx transport: in-process and hostile-node tests
need no sockets.

A hostile node is played by an ``httpx.MockTransport`` in front of the real app (run
in-process by Starlette's test client): the attacker is simulated, our code is not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient

from inferproof import LocalNode
from inferproof.client import AsyncClient, Client
from inferproof.errors import UpstreamError, VerificationError
from inferproof.node import NodeConfig, TokenStore, create_app
from inferproof.receipts import Bundle
from inferproof.testing import mlp_model
from inferproof.verify import Policy

X = np.arange(8, dtype=np.float32).reshape(1, 8)
URL = "http://node.invalid"  # never resolved: every request goes through the transport
_HOP = {"content-length", "content-encoding", "transfer-encoding", "connection"}

Tamper = Callable[[httpx.Request, httpx.Response], httpx.Response]


def _forwarder(app_client: TestClient, tamper: Tamper) -> httpx.MockTransport:
    """Forward each request to the in-process app, then let ``tamper`` edit the answer."""

    def handle(request: httpx.Request) -> httpx.Response:
        got = app_client.request(
            request.method,
            request.url.raw_path.decode(),
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            content=request.content,
        )
        headers = {k: v for k, v in got.headers.items() if k.lower() not in _HOP}
        return tamper(
            request, httpx.Response(got.status_code, headers=headers, content=got.content)
        )

    return httpx.MockTransport(handle)


def _edit_infer(request: httpx.Request, response: httpx.Response) -> httpx.Response:
    if request.url.path != "/v1/infer":
        return response
    body = json.loads(response.content)
    # The node claims another probability than the model computed (and the receipt signs).
    body["bundle"]["outputs"]["y"]["data"][0] += 1.0
    return httpx.Response(response.status_code, json=body)


@pytest.fixture()
def app_client(tmp_path: Path) -> Any:
    node = LocalNode(tmp_path / "node")
    node.push(mlp_model((8, 16, 2)), name="mlp", version="1")
    token = TokenStore(node.home.root).create("tests")
    with TestClient(create_app(node)) as client:  # runs the app's lifespan
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, node


def test_honest_forwarder_verifies(app_client: Any, tmp_path: Path) -> None:
    tc, node = app_client
    transport = _forwarder(tc, lambda _req, resp: resp)
    with Client(URL, home=tmp_path / "c", transport=transport) as client:
        answer = client.infer("mlp:1", {"x": X})
    assert answer.report is not None and answer.report.verified
    np.testing.assert_array_equal(answer.outputs["y"], node.infer("mlp:1", {"x": X}).outputs["y"])


def test_hostile_node_edits_the_output(app_client: Any, tmp_path: Path) -> None:
    tc, _ = app_client
    with (
        Client(URL, home=tmp_path / "c", transport=_forwarder(tc, _edit_infer)) as client,
        pytest.raises(VerificationError) as exc,
    ):
        client.infer("mlp:1", {"x": X})
    assert exc.value.check == "output.digest"


def test_hostile_node_replays_an_old_answer(app_client: Any, tmp_path: Path) -> None:
    tc, _ = app_client
    old: list[bytes] = []

    def replay(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path != "/v1/infer":
            return response
        if not old:
            old.append(response.content)
        return httpx.Response(200, content=old[0], headers={"content-type": "application/json"})

    with Client(URL, home=tmp_path / "c", transport=_forwarder(tc, replay)) as client:
        assert client.infer("mlp:1", {"x": X}).report is not None
        with pytest.raises(VerificationError) as exc:
            client.infer("mlp:1", {"x": X})
    assert exc.value.check == "nonce"


def test_async_client_in_process_over_asgi(tmp_path: Path) -> None:
    node = LocalNode(tmp_path / "node")
    node.push(mlp_model((8, 16, 2)), name="mlp", version="1")
    token = TokenStore(node.home.root).create("tests")
    app = create_app(node)

    async def main() -> Any:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with AsyncClient(
                URL, token=token, home=tmp_path / "c", transport=transport
            ) as client:
                return await asyncio.gather(*(client.infer("mlp:1", {"x": X}) for _ in range(4)))

    answers = asyncio.run(main())
    assert len({a.receipt_digest for a in answers}) == 4
    assert all(a.report is not None and a.report.verified for a in answers)


def _upstream(text: str) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        sent = json.loads(request.content)
        return httpx.Response(
            200,
            json={
                "id": "up-1",
                "object": "chat.completion",
                "model": sent["model"],
                "system_fingerprint": "fp-up",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            },
        )

    return httpx.MockTransport(handle)


def test_relay_upstream_through_a_transport(tmp_path: Path) -> None:
    with LocalNode(tmp_path / "node") as node:
        result = node.relay_chat(
            "http://upstream.invalid/v1",
            {"model": "m", "messages": [{"role": "user", "content": "Hi"}]},
            transport=_upstream("Hello there"),
        )
        report = node.verifier(Policy(accept_relayed=True)).check(result.bundle)
    assert result.text == "Hello there"
    assert result.bundle.receipt.parameters["mode"] == "relay"
    assert report.verified, report.to_json()


def test_relay_upstream_failure_is_an_upstream_error(tmp_path: Path) -> None:
    broken = httpx.MockTransport(lambda _req: httpx.Response(500, text="boom"))
    with LocalNode(tmp_path / "node") as node, pytest.raises(UpstreamError, match="HTTP 500"):
        node.relay_chat(
            "http://upstream.invalid/v1",
            {"model": "m", "messages": [{"role": "user", "content": "Hi"}]},
            transport=broken,
        )


def test_node_relays_through_its_configured_transport(tmp_path: Path) -> None:
    node = LocalNode(tmp_path / "node")
    config = NodeConfig(relay_url="http://upstream.invalid/v1", relay_transport=_upstream("Hi!"))
    with TestClient(create_app(node, config)) as tc:
        got = tc.post(
            "/v1/chat/completions",
            json={"model": "elsewhere", "messages": [{"role": "user", "content": "Hi"}]},
            headers={"Authorization": f"Bearer {TokenStore(node.home.root).create('t')}"},
        )
    assert got.status_code == 200, got.text
    assert got.json()["choices"][0]["message"]["content"] == "Hi!"
    bundle = Bundle.from_json(got.json()["inferproof"]["bundle"])
    assert bundle.receipt.parameters["mode"] == "relay"
    assert [p["type"] for p in bundle.receipt.proofs] == ["signature", "relay"]
