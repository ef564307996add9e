"""Bad chat requests get OpenAI's error body with the right status, type, param and
code; the official client raises the matching exception; the node stays up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from inferproof.node import NodeConfig

from ._chat import LONG_PROMPT, ask, openai_for, serving, sse_events, tiny_gguf
from .conftest import Running, pushed

CHAT = "/v1/chat/completions"
COMPLETE = "/v1/completions"


@pytest.fixture()
def node(make_node: Callable[..., Running]) -> Running:
    return serving(make_node, tiny_gguf())


def _openai_error(
    response: httpx.Response, status: int, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """Check an OpenAI error body exactly; return its ``error`` object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error = dict(body["error"])
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and error["type"] == (
        "invalid_request_error" if status < 500 else "server_error"
    )
    assert (error["code"], error["param"]) == (code, param), error
    return error


LONG_TEXT = " ".join(["The capital of France is Paris."] * 400)
# (path, body or raw bytes, status, code, param, words the message must hold)
CASES: list[tuple[str, Any, int, str | None, str | None, str]] = [
    (CHAT, ask(model="nope"), 404, "model_not_found", "model", "no model 'nope'"),
    (CHAT, ask(model="sha256:" + "0" * 64), 404, "model_not_found", "model", "sha256:000"),
    (CHAT, ask(model="../../etc/x.gguf"), 404, "model_not_found", "model", "no chat model"),
    (CHAT, ask(LONG_TEXT), 400, "context_length_exceeded", "messages", "context overflow"),
    (CHAT, ask(max_tokens=500), 400, "context_length_exceeded", "messages", "exceed the model's"),
    (CHAT, ask(max_tokens=5000), 400, None, "max_tokens", "over this node's cap of 4096"),
    (CHAT, ask(max_tokens=0), 400, None, "max_tokens", "between 1 and"),
    (CHAT, ask(temperature=3), 400, None, "temperature", "between 0 and 2"),
    (CHAT, ask(n=2), 400, None, "n", "n must be 1"),
    (CHAT, {**ask(), "messages": []}, 400, None, "messages", "non-empty list"),
    (CHAT, {**ask(), "messages": "Hi"}, 400, None, "messages", "non-empty list"),
    (CHAT, {**ask(), "messages": [{"role": "robot", "content": "x"}]}, 400, None,
     "messages[0].role", "must be one of"),
    (CHAT, {**ask(), "messages": [{"role": "user"}]}, 400, None, "messages[0]",
     "has no content"),
    (CHAT, {**ask(), "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400,
     None, "messages[0].content[0]", "only text parts"),
    (CHAT, {**ask(), "messages": [{"role": "user", "content": "x", "name": "bob"}]}, 400,
     "unsupported_parameter", "messages[0].name", "unsupported"),
    (CHAT, ask(tools=[]), 400, "unsupported_parameter", "tools", "unsupported parameter"),
    (CHAT, ask(stream_options={"include_usage": True}), 400, None, "stream_options",
     "only allowed with stream"),
    (CHAT, ask(stop=["a", "b", "c", "d", "e"]), 400, None, "stop", "up to 4"),
    (CHAT, ask(model=""), 400, None, "model", "non-empty string"),
    (CHAT, [1, 2], 400, None, None, "JSON object"),
    (CHAT, b'{"model": "tiny", "model": "x"}', 400, None, None, "duplicate"),
    (CHAT, b'{"model": "tiny", "temperature": NaN}', 400, None, None, "NaN"),
    (CHAT, b"not json", 400, None, None, "not valid JSON"),
    (CHAT, b"", 400, None, None, "not valid JSON"),
    (COMPLETE, {"model": "tiny", "prompt": ["a", "b"]}, 400, None, "prompt", "one string"),
    (COMPLETE, {"model": "tiny", "messages": []}, 400, "unsupported_parameter", "messages",
     "unsupported"),
    (COMPLETE, {"model": "nope", "prompt": "x"}, 404, "model_not_found", "model", "nope"),
    (COMPLETE, {"model": "tiny", "prompt": LONG_TEXT}, 400, "context_length_exceeded", "prompt",
     "context overflow"),
]  # fmt: skip


def test_every_bad_request_gets_its_openai_error(node: Running) -> None:
    with node.http() as http:
        for path, body, status, code, param, words in CASES:
            for stream in (False, True):
                if isinstance(body, dict):
                    sent: dict[str, Any] = {"content": None, "json": {**body, "stream": stream}}
                    if "stream_options" in body:
                        sent["json"]["stream"] = False
                elif stream:
                    continue
                else:
                    raw = body if isinstance(body, bytes) else repr(body).encode()
                    sent = {"content": raw, "json": None}
                response = http.post(
                    path, content=sent["content"], json=sent["json"], headers=_json_type()
                )
                error = _openai_error(response, status, code, param)
                assert words in error["message"], (path, body, error)
        # The node is still up and answers.
        good = http.post(CHAT, json=ask())
    assert good.status_code == 200 and good.json()["usage"]["completion_tokens"] == 24


def _json_type() -> dict[str, str]:
    return {"content-type": "application/json"}


def test_a_path_as_model_never_reads_the_nodes_disk(node: Running, tmp_path: Any) -> None:
    # The library resolves file paths for the CLI; over HTTP a name is only a hub reference.
    model = tmp_path / "x.gguf"
    model.write_bytes(tiny_gguf())
    with node.http() as http:
        before = http.get("/v1/models").json()["models"]
        response = http.post(CHAT, json=ask(model=str(model)))
        _openai_error(response, 404, "model_not_found", "model")
        assert http.get("/v1/models").json()["models"] == before
    assert not any(node.home.rglob("*.gguf"))


def test_an_onnx_model_is_not_a_chat_model(node: Running, small_model: bytes) -> None:
    pushed(node, small_model)
    with node.http() as http:
        response = http.post(CHAT, json=ask(model="mlp:1"))
    error = _openai_error(response, 400, None, "model")
    assert "onnx model, not a GGUF chat model" in error["message"]


def test_headers_are_checked(node: Running) -> None:
    with node.http() as http:
        bad_private = http.post(CHAT, json=ask(), headers={"Inferproof-Private": "yes"})
        long_nonce = http.post(CHAT, json=ask(), headers={"Inferproof-Nonce": "n" * 257})
    assert "Inferproof-Private" in _openai_error(bad_private, 400)["message"]
    assert "nonce must be 1 to 256" in _openai_error(long_nonce, 400, None, "nonce")["message"]


def test_writes_need_a_node_token_as_api_key(node: Running) -> None:
    from openai import AuthenticationError

    for key in ("sk-not-a-node-token", "ipt_" + "A" * 43):
        with pytest.raises(AuthenticationError, match="needs a node token") as caught:
            openai_for(node, api_key=key).chat.completions.create(**ask())
        assert caught.value.code == "invalid_api_key"
    with node.http(auth=False) as http:
        for path in (CHAT, COMPLETE):
            response = http.post(path, json=ask())
            _openai_error(response, 401, "invalid_api_key")
            assert response.headers["www-authenticate"] == "Bearer"
        # Reads stay public.
        assert http.get("/v1/models").status_code == 200


def test_the_openai_client_understands_the_errors(node: Running) -> None:
    from openai import BadRequestError, NotFoundError

    client = openai_for(node)
    with pytest.raises(NotFoundError) as missing:
        client.chat.completions.create(**ask(model="gpt-4o"))
    assert missing.value.code == "model_not_found" and missing.value.param == "model"
    with pytest.raises(BadRequestError) as overflow:
        client.chat.completions.create(**ask(max_tokens=500))
    assert overflow.value.code == "context_length_exceeded"
    assert "exceed the model's context of 512 tokens" in overflow.value.message
    with pytest.raises(BadRequestError) as capped:
        client.chat.completions.create(**ask(max_tokens=5000), stream=True)
    assert capped.value.param == "max_tokens"
    with pytest.raises(BadRequestError, match="unsupported parameter"):
        client.chat.completions.create(**ask(), logprobs=True)
    assert client.chat.completions.create(**ask(max_tokens=3)).usage.completion_tokens == 3


def test_body_over_the_cap_is_413(make_node: Callable[..., Running]) -> None:
    running = serving(make_node, tiny_gguf(), NodeConfig(max_body_bytes=4096))
    with running.http() as http:
        response = http.post(CHAT, json=ask("x" * 5000))
        assert response.status_code == 413
        assert "over this node's cap" in response.json()["error"]["message"]
        assert http.post(CHAT, json=ask()).status_code == 200


def test_a_slow_answer_times_out_and_frees_the_model(make_node: Callable[..., Running]) -> None:
    # The long model generates 4000 tokens for this prompt (over a second); the
    # node stops it at the timeout, between two tokens.
    config = NodeConfig(chat_timeout=0.5)
    running = serving(make_node, tiny_gguf(long=True), config)
    long_ask = ask(LONG_PROMPT, max_tokens=4000)
    size = running.node.log.size
    with running.http() as http:
        whole = http.post(CHAT, json=long_ask)
        assert "did not finish within 0.5 s" in _openai_error(whole, 504, "timeout")["message"]
        with http.stream("POST", CHAT, json={**long_ask, "stream": True}) as response:
            assert response.status_code == 200
            events = sse_events(response.read().decode())
        # A stream already under way ends with OpenAI's error event, and no [DONE].
        assert events[-1]["error"]["code"] == "timeout"
        assert all("inferproof" not in e for e in events)
        # The official client raises on that event.
        from openai import APIError

        with pytest.raises(APIError, match=r"did not finish within 0\.5 s"):
            for _ in openai_for(running).chat.completions.create(**long_ask, stream=True):
                pass
        good = http.post(CHAT, json=ask(LONG_PROMPT, max_tokens=5))
    assert good.status_code == 200, good.text
    # All stopped early: none made a receipt (only the last request did).
    assert running.node.log.size == size + 1


def test_a_client_that_leaves_mid_stream_stops_the_generation(
    make_node: Callable[..., Running],
) -> None:
    running = serving(make_node, tiny_gguf(long=True))
    size = running.node.log.size
    body = {**ask(LONG_PROMPT, max_tokens=4000), "stream": True}
    with running.http() as http:
        with http.stream("POST", CHAT, json=body) as response:
            bundle_id = response.headers["inferproof-bundle-id"]
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
        # The connection is closed: the node stops between two tokens, and the model
        # is free for the next request at once, not after the 4000 tokens.
        good = http.post(CHAT, json=ask(LONG_PROMPT, max_tokens=5))
        assert good.status_code == 200
        # No receipt for an answer never finished: the header's id names nothing.
        assert http.get(f"/v1/bundles/{bundle_id}").status_code == 404
    # Requests for one model take turns, so had the abandoned answer run to its end,
    # its receipt would be in the log before the next answer's.
    assert running.node.log.size == size + 1
