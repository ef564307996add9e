"""Relay mode against a real upstream on loopback (a second node), and the official
``openai`` client against that node's OpenAI-shaped endpoint."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferproof import LocalNode
from inferproof._checks import CheckStatus
from inferproof.errors import InputError, UpstreamError
from inferproof.proofs.llm_reexec import chat_checks
from inferproof.receipts import Bundle
from inferproof.runtime import relay_model_digest

from ._upstream import serve
from .conftest import ask


@pytest.fixture(scope="module")
def upstream(
    tmp_path_factory: pytest.TempPathFactory, gguf_path: Path
) -> Iterator[tuple[str, LocalNode, list[Any]]]:
    node = LocalNode(tmp_path_factory.mktemp("upstream-home"))
    node.push(gguf_path, name="tiny")
    with serve(node) as (base, seen):
        yield base, node, seen
    node.close()


def _status(checks: list[Any]) -> dict[str, tuple[CheckStatus, str]]:
    return {c.name: (c.status, c.detail) for c in checks}


def test_official_openai_client_works_unchanged(upstream) -> None:
    from openai import BadRequestError, OpenAI

    base, node, _ = upstream
    client = OpenAI(base_url=base, api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["tiny"]
    answer = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Hi"}], temperature=0, max_tokens=16
    )
    direct = node.chat("tiny", ask("Hi", max_tokens=16))
    assert answer.choices[0].message.content == direct.text
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 16
    # The receipt rides along as an extra field the client keeps.
    extra = answer.model_extra or {}
    bundle = Bundle.from_json(extra["inferproof"]["bundle"])
    assert bundle.receipt.output_digest == direct.bundle.receipt.output_digest

    stream = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "Hi"}],
        temperature=0,
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == direct.text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 16
    assert "inferproof" in (chunks[-1].model_extra or {})

    completion = client.completions.create(model="tiny", prompt="Once", max_tokens=5, temperature=0)
    assert (
        completion.choices[0].finish_reason == "length" and completion.usage.completion_tokens == 5
    )

    with pytest.raises(BadRequestError, match="max_tokens 9999 is over this node's cap"):
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "Hi"}], max_tokens=9999
        )


def test_relay_signs_what_the_upstream_said(upstream, home: Path) -> None:
    base, up_node, seen = upstream
    with LocalNode(home) as relay:
        result = relay.relay_chat(
            base, {"model": "tiny", **ask("Hi", max_tokens=12, seed=4)}, nonce="relay-1"
        )
        direct = up_node.chat("tiny", ask("Hi", max_tokens=12, seed=4))
        assert result.text == direct.text
        # What was forwarded is derived from the canonical request alone.
        assert seen[-1] == {
            "model": "tiny",
            "messages": [{"role": "user", "content": "Hi"}],
            "temperature": 0.0,
            "top_p": 1.0,
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
            "stream": False,
            "seed": 4,
            "max_tokens": 12,
        }
        r = result.bundle.receipt
        claim = f"relayed from {base}: output not computed by this node"
        assert [p["type"] for p in r.proofs] == ["signature", "relay"]
        assert r.proofs[1]["claim"] == claim
        assert r.parameters["mode"] == "relay" and r.runtime["engine"] == "relay"
        assert r.runtime["upstream"] == base and r.runtime["upstream_model"] == "tiny"
        assert str(r.runtime["upstream_id"]).startswith("chatcmpl-")
        assert r.model["format"] == "relay" and r.model_digest == relay_model_digest(base, "tiny")
        assert r.nonce == "relay-1" and result.bundle.tlog_entry is not None
        bundle = Bundle.loads(result.bundle.dumps())

        refused = _status(chat_checks(bundle))
        assert refused["output.digest"][0] is CheckStatus.PASSED
        assert refused["input"][0] is CheckStatus.PASSED
        assert refused["output.relay"] == (
            CheckStatus.FAILED,
            f"{claim}; the policy does not accept relayed receipts",
        )
        accepted = _status(chat_checks(bundle, accept_relayed=True))
        assert accepted["output.relay"][0] is CheckStatus.NOT_CHECKED  # software node
        assert "not hardware-attested" in accepted["output.relay"][1]
        assert "output.reexecution" not in accepted


def test_private_relay(upstream, home: Path) -> None:
    base, _, _ = upstream
    with LocalNode(home) as relay:
        result = relay.relay_chat(base, {"model": "tiny", **ask("secret")}, private=True)
        assert result.bundle.inputs is None and "secret" not in result.bundle.dumps()
        checks = _status(chat_checks(result.bundle, opening=result.opening, accept_relayed=True))
        assert checks["input"][0] is CheckStatus.PASSED
        assert checks["output.digest"][0] is CheckStatus.PASSED


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("broken/status", "answered HTTP 500"),
        ("broken/nojson", "upstream answer is not valid JSON"),
        ("broken/nousage", "not an OpenAI chat.completion"),
        ("broken/empty", "not an OpenAI chat.completion"),
        ("broken/huge", "over 8388608 bytes"),
    ],
)
def test_upstream_failures(upstream, home: Path, path: str, message: str) -> None:
    base, _, _ = upstream
    root = base.removesuffix("/v1")
    with LocalNode(home) as relay:
        with pytest.raises(UpstreamError, match=message):
            relay.relay_chat(f"{root}/{path}", {"model": "tiny", **ask()})
        # Nothing was logged for a failed relay.
        assert relay.log.size == 0


def test_unreachable_upstream(home: Path) -> None:
    with LocalNode(home) as relay, pytest.raises(UpstreamError, match="unreachable"):
        relay.relay_chat(f"http://127.0.0.1:{_free_port()}/v1", {"model": "m", **ask()}, timeout=5)


@pytest.mark.parametrize(
    ("upstream_url", "body", "message"),
    [
        ("ftp://example.com/v1", {"model": "m", **ask()}, "must be an http"),
        ("http://user:pw@example.com/v1", {"model": "m", **ask()}, "must not hold credentials"),
        (
            "http://127.0.0.1:9/v1",
            {"model": "m", **ask(), "top_k": 5},
            "not forwarded in relay mode",
        ),
        ("http://127.0.0.1:9/v1", {"model": "m", "messages": "hi"}, "messages must be"),
    ],
)
def test_relay_bad_input(home: Path, upstream_url: str, body: dict[str, Any], message: str) -> None:
    with LocalNode(home) as relay, pytest.raises(InputError, match=message):
        relay.relay_chat(upstream_url, body)
