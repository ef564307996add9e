"""Issue 11, item 1 (critical): a write token was enough to steal the node's signing key.

An ONNX model whose tensors keep their data in an external file ``keys/node.key``
was accepted by push, and one inference returned the key's bytes, because
onnxruntime resolves a relative external-data location against the working
directory when it loads a model from bytes. Every path that loads a model (push,
inference, a verifier's re-execution, ``verify --model``) now refuses any model
that references a file or a custom operator. The hostile models are built by
``assets/make_onnx_assets.py``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from inferproof import LocalNode
from inferproof.cli import app
from inferproof.engine import Claim, utc_now
from inferproof.errors import InputError
from inferproof.receipts import Bundle
from inferproof.runtime import OnnxModel, encode_tensors, tensors_digest
from inferproof.verify import Material, Policy

from ..node.conftest import start

ASSETS = Path(__file__).parent / "assets"
EXTERNAL = [
    "review-onnx-external-initializer.onnx",
    "review-onnx-external-constant.onnx",
    "review-onnx-external-subgraph.onnx",
]
HOSTILE = [*EXTERNAL, "review-onnx-custom-op.onnx"]


def _asset(name: str) -> bytes:
    return (ASSETS / name).read_bytes()


@pytest.fixture()
def in_node_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalNode:
    """A node whose working directory is its home, so ``keys/node.key`` resolves."""
    node = LocalNode(tmp_path / "home")
    monkeypatch.chdir(node.home.root)
    return node


@pytest.mark.parametrize("name", EXTERNAL)
def test_the_assets_really_read_the_key(in_node_home: LocalNode, name: str) -> None:
    """Without the guard, onnxruntime hands out the node key: the assets are real attacks."""
    session = ort.InferenceSession(_asset(name), providers=["CPUExecutionProvider"])
    feeds = {"cond": np.array(True)} if "subgraph" in name else {}
    leaked = bytes(session.run(None, feeds)[0])
    assert leaked == (in_node_home.home.keys / "node.key").read_bytes()


@pytest.mark.parametrize("name", HOSTILE)
def test_the_runtime_refuses_to_load_them(in_node_home: LocalNode, name: str) -> None:
    what = "custom operators" if "custom" in name else r"external file 'keys/node\.key'"
    with pytest.raises(InputError, match=what):
        OnnxModel(_asset(name))


@pytest.mark.parametrize("name", HOSTILE)
def test_push_refuses_them_and_stores_nothing(in_node_home: LocalNode, name: str) -> None:
    with pytest.raises(InputError, match=r"only self-contained models|custom operators"):
        in_node_home.push(_asset(name), name="evil")
    assert in_node_home.hub.list() == []
    assert not in_node_home.hub.blobs.has(f"sha256:{hashlib.sha256(_asset(name)).hexdigest()}")


def test_ort_format_bytes_are_not_sniffed(in_node_home: LocalNode) -> None:
    with pytest.raises(InputError, match="not a loadable ONNX model"):
        OnnxModel(b"\x00\x00\x00\x00ORTM" + bytes(64))


def test_http_push_is_refused_with_a_400(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    running = start(tmp_path / "node")
    monkeypatch.chdir(running.home)
    try:
        with running.http() as http:
            got = http.post(
                "/v1/models",
                params={"name": "evil"},
                content=_asset("review-onnx-external-initializer.onnx"),
                headers={"content-type": "application/octet-stream"},
            )
            listed = http.get("/v1/models").json()["models"]
    finally:
        running.stop()
    assert got.status_code == 400, got.text
    assert "external file" in got.json()["error"]["message"]
    assert listed == []


def _receipt_naming(node: LocalNode, model: bytes) -> Bundle:
    """A receipt a dishonest node signs for the hostile model (it cannot push it now)."""
    x = {"cond": np.array(True)}
    out = {"y": np.zeros(119, np.uint8)}
    digest = tensors_digest(out)
    claim = Claim(
        output_digest=digest,
        model={
            "digest": f"sha256:{hashlib.sha256(model).hexdigest()}",
            "name": "evil",
            "version": None,
            "format": "onnx",
        },
        input_block={"digest": tensors_digest(x)},
        runtime={"engine": "onnxruntime", "settings": {}},
        nonce=None,
        started=utc_now(),
        finished=utc_now(),
        parameters={"mode": "vanilla"},
        proofs=[{"type": "reexecution", "settings": {}}],
    )
    return node.issuer.issue(
        claim, outputs=encode_tensors(out), inputs=encode_tensors(x), model_signature=None
    )


def test_a_verifier_does_not_run_the_hostile_model(in_node_home: LocalNode) -> None:
    model = _asset("review-onnx-external-subgraph.onnx")
    bundle = _receipt_naming(in_node_home, model)
    report = in_node_home.verifier(Policy(require_reexecution=True)).check(
        bundle, Material(model_bytes=model)
    )
    check = next(c for c in report.checks if c.name == "output.reexecution")
    assert not report.verified and not check.passed
    assert "external file" in check.detail


def test_cli_verify_with_the_hostile_model(
    in_node_home: LocalNode, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("INFERPROOF_HOME", str(in_node_home.home.root))
    model = tmp_path / "evil.onnx"
    model.write_bytes(_asset("review-onnx-external-initializer.onnx"))
    bundle = tmp_path / "b.json"
    _receipt_naming(in_node_home, model.read_bytes()).write(bundle)
    result = CliRunner().invoke(app, ["verify", str(bundle), "--model", str(model), "--json"])
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["output.reexecution"]["status"] == "failed"
    assert "external file" in checks["output.reexecution"]["detail"]
    key = (in_node_home.home.keys / "node.key").read_bytes()
    assert key.decode().splitlines()[1] not in result.stdout
