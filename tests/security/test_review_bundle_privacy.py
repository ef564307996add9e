"""Issue 11, item 6: anyone could read every bundle.

Log entries are public tiles, and ``GET /v1/receipts/{digest}/bundle`` served the
bundle for ``sha256(entry)``: every caller's inputs and outputs. Reading a bundle
by receipt digest now needs a token (its id stays an unguessable capability), and
a private-input receipt commits to a salted output digest and keeps the outputs
out of its bundle unless the caller asks to reveal them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import rfc8785
from typer.testing import CliRunner

from inferproof import LocalNode
from inferproof.cli import app
from inferproof.client import Client
from inferproof.errors import InputError
from inferproof.receipts import Bundle
from inferproof.runtime import tensors_digest
from inferproof.testing import mlp_model
from inferproof.verify import Material

from ..node.conftest import Running, pushed

X = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)


def _check(report: object, name: str) -> object:
    return next(c for c in report.checks if c.name == name)  # type: ignore[attr-defined]


def test_bundles_by_public_digest_need_a_token(running: Running, small_model: bytes) -> None:
    pushed(running, small_model)
    with running.http() as http:
        body = http.post("/v1/infer", json={"model": "mlp:1", "inputs": {"x": X.tolist()}}).json()
    digest = "sha256:" + hashlib.sha256(rfc8785.dumps(body["bundle"]["dsseEnvelope"])).hexdigest()
    with running.http(auth=False) as anonymous:
        refused = anonymous.get(f"/v1/receipts/{digest}/bundle")
        by_id = anonymous.get(f"/v1/bundles/{body['bundle_id']}")
    assert refused.status_code == 401 and "bearer token" in refused.json()["error"]["message"]
    assert by_id.status_code == 200


def test_a_private_receipt_shows_neither_input_nor_output(
    running: Running, small_model: bytes, tmp_path: Path
) -> None:
    pushed(running, small_model)
    with Client(running.url, token=running.token, home=tmp_path / "c") as client:
        answer = client.infer("mlp:1", {"x": X}, private_input=True)
        stored = client.bundle(answer.bundle_id)
    assert answer.report is not None and answer.report.verified
    assert _check(answer.report, "output.digest").passed  # type: ignore[attr-defined]
    expected = running.node.infer("mlp:1", {"x": X}).outputs["y"]
    np.testing.assert_array_equal(answer.outputs["y"], expected)
    # What anyone can fetch: no input, no output, and no plain output digest.
    assert stored.inputs is None and stored.outputs == {}
    assert stored.receipt.output_digest != tensors_digest({"y": expected})
    assert stored.receipt.parameters["output"] == "committed"
    # Only the caller can open it.
    verifier = running.node.verifier()
    alone = verifier.check(stored)
    assert _check(alone, "output.digest").status.value == "not_checked"  # type: ignore[attr-defined]
    opened = verifier.check(stored, Material(salt=answer.salt, outputs=answer.outputs))
    assert _check(opened, "output.digest").passed  # type: ignore[attr-defined]
    lie = {"y": expected + np.float32(0.5)}
    wrong = verifier.check(stored, Material(salt=answer.salt, outputs=lie))
    assert (
        not wrong.verified
        and "do not match the commitment" in _check(wrong, "output.digest").detail
    )  # type: ignore[attr-defined]


def test_the_caller_may_reveal_the_output(tmp_path: Path) -> None:
    with LocalNode(tmp_path / "n") as node:
        node.push(mlp_model((8, 2)), name="m")
        result = node.infer("m", {"x": X}, private_input=True, private_output=False)
        assert result.bundle.inputs is None
        assert result.bundle.receipt.output_digest == tensors_digest(result.outputs)
        assert node.verifier().check(result.bundle).verified


def test_zk_cannot_keep_an_output_private(tmp_path: Path) -> None:
    with LocalNode(tmp_path / "n") as node:
        node.push(mlp_model((8, 2)), name="m")
        with pytest.raises(InputError, match="publishes its outputs"):
            node.infer("m", {"x": X}, private_input=True, mode="zk")


def test_cli_opening_opens_input_and_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERPROOF_HOME", str(tmp_path / "home"))
    model, inp, out = tmp_path / "m.onnx", tmp_path / "x.json", tmp_path / "b.json"
    model.write_bytes(mlp_model((8, 2)))
    inp.write_text(json.dumps({"x": X.tolist()}))
    run = CliRunner().invoke
    done = run(app, ["infer", str(model), "--input", str(inp), "-o", str(out), "--private-input"])
    assert done.exit_code == 0, done.stderr
    opening = tmp_path / "b.json.opening"
    assert "outputs" in json.loads(opening.read_text())
    assert Bundle.read(out).outputs == {}
    checks = json.loads(
        run(
            app, ["verify", str(out), "--input", str(inp), "--opening", str(opening), "--json"]
        ).stdout
    )["checks"]
    status = {c["name"]: c["status"] for c in checks}
    assert status["output.digest"] == "passed" and status["input"] == "passed"
    bare = json.loads(run(app, ["verify", str(out), "--json"]).stdout)["checks"]
    assert {c["name"]: c["status"] for c in bare}["output.digest"] == "not_checked"
    revealed = run(app, ["infer", str(model), "--input", str(inp), "-o", str(out),
                         "--private-input", "--public-output"])  # fmt: skip
    assert revealed.exit_code == 0 and Bundle.read(out).outputs != {}
    lone = run(app, ["infer", str(model), "--input", str(inp), "-o", str(out), "--public-output"])
    assert lone.exit_code == 2 and "--public-output applies with --private-input" in lone.stderr


def test_by_digest_only_the_token_it_was_issued_under(running: Running, small_model: bytes) -> None:
    """The digest is public (log entries): another token holder must not read by it."""
    from inferproof.node import TokenStore

    pushed(running, small_model)
    other = TokenStore(running.home).create("another caller")
    with running.http() as http:
        body = http.post("/v1/infer", json={"model": "mlp:1", "inputs": {"x": X.tolist()}}).json()
        digest = body["receipt_digest"]
        mine = http.get(f"/v1/receipts/{digest}/bundle")
    with running.http(auth=False) as http:
        theirs = http.get(f"/v1/receipts/{digest}/bundle",
                          headers={"Authorization": f"Bearer {other}"})  # fmt: skip
    assert mine.status_code == 200 and theirs.status_code == 404
