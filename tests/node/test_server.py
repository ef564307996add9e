"""The node's HTTP API against a real uvicorn server: answers, errors, limits, auth."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from inferproof.hub import sign_model
from inferproof.node import NodeConfig, TokenStore
from inferproof.receipts import Bundle
from inferproof.verify import Material, Policy

from .conftest import Running, pushed

X = {"x": [[0.5, -1.0, 2.0, 0.0, 1.5, -0.25, 3.0, 1.0]]}


def _error(response: Any, status: int, code: str | None = None) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    if code is not None:
        assert body["error"]["code"] == code
    return str(body["error"]["message"])


def _infer(running: Running, body: dict[str, Any]) -> Any:
    with running.http() as http:
        return http.post("/v1/infer", json=body)


def test_identity_names_the_node_and_log_keys(running: Running) -> None:
    with running.http(auth=False) as http:
        ident = http.get("/v1/identity").json()
    assert base64.b64decode(ident["node_key"]) == running.node.public_key
    assert ident["node_id"] == "sha256:" + hashlib.sha256(running.node.public_key).hexdigest()
    assert ident["log"]["verifier_key"] == str(running.node.log.verifier_key)
    assert ident["environment"]["hardware_backed"] is False
    assert ident["attestation"] is None


def test_infer_returns_a_bundle_that_verifies_and_is_stored(
    running: Running, small_model: bytes
) -> None:
    pushed(running, small_model)
    response = _infer(running, {"model": "mlp:1", "inputs": X, "nonce": "n-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    bundle = Bundle.from_json(body["bundle"])
    tensors = {"x": np.array(X["x"], np.float32)}
    report = running.node.verifier(
        Policy(require_log=True, require_nonce=True, require_input=True)
    ).check(bundle, Material(inputs=tensors, nonce="n-1", model_bytes=small_model))
    assert report.verified, report.to_json()
    # The receipt digest is SHA-256 of the RFC 8785 envelope, computed here with rfc8785.
    expected = "sha256:" + hashlib.sha256(rfc8785.dumps(body["bundle"]["dsseEnvelope"])).hexdigest()
    assert body["receipt_digest"] == expected
    assert running.node.log.entry(body["log_index"]) == rfc8785.dumps(
        body["bundle"]["dsseEnvelope"]
    )
    assert body["opening"] is None
    with running.http(auth=False) as http:
        by_id = http.get(f"/v1/bundles/{body['bundle_id']}")  # the id is the capability
        anonymous = http.get(f"/v1/receipts/{expected}/bundle")  # the digest is public
    with running.http() as http:
        by_digest = http.get(f"/v1/receipts/{expected}/bundle")
    assert by_id.json() == body["bundle"] == by_digest.json()
    assert anonymous.status_code == 401  # review finding 11.6
    outputs = bundle.outputs["y"]
    assert body["outputs"]["y"] == outputs


def test_private_input_opening_goes_to_the_caller_only(
    running: Running, small_model: bytes
) -> None:
    pushed(running, small_model)
    body = _infer(running, {"model": "mlp:1", "inputs": X, "private_input": True}).json()
    salt = bytes.fromhex(body["opening"]["salt"])
    assert len(salt) == 32 and "inputs" not in body["bundle"]
    with running.http(auth=False) as http:
        stored = http.get(f"/v1/bundles/{body['bundle_id']}").text
    assert body["opening"]["salt"] not in stored and "inputs" not in json.loads(stored)
    tensors = {"x": np.array(X["x"], np.float32)}
    verifier = running.node.verifier(Policy(require_input=True))
    bundle = Bundle.from_json(body["bundle"])
    assert verifier.check(bundle, Material(inputs=tensors, salt=salt)).verified
    wrong = bytes([salt[0] ^ 1]) + salt[1:]
    report = verifier.check(bundle, Material(inputs=tensors, salt=wrong))
    assert report.first_failure is not None and report.first_failure.name == "input"


def test_push_multipart_with_signature(
    running: Running, small_model: bytes, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "pub.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    sig = sign_model(small_model, key_file)
    with running.http() as http:
        files = {"model": ("m.onnx", small_model), "signature": ("m.sig", sig)}
        record = http.post(
            "/v1/models", params={"name": "signed", "version": "2"}, files=files
        ).json()
        assert record["signature_digest"] == "sha256:" + hashlib.sha256(sig).hexdigest()
        assert http.get(f"/v1/blobs/{record['signature_digest']}").content == sig
        answer = http.post("/v1/infer", json={"model": "signed:2", "inputs": X}).json()
        assert answer["bundle"]["modelSignature"] == sig.decode()
        # A signature over another model is refused, and nothing is stored under the name.
        other = sign_model(small_model + b"\x00", key_file)
        files = {"model": ("m.onnx", small_model), "signature": ("m.sig", other)}
        msg = _error(http.post("/v1/models", params={"name": "bad"}, files=files), 400)
        assert "signature is over" in msg
        _error(http.get("/v1/models/bad"), 404, "model_not_found")


def test_models_list_show_and_download(running: Running, small_model: bytes) -> None:
    digest = pushed(running, small_model)
    with running.http(auth=False) as http:
        names = {(m["name"], m["version"]) for m in http.get("/v1/models").json()["models"]}
        assert ("mlp", "1") in names
        shown = http.get(f"/v1/models/{digest}").json()
        assert shown["inputs"] == [{"name": "x", "dtype": "float32", "shape": [None, 8]}]
        blob = http.get(f"/v1/blobs/{digest}")
        assert hashlib.sha256(blob.content).hexdigest() == digest.split(":")[1]
        assert blob.headers["etag"] == f'"{digest}"'
        _error(http.get("/v1/blobs/sha256:" + "0" * 64), 404)
        _error(http.get("/v1/models/nope:1"), 404, "model_not_found")
        _error(http.get("/v1/models/bad name"), 422)


def test_writes_need_a_valid_token(running: Running, small_model: bytes) -> None:
    digest = pushed(running, small_model)
    with running.http(auth=False) as http:
        for headers in ({}, {"Authorization": "Bearer ipt_wrong"}, {"Authorization": "Basic abc"}):
            r = http.post("/v1/infer", json={"model": digest, "inputs": X}, headers=headers)
            _error(r, 401, "unauthorized")
            assert r.headers["www-authenticate"] == "Bearer"
        r = http.post("/v1/models", params={"name": "x"}, content=small_model,
                      headers={"content-type": "application/octet-stream"})  # fmt: skip
        _error(r, 401)
    store = TokenStore(running.home)
    second = store.create("second")
    with running.http(auth=False) as http:
        auth = {"Authorization": f"Bearer {second}"}
        assert (
            http.post("/v1/infer", json={"model": digest, "inputs": X}, headers=auth).status_code
            == 200
        )
        store.revoke(store.list()[-1].hash[:12])
        _error(http.post("/v1/infer", json={"model": digest, "inputs": X}, headers=auth), 401)
    # Only hashes are stored.
    assert second not in (running.home / "node" / "tokens").read_text()
    assert (running.home / "node" / "tokens").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"model": "mlp:1", "inputs": {"x": [[1.0, 2.0]]}}, 400, "shape"),
        ({"model": "mlp:1", "inputs": {"z": [[1.0] * 8]}}, 400, "missing input"),
        (
            {
                "model": "mlp:1",
                "inputs": {"x": {"dtype": "float64", "shape": [1, 8], "data": [0] * 8}},
            },
            400,
            "dtype",
        ),
        (
            {
                "model": "mlp:1",
                "inputs": {"x": {"dtype": "float32", "shape": [1, 8], "data": [0] * 7}},
            },
            400,
            "do not fill",
        ),
        ({"model": "missing:1", "inputs": X}, 404, "no model"),
        ({"model": "/etc/passwd.onnx", "inputs": X}, 422, "model"),
        ({"model": "mlp:1", "inputs": X, "mode": "fast"}, 422, "mode"),
        ({"model": "mlp:1", "inputs": {}}, 422, "inputs"),
        ({"model": "mlp:1", "inputs": X, "nonce": "n" * 257}, 422, "nonce"),
        ({"model": "mlp:1", "inputs": X, "extra": 1}, 422, "extra"),
    ],
)
def test_bad_requests_are_clean_4xx(
    running: Running, small_model: bytes, body: dict[str, Any], status: int, needle: str
) -> None:
    pushed(running, small_model)
    message = _error(_infer(running, body), status)
    assert needle in message
    with running.http(auth=False) as http:
        assert http.get("/healthz").status_code == 200


def test_malformed_json_bodies(running: Running, small_model: bytes) -> None:
    pushed(running, small_model)
    with running.http() as http:

        def raw(data: bytes) -> Any:
            return http.post(
                "/v1/infer", content=data, headers={"content-type": "application/json"}
            )

        assert "duplicate JSON key" in _error(
            raw(b'{"model":"mlp:1","model":"mlp:1","inputs":{"x":[[1]]}}'), 400
        )
        assert "NaN" in _error(raw(b'{"model":"mlp:1","inputs":{"x":[[NaN,1,1,1,1,1,1,1]]}}'), 400)
        _error(raw(b'{"model":'), 400)
        _error(
            http.post("/v1/infer", content=b"model=x", headers={"content-type": "text/plain"}), 422
        )
        _error(
            http.post(
                "/v1/models",
                params={"name": "a"},
                content=b"x",
                headers={"content-type": "text/plain"},
            ),
            415,
        )
        _error(
            http.post(
                "/v1/models",
                params={"name": "a"},
                content=b"not onnx",
                headers={"content-type": "application/octet-stream"},
            ),
            400,
        )
        _error(http.get("/v1/nothing"), 404)
        _error(http.delete("/v1/models"), 405)
        assert http.get("/healthz").status_code == 200


def test_size_limits(make_node: Any, small_model: bytes) -> None:
    running = make_node(NodeConfig(max_body_bytes=4096, max_model_bytes=len(small_model) - 1))
    with running.http() as http:
        r = http.post(
            "/v1/models",
            params={"name": "m"},
            content=small_model,
            headers={"content-type": "application/octet-stream"},
        )
        assert "cap" in _error(r, 413, "too_large")
        r = http.post("/v1/infer", json={"model": "m", "inputs": {"x": [[0.0] * 8] * 400}})
        _error(r, 413, "too_large")
        assert http.get("/healthz").status_code == 200


def test_tensor_cap_and_batch_cap(make_node: Any, small_model: bytes) -> None:
    running = make_node(NodeConfig(max_tensor_elements=16, max_batch_items=2))
    pushed(running, small_model)
    with running.http() as http:
        r = http.post("/v1/infer", json={"model": "mlp:1", "inputs": {"x": [[0.0] * 8] * 3}})
        assert "cap of 16" in _error(r, 413)
        items = [{"inputs": X}] * 3
        assert "cap of 2" in _error(
            http.post("/v1/infer/batch", json={"model": "mlp:1", "items": items}), 413
        )


def test_batch_gives_each_item_its_own_receipt(running: Running, small_model: bytes) -> None:
    pushed(running, small_model)
    items = [{"inputs": {"x": [[float(i)] * 8]}, "nonce": f"n{i}"} for i in range(6)]
    items.append({"inputs": {"x": [[1.0]]}})
    with running.http() as http:
        results = http.post("/v1/infer/batch", json={"model": "mlp:1", "items": items}).json()[
            "results"
        ]
        assert "shape" in results[-1]["error"]["message"]
        good = [r["result"] for r in results[:-1]]
        assert len({r["log_index"] for r in good}) == 6
        verifier = running.node.verifier(Policy(require_nonce=True, require_log=True))
        for i, r in enumerate(good):
            assert verifier.check(Bundle.from_json(r["bundle"]), Material(nonce=f"n{i}")).verified
        _error(
            http.post("/v1/infer/batch", json={"model": "mlp:1", "mode": "zk", "items": items[:1]}),
            400,
        )
        _error(http.post("/v1/infer/batch", json={"model": "gone", "items": items[:1]}), 404)


def _slow_infer(running_node: list[Any], seconds: float) -> Any:
    def infer(*args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return running_node[0].infer(*args, **kwargs)

    return infer


def test_inflight_limit_refuses_with_429(make_node: Any, small_model: bytes) -> None:
    holder: list[Any] = []
    running = make_node(NodeConfig(max_inflight=1), infer=_slow_infer(holder, 1.0))
    holder.append(running.node)
    pushed(running, small_model)
    first: list[Any] = []
    thread = threading.Thread(
        target=lambda: first.append(_infer(running, {"model": "mlp:1", "inputs": X}))
    )
    thread.start()
    time.sleep(0.3)
    busy = _infer(running, {"model": "mlp:1", "inputs": X})
    _error(busy, 429, "busy")
    assert busy.headers["retry-after"] == "1"
    with running.http(auth=False) as http:
        assert http.get("/healthz").status_code == 200  # health stays answerable
    thread.join()
    assert first[0].status_code == 200


def test_request_timeout_is_504(make_node: Any, small_model: bytes) -> None:
    holder: list[Any] = []
    running = make_node(NodeConfig(request_timeout=0.2), infer=_slow_infer(holder, 1.0))
    holder.append(running.node)
    pushed(running, small_model)
    assert "did not finish" in _error(
        _infer(running, {"model": "mlp:1", "inputs": X}), 504, "timeout"
    )


def test_metrics_count_requests_and_log_size(running: Running, small_model: bytes) -> None:
    pushed(running, small_model)
    for _ in range(3):
        assert _infer(running, {"model": "mlp:1", "inputs": X}).status_code == 200
    _infer(running, {"model": "mlp:1", "inputs": {}})
    with running.http(auth=False) as http:
        text = http.get("/metrics").text
    lines = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert (
        float(lines['inferproof_http_requests_total{method="POST",route="/v1/infer",status="200"}'])
        == 3
    )
    assert (
        float(lines['inferproof_http_requests_total{method="POST",route="/v1/infer",status="422"}'])
        == 1
    )
    assert float(lines["inferproof_log_size"]) == running.node.log.size == 3
    assert float(lines['inferproof_inferences_total{mode="vanilla"}']) == 3
    assert float(lines['inferproof_jobs{state="queued"}']) == 0
    assert (
        'inferproof_http_request_duration_seconds_count{method="POST",route="/v1/infer"}' in lines
    )
