"""A GGUF model asked for tensor inference over HTTP: a 400 that points to chat."""

from __future__ import annotations

from inferproof.testing import tiny_llama_gguf

from .conftest import Running, pushed


def test_infer_on_a_gguf_is_a_400_pointing_to_chat(running: Running) -> None:
    pushed(running, tiny_llama_gguf(), name="tiny")
    item = {"inputs": {"x": [[1.0, 2.0]]}}
    with running.http() as http:
        response = http.post("/v1/infer", json={"model": "tiny:1", **item})
        batch = http.post("/v1/infer/batch", json={"model": "tiny:1", "items": [item]})
        size = http.get("/healthz").json()["log_size"]
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "is a GGUF model, not ONNX" in error["message"]
    assert "POST /v1/chat/completions" in error["message"]
    assert batch.status_code == 200, batch.text
    (result,) = batch.json()["results"]
    assert "is a GGUF model, not ONNX" in result["error"]["message"]
    assert size == 0  # nothing was signed or logged
