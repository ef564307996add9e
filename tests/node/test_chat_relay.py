"""Relay mode over real HTTP: a node forwards chat requests for models it does not
hold to a second node on loopback (OpenAI-compatible, token as api key)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from inferproof import LocalNode
from inferproof.errors import InputError
from inferproof.node import NodeConfig, create_app
from inferproof.receipts import Bundle
from inferproof.verify import Policy

from ._chat import ask, openai_for, report, serving, tiny_gguf
from .conftest import Running

RELAY_POLICY = Policy(require_log=True, require_input=True, accept_relayed=True)


@pytest.fixture()
def pair(make_node: Callable[..., Running]) -> tuple[Running, Running]:
    """(relaying node without models, upstream node serving the tiny model)."""
    upstream = serving(make_node, tiny_gguf(), name="upstream")
    config = NodeConfig(relay_url=f"{upstream.url}/v1", relay_api_key=upstream.token)
    return serving(make_node, None, config, name="relay"), upstream


def _receipt(answer: Any) -> dict[str, Any]:
    return dict((answer.model_extra or {})["inferproof"])


def test_relayed_answer_is_the_upstreams_and_says_so(pair: tuple[Running, Running]) -> None:
    relay, upstream = pair
    base = f"{upstream.url}/v1"
    direct = openai_for(upstream).chat.completions.create(**ask("Hi"))
    upstream_size = upstream.node.log.size
    answer = openai_for(relay).chat.completions.create(**ask("Hi"))
    assert answer.choices[0].message.content == direct.choices[0].message.content
    assert answer.usage.completion_tokens == 24
    # The upstream answered (and issued its own receipt for it).
    assert upstream.node.log.size == upstream_size + 1
    receipt = _receipt(answer)
    r = Bundle.from_json(receipt["bundle"]).receipt
    claim = f"relayed from {base}: output not computed by this node"
    assert [p["type"] for p in r.proofs] == ["signature", "relay"]
    assert r.proofs[1] == {"type": "relay", "upstream": base, "claim": claim}
    assert r.parameters["mode"] == "relay" and r.model["format"] == "relay"
    assert r.runtime["upstream"] == base and r.runtime["upstream_model"] == "tiny"
    assert r.node_id == relay.node.node_id

    accepted = report(relay, receipt, None, policy=RELAY_POLICY)
    assert accepted["verified"] == ("True", ""), accepted
    assert accepted["output.relay"][0] == "not_checked"
    assert (
        claim in accepted["output.relay"][1]
        and "not hardware-attested" in accepted["output.relay"][1]
    )
    refused = report(relay, receipt, None, policy=Policy(require_log=True))
    assert refused["verified"][0] == "False"
    assert refused["output.relay"][0] == "failed"
    assert "does not accept relayed receipts" in refused["output.relay"][1]
    with relay.http(auth=False) as http:
        stored = http.get(f"/v1/bundles/{receipt['bundle_id']}").json()
    assert stored == receipt["bundle"]


def test_relayed_stream_ends_with_the_receipt(pair: tuple[Running, Running]) -> None:
    relay, upstream = pair
    whole = openai_for(upstream).chat.completions.create(**ask("Tell me a story"))
    raw = openai_for(relay).chat.completions.with_raw_response.create(
        **ask("Tell me a story"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].usage.completion_tokens == 24
    receipt = (chunks[-1].model_extra or {})["inferproof"]
    assert receipt["bundle_id"] == raw.headers["inferproof-bundle-id"]
    checks = report(relay, receipt, None, policy=RELAY_POLICY)
    assert checks["verified"] == ("True", "") and checks["output.digest"][0] == "passed"


def test_models_the_node_holds_are_answered_locally(pair: tuple[Running, Running]) -> None:
    relay, upstream = pair
    with relay.http() as http:
        pushed = http.post(
            "/v1/models",
            params={"name": "tiny"},
            content=tiny_gguf(),
            headers={"content-type": "application/octet-stream"},
        )
    assert pushed.status_code == 201
    upstream_size = upstream.node.log.size
    answer = openai_for(relay).chat.completions.create(**ask("Hi"))
    r = Bundle.from_json(_receipt(answer)["bundle"]).receipt
    assert [p["type"] for p in r.proofs] == ["signature", "reexecution", "fingerprint"]
    assert upstream.node.log.size == upstream_size


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_upstream_failures_are_502_and_the_node_stays_up(
    make_node: Callable[..., Running], pair: tuple[Running, Running]
) -> None:
    from openai import InternalServerError

    relay, upstream = pair
    wrong_key = serving(
        make_node,
        None,
        NodeConfig(relay_url=f"{upstream.url}/v1", relay_api_key="ipt_wrong"),
        name="wrong-key",
    )
    down = serving(
        make_node, None, NodeConfig(relay_url=f"http://127.0.0.1:{_closed_port()}/v1"), name="down"
    )
    cases = [
        (wrong_key, ask(), "answered HTTP 401"),
        (down, ask(), "is unreachable"),
        # Names the node does not hold, hub references or not, go upstream; the
        # upstream's 404 is an upstream failure here.
        (relay, ask(model="other"), "answered HTTP 404"),
        (relay, ask(model="org/model-7b"), "answered HTTP 404"),
    ]
    for node, body, words in cases:
        with pytest.raises(InternalServerError) as caught:
            openai_for(node).chat.completions.create(**body)
        assert caught.value.status_code == 502 and caught.value.code == "upstream_error"
        assert words in caught.value.message
        assert node.node.log.size == 0  # nothing signed
    with relay.http() as http:
        # Relay mode forwards chat only; llama.cpp's own parameters are not forwarded.
        completion = http.post("/v1/completions", json={"model": "tiny", "prompt": "x"})
        assert completion.status_code == 404 and "relay" in completion.json()["error"]["message"]
        top_k = http.post("/v1/chat/completions", json=ask(top_k=5))
        assert top_k.status_code == 400 and top_k.json()["error"]["param"] == "top_k"
    assert openai_for(relay).chat.completions.create(**ask()).usage.completion_tokens == 24


def test_a_relay_url_must_be_http(tmp_path: Any) -> None:
    for url in ("ftp://example.com/v1", "http://user:pw@example.com/v1", "example.com"):
        node = LocalNode(tmp_path / "home")
        with pytest.raises(InputError, match="upstream"):
            create_app(node, NodeConfig(relay_url=url))
        node.close()
