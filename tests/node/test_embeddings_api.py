"""``POST /v1/embeddings`` against a real uvicorn server, through the official ``openai``
client: vectors with receipts that verify by re-execution, tampering named by its check,
bad requests answered with OpenAI's error bodies."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

from inferproof.node import NodeConfig
from inferproof.receipts import Bundle
from inferproof.runtime import EmbeddingOpening
from inferproof.testing import smollm2_gguf
from inferproof.verify import Material, Policy

from ._chat import STRICT, openai_for, serving, tiny_gguf
from .conftest import Running, pushed

EMBED = "/v1/embeddings"
TEXTS = ["What is the capital of France?", "The capital of France is Paris."]


@pytest.fixture()
def node(make_node: Callable[..., Running]) -> Running:
    return serving(make_node, tiny_gguf())


def _checks(
    running: Running, receipt: dict[str, Any], model: bytes | None, **material: Any
) -> dict[str, tuple[str, str]]:
    bundle = Bundle.from_json(receipt["bundle"])
    policy = material.pop("policy", STRICT)
    result = running.node.verifier(policy).check(bundle, Material(model_bytes=model, **material))
    out = {c.name: (c.status.value, c.detail) for c in result.checks}
    out["verified"] = (str(result.verified), "")
    return out


def test_smollm2_embeddings_through_the_official_client_verify(
    make_node: Callable[..., Running],
) -> None:
    model = smollm2_gguf().read_bytes()
    running = make_node()
    pushed(running, model, name="smollm2", version="1")
    client = openai_for(running)
    raw = client.embeddings.with_raw_response.create(
        model="smollm2:1", input=TEXTS, extra_headers={"Inferproof-Nonce": "nonce-e1"}
    )
    answer = raw.parse()  # the client asked for base64 and decoded it to floats
    assert answer.object == "list" and answer.model == "smollm2:1"
    assert [d.index for d in answer.data] == [0, 1]
    vectors = np.array([d.embedding for d in answer.data], dtype=np.float32)
    assert vectors.shape == (2, 576)
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > 2
    receipt = (answer.model_extra or {})["inferproof"]
    bundle_id = raw.headers["inferproof-bundle-id"]
    assert receipt["bundle_id"] == bundle_id
    with running.http(auth=False) as http:
        assert http.get(f"/v1/bundles/{bundle_id}").json() == receipt["bundle"]
    signed = base64.b64decode(receipt["bundle"]["outputs"]["embeddings"]["b64"])
    assert signed == vectors.astype("<f4").tobytes()  # what the client got is what was signed

    checks = _checks(running, receipt, model, nonce="nonce-e1")
    assert checks["verified"] == ("True", ""), checks
    assert checks["output.reexecution"] == (
        "passed", "re-executed: identical bytes (2 vectors x 576)",
    )  # fmt: skip
    assert checks["input"][0] == checks["log.inclusion"][0] == checks["nonce"][0] == "passed"
    # The float encoding carries the same numbers.
    floats = client.embeddings.create(model="smollm2:1", input=TEXTS, encoding_format="float")
    assert np.array([d.embedding for d in floats.data], np.float32).tobytes() == vectors.tobytes()


def _flip(receipt: dict[str, Any], index: int = 3) -> dict[str, Any]:
    tampered = json.loads(json.dumps(receipt))
    emb = tampered["bundle"]["outputs"]["embeddings"]
    values = np.frombuffer(base64.b64decode(emb["b64"]), "<f4").copy()
    values[index] = -values[index]
    emb["b64"] = base64.b64encode(values.tobytes()).decode()
    return tampered


def test_a_flipped_value_fails_verification_naming_the_check(node: Running) -> None:
    answer = openai_for(node).embeddings.create(
        model="tiny", input=TEXTS, extra_headers={"Inferproof-Nonce": "n-7"}
    )
    receipt = (answer.model_extra or {})["inferproof"]
    assert _checks(node, receipt, tiny_gguf(), nonce="n-7")["verified"][0] == "True"
    checks = _checks(node, _flip(receipt), tiny_gguf(), nonce="n-7")
    assert checks["verified"][0] == "False"
    assert checks["output.digest"][0] == "failed"
    assert checks["output.digest"][1].startswith("the vectors hash to sha256:")
    # ... and another nonce than the one the receipt carries is refused too.
    assert _checks(node, receipt, tiny_gguf(), nonce="other")["nonce"][0] == "failed"


def test_private_embeddings_over_http(node: Running) -> None:
    with node.http() as http:
        response = http.post(
            EMBED, json={"model": "tiny", "input": TEXTS}, headers={"Inferproof-Private": "true"}
        )
    assert response.status_code == 200, response.text
    receipt = response.json()["inferproof"]
    assert receipt["bundle"]["outputs"] == {} and "inputs" not in receipt["bundle"]
    opening = EmbeddingOpening.from_json(receipt["opening"])
    policy = Policy(require_input=True, require_reexecution=True)
    checks = _checks(node, receipt, tiny_gguf(), embedding_opening=opening, policy=policy)
    assert checks["verified"][0] == "True", checks
    without = _checks(node, receipt, tiny_gguf(), policy=policy)
    assert without["input"][0] == "failed" and without["output.digest"][0] == "not_checked"


def _openai_error(
    response: httpx.Response, status: int, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    error = dict(body["error"])
    assert error["type"] == ("invalid_request_error" if status < 500 else "server_error")
    assert (error["code"], error["param"]) == (code, param), error
    return error


def _body(**fields: Any) -> dict[str, Any]:
    return {"model": "tiny", "input": "hello", **fields}


LONG = "word " * 600
# (body or raw bytes, status, code, param, words the message must hold)
CASES: list[tuple[Any, int, str | None, str | None, str]] = [
    (_body(model="nope"), 404, "model_not_found", "model", "no model 'nope'"),
    (_body(model="../../etc/x.gguf"), 404, "model_not_found", "model", "no embedding model"),
    (_body(model=""), 400, None, "model", "non-empty string"),
    (_body(input=""), 400, None, "input[0]", "is empty"),
    (_body(input=[]), 400, None, "input", "non-empty list"),
    (_body(input=[101, 102]), 400, None, "input", "token arrays are not supported"),
    (_body(input=[[101, 102]]), 400, None, "input[0]", "token arrays are not supported"),
    (_body(input=["ok", 5]), 400, None, "input[1]", "must be a string"),
    (_body(input=["a"] * 2049), 400, None, "input", "over the cap of 2048"),
    (_body(input=["short", LONG]), 400, "context_length_exceeded", "input",
     "context overflow: input[1]"),
    (_body(dimensions=8), 400, "unsupported_parameter", "dimensions", "unsupported parameter"),
    (_body(encoding_format="int8"), 400, None, "encoding_format", "must be one of float"),
    (_body(user=7), 400, None, "user", "must be a string"),
    ({"model": "tiny"}, 400, None, "input", "input is required"),
    ([1, 2], 400, None, None, "JSON object"),
    (b'{"model": "tiny", "input": "a", "input": "b"}', 400, None, None, "duplicate"),
    (b"not json", 400, None, None, "not valid JSON"),
]  # fmt: skip


def test_every_bad_request_gets_its_openai_error(node: Running, small_model: bytes) -> None:
    pushed(node, small_model)
    cases = [
        *CASES,
        (_body(model="mlp:1"), 400, None, "model", "onnx model, not a GGUF chat model"),
    ]
    with node.http() as http:
        for body, status, code, param, words in cases:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            response = http.post(EMBED, content=raw, headers={"content-type": "application/json"})
            error = _openai_error(response, status, code, param)
            assert words in error["message"], (body, error)
        bad_private = http.post(EMBED, json=_body(), headers={"Inferproof-Private": "yes"})
        long_nonce = http.post(EMBED, json=_body(), headers={"Inferproof-Nonce": "n" * 257})
        assert "Inferproof-Private" in _openai_error(bad_private, 400)["message"]
        assert "nonce must be 1 to" in _openai_error(long_nonce, 400, None, "nonce")["message"]
        good = http.post(EMBED, json=_body())  # the node is still up and answers
    assert good.status_code == 200 and len(good.json()["data"][0]["embedding"]) == 64
    assert node.node.log.size == 1  # no receipt for any refused request


def test_the_official_client_raises_the_matching_errors(node: Running) -> None:
    from openai import AuthenticationError, BadRequestError, NotFoundError

    client = openai_for(node)
    with pytest.raises(NotFoundError) as missing:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert missing.value.code == "model_not_found" and missing.value.param == "model"
    with pytest.raises(BadRequestError) as overflow:
        client.embeddings.create(model="tiny", input=["x", LONG])
    assert overflow.value.code == "context_length_exceeded" and overflow.value.param == "input"
    with pytest.raises(BadRequestError) as unsupported:
        client.embeddings.create(model="tiny", input="x", dimensions=16)
    assert unsupported.value.code == "unsupported_parameter"
    with pytest.raises(AuthenticationError, match="needs a node token") as denied:
        openai_for(node, api_key="sk-not-a-node-token").embeddings.create(model="tiny", input="x")
    assert denied.value.code == "invalid_api_key"
    with node.http(auth=False) as http:
        response = http.post(EMBED, json=_body())
    _openai_error(response, 401, "invalid_api_key")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_body_over_the_cap_is_413(make_node: Callable[..., Running]) -> None:
    running = serving(make_node, tiny_gguf(), NodeConfig(max_body_bytes=4096))
    with running.http() as http:
        response = http.post(EMBED, json=_body(input="x" * 5000))
        assert response.status_code == 413
        assert "over this node's cap" in response.json()["error"]["message"]
        assert http.post(EMBED, json=_body()).status_code == 200


def test_a_slow_embedding_times_out(make_node: Callable[..., Running]) -> None:
    running = serving(make_node, tiny_gguf(), NodeConfig(chat_timeout=0.05))
    with running.http() as http:
        # 400 inputs of ~450 tokens: seconds of work, far over the 50 ms deadline.
        response = http.post(EMBED, json=_body(input=["word " * 150] * 400))
    error = _openai_error(response, 504, "timeout")
    assert "did not finish within 0.05 s" in error["message"]
