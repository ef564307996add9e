"""The OpenAI-compatible endpoints against a real uvicorn server, through the official
``openai`` client: answers, streams, receipts that verify, the stored bundles."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
import rfc8785

from inferproof.client import Client
from inferproof.receipts import Bundle

from ._chat import openai_for, report, serving, sse_events, tiny_gguf
from .conftest import Running


@pytest.fixture()
def gguf() -> bytes:
    return tiny_gguf()


@pytest.fixture()
def node(make_node: Callable[..., Running], gguf: bytes) -> Running:
    return serving(make_node, gguf)


def _bundle_by_id(running: Running, bundle_id: str) -> dict[str, Any]:
    with running.http(auth=False) as http:
        response = http.get(f"/v1/bundles/{bundle_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_models_serve_the_inferproof_client_and_openai(node: Running, small_model: bytes) -> None:
    from .conftest import pushed

    pushed(node, small_model)  # an ONNX model too: in `models`, not in OpenAI's chat list
    assert [m.id for m in openai_for(node).models.list().data] == ["tiny"]
    with Client(node.url) as client:
        records = {r.name: r.format for r in client.models()}
    assert records == {"tiny": "gguf", "mlp": "onnx"}
    with node.http(auth=False) as http:
        body = http.get("/v1/models").json()
    assert set(body) == {"object", "data", "models"} and body["object"] == "list"
    assert body["data"][0]["object"] == "model" and body["data"][0]["owned_by"] == "inferproof"
    shown = openai_for(node).models.retrieve("tiny")
    assert (shown.id, shown.object, shown.owned_by) == ("tiny", "model", "inferproof")
    with Client(node.url) as client:
        assert client.model("tiny").format == "gguf"  # our client reads the same answer


def test_chat_answer_carries_a_receipt_that_verifies(node: Running, gguf: bytes) -> None:
    raw = openai_for(node).chat.completions.with_raw_response.create(
        model="tiny",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        temperature=0,
        max_tokens=20,
        extra_headers={"Inferproof-Nonce": "nonce-1"},
    )
    answer = raw.parse()
    receipt = (answer.model_extra or {})["inferproof"]
    assert answer.object == "chat.completion" and answer.model == "tiny"
    assert answer.usage.completion_tokens == 20 and answer.choices[0].finish_reason == "length"
    # The header names the stored bundle, which is the one in the response.
    bundle_id = raw.headers["inferproof-bundle-id"]
    assert receipt["bundle_id"] == bundle_id
    assert _bundle_by_id(node, bundle_id) == receipt["bundle"]
    # The receipt digest is SHA-256 of the RFC 8785 envelope, as the log holds it.
    envelope = rfc8785.dumps(receipt["bundle"]["dsseEnvelope"])
    assert receipt["receipt_digest"] == "sha256:" + hashlib.sha256(envelope).hexdigest()
    bundle = Bundle.from_json(receipt["bundle"])
    assert bundle.receipt.parameters["task"] == "chat"
    assert bundle.outputs["text"] == answer.choices[0].message.content

    checks = report(node, receipt, gguf, nonce="nonce-1")
    assert checks["verified"] == ("True", "")
    assert checks["output.fingerprint"][0] == "passed"
    assert checks["output.fingerprint"][1].startswith("bit-identical: prefill of")
    assert checks["nonce"][0] == "passed" and checks["log.inclusion"][0] == "passed"
    # Another nonce than the one sent: the verifier refuses the receipt.
    assert report(node, receipt, gguf, nonce="nonce-2")["nonce"][0] == "failed"
    # An answer changed after signing no longer matches the signed subject.
    tampered = json.loads(json.dumps(receipt))
    tampered["bundle"]["outputs"]["text"] = "Paris" + tampered["bundle"]["outputs"]["text"][5:]
    checks = report(node, tampered, gguf, nonce="nonce-1")
    assert checks["output.digest"][0] == "failed" and checks["verified"][0] == "False"


def test_stream_and_whole_answer_agree_and_both_verify(node: Running, gguf: bytes) -> None:
    client = openai_for(node)
    params: dict[str, Any] = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Tell me a short story"}],
        "max_tokens": 40,
    }
    for sampling in ({"temperature": 0}, {"temperature": 0.9, "seed": 7}):
        whole = client.chat.completions.create(**params, **sampling)
        chunks = list(
            client.chat.completions.create(
                **params, **sampling, stream=True, stream_options={"include_usage": True}
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == whole.choices[0].message.content
        assert chunks[0].choices[0].delta.role == "assistant"
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
        last = chunks[-1]
        assert last.choices == [] and last.usage.completion_tokens == 40
        receipt = (last.model_extra or {})["inferproof"]
        streamed = Bundle.from_json(receipt["bundle"])
        stored = Bundle.from_json((whole.model_extra or {})["inferproof"]["bundle"])
        # Same request, same answer: the same output digest, two receipts.
        assert streamed.receipt.output_digest == stored.receipt.output_digest
        assert (
            receipt["receipt_digest"] != (whole.model_extra or {})["inferproof"]["receipt_digest"]
        )
        checks = report(node, receipt, gguf)
        assert checks["output.fingerprint"][0] == "passed"
        assert checks["output.fingerprint"][1].startswith("bit-identical: prefill of")
        assert _bundle_by_id(node, receipt["bundle_id"]) == receipt["bundle"]


def test_stream_names_its_bundle_in_the_header(node: Running) -> None:
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0,
        "max_tokens": 12,
        "stream": True,
    }
    with node.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        bundle_id = response.headers["inferproof-bundle-id"]
        events = sse_events(response.read().decode())
    assert events[-1] == "[DONE]"
    *chunks, last = events[:-1]
    assert all("inferproof" not in c for c in chunks)
    # Without include_usage the finish reason and the receipt share the last chunk.
    assert last["choices"][0]["finish_reason"] == "length" and "usage" not in last
    assert last["inferproof"]["bundle_id"] == bundle_id
    assert _bundle_by_id(node, bundle_id) == last["inferproof"]["bundle"]


def test_text_completions_stream_and_whole(node: Running, gguf: bytes) -> None:
    client = openai_for(node)
    whole = client.completions.create(model="tiny", prompt="Once upon", max_tokens=9, temperature=0)
    assert whole.object == "text_completion" and whole.usage.completion_tokens == 9
    chunks = list(
        client.completions.create(
            model="tiny", prompt="Once upon", max_tokens=9, temperature=0, stream=True
        )
    )
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    receipt = (chunks[-1].model_extra or {})["inferproof"]
    checks = report(node, receipt, gguf)
    assert checks["output.fingerprint"][0] == "passed"
    assert checks["output.fingerprint"][1].startswith("bit-identical: prefill of")
    # OpenAI's default for a text completion: 16 new tokens.
    default = client.completions.create(model="tiny", prompt="Once upon", temperature=0)
    assert default.usage.completion_tokens == 16


def test_private_request_commits_to_salted_digests(node: Running, gguf: bytes) -> None:
    answer = openai_for(node).chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "my secret question"}],
        temperature=0,
        max_tokens=8,
        extra_headers={"Inferproof-Private": "true", "Inferproof-Nonce": "n-private"},
    )
    receipt = (answer.model_extra or {})["inferproof"]
    stored = _bundle_by_id(node, receipt["bundle_id"])
    # The bundle the node keeps (and anyone may fetch) holds neither prompt nor answer.
    assert "my secret question" not in json.dumps(stored)
    assert answer.choices[0].message.content not in json.dumps(stored)
    assert stored.get("inputs") is None and not stored.get("outputs")
    assert receipt["opening"]["request"]["messages"][0]["content"] == "my secret question"
    checks = report(node, receipt, gguf, nonce="n-private")
    assert checks["verified"] == ("True", ""), checks
    assert checks["output.fingerprint"][0] == "passed"
    assert checks["output.fingerprint"][1].startswith("bit-identical: prefill of")
    without = report(node, {"bundle": stored}, gguf, nonce="n-private")
    assert without["input"][0] == "failed" and "private request" in without["input"][1]


def test_a_model_pushed_by_digest_and_version_answers_under_those_names(
    node: Running, gguf: bytes
) -> None:
    with node.http() as http:
        listed = http.get("/v1/models").json()["models"]
    digest = listed[0]["digest"]
    answer = openai_for(node).chat.completions.create(
        model=digest, messages=[{"role": "user", "content": "Hi"}], temperature=0, max_tokens=4
    )
    receipt = Bundle.from_json((answer.model_extra or {})["inferproof"]["bundle"]).receipt
    assert answer.model == digest and receipt.model_digest == digest


def test_concurrent_streams_on_one_model_all_verify(node: Running, gguf: bytes) -> None:
    import threading

    client = openai_for(node)
    results: list[Any] = [None] * 4
    prompts = ["Hi", "What is the capital of France?", "Tell me a story", "Thank you"]

    def run(i: int) -> None:
        chunks = list(
            client.chat.completions.create(
                model="tiny",
                messages=[{"role": "user", "content": prompts[i]}],
                temperature=0,
                max_tokens=30,
                stream=True,
            )
        )
        results[i] = (
            "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
            (chunks[-1].model_extra or {})["inferproof"],
        )

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, (text, receipt) in enumerate(results):
        assert Bundle.from_json(receipt["bundle"]).outputs["text"] == text
        checks = report(node, receipt, gguf)
        assert checks["output.fingerprint"][0] == "passed", (prompts[i], checks)
    with node.http(auth=False) as http:
        metrics = http.get("/metrics").text
    assert 'inferproof_inferences_total{mode="chat"} 4.0' in metrics
