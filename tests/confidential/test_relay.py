"""Client -> relay -> node on loopback, each a real HTTP server: a confidential client's
inference is served and verified, and the relay sees and forwards only ciphertext,
with nothing that names the client."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inferproof.client import Client
from inferproof.errors import InputError
from inferproof.testing import credit_risk_model
from tests._cli import inferproof
from tests.confidential._relay import Relay, relay_for
from tests.node.conftest import Running, pushed, start

ROW = [[52.0, 0.41, 34.0, 2.0]]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start(tmp_path_factory.mktemp("relay") / "node")
    try:
        pushed(running, credit_risk_model()[0], name="credit", version="1")
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def relay(node: Running) -> Iterator[Relay]:
    with relay_for(node) as running:
        yield running


def test_a_confidential_inference_is_served_verified_and_unreadable_on_the_way(
    node: Running, relay: Relay, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("client")
    before = len(relay.forwarded.sent)
    with Client(node.url, node.token, home=home, confidential=True, relay=relay.url) as client:
        answer = client.infer("credit:1", {"X": ROW}, nonce="secret-nonce-7")
    assert answer.receipt_digest.startswith("sha256:")  # verified before it was returned
    forwarded = relay.forwarded.sent[before:]
    assert forwarded, "the inference went through the relay"
    for request in forwarded:
        assert request.url.path == "/.well-known/ohttp-gateway"
        body = request.content
        # Only ciphertext: no token, model name, nonce, input or path in what was forwarded.
        for secret in (node.token.encode(), b"credit", b"secret-nonce-7", b"52.0", b"/v1/"):
            assert secret not in body
        # Nothing of the client's own request beyond its content type.
        names = {k.lower() for k in request.headers}
        assert names <= {"host", "content-type", "content-length", "accept", "accept-encoding",
                         "connection", "user-agent"}, names  # fmt: skip
        assert "authorization" not in names and "x-forwarded-for" not in names
    # The relay's log holds sizes, statuses and times only.
    assert relay.lines and all(line.startswith("relay: ") for line in relay.lines)
    assert not any("credit" in line or node.token in line for line in relay.lines)


def test_the_relay_refuses_what_is_not_a_sealed_request(relay: Relay) -> None:
    answer = httpx.post(relay.url, json={"model": "credit:1"})
    assert answer.status_code == 415
    assert httpx.put(relay.url, content=b"x").status_code == 405


def test_the_relay_forwards_the_gateways_key_configuration(node: Running, relay: Relay) -> None:
    direct = httpx.get(node.url + "/.well-known/ohttp-gateway")
    through = httpx.get(relay.url)
    assert through.status_code == 200
    assert through.headers["content-type"] == "application/ohttp-keys"
    assert through.content == direct.content and len(through.content) > 10


def test_an_altered_request_is_refused_through_the_relay(node: Running, relay: Relay) -> None:
    answer = httpx.post(relay.url, content=b"\x01\x00\x20\x00\x01\x00\x01" + bytes(60),
                        headers={"content-type": "message/ohttp-req"})  # fmt: skip
    assert answer.status_code == 400
    assert "not an Oblivious HTTP request" in json.loads(answer.content)["error"]["message"]


def test_a_confidential_client_needs_a_relay_and_a_relay_needs_confidential(
    node: Running,
) -> None:
    with pytest.raises(InputError, match="needs a relay"):
        Client(node.url, node.token, confidential=True)
    with pytest.raises(InputError, match="is for a confidential client"):
        Client(node.url, node.token, relay="http://127.0.0.1:9/")


def test_the_relay_command_refuses_a_gateway_that_is_not_a_url(tmp_path: Path) -> None:
    env = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "home"))
    done = inferproof(env, "relay", "--gateway", "ftp://node/.well-known/ohttp-gateway")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --gateway must be the http(s) URL of the node's gateway"
    assert "Traceback" not in done.stderr
