"""ZK mode end to end: setup in the hub, `infer --mode zk`, verification and lies.

Real EZKL proofs on a tiny MLP with a dev SRS and the small lookup decomposition
the engine tests use (tests/zk/conftest.py), so each proof takes about a second.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from inferproof import LocalNode
from inferproof._canonical import canonical_json
from inferproof.cli import app
from inferproof.receipts import Bundle, sign_envelope
from inferproof.runtime import NamedInputs
from inferproof.verify import Policy

from ..zk.conftest import DECOMP, make_model

runner = CliRunner()


def checks(report: Any) -> dict[str, str]:
    return {c.name: c.status.value for c in report.checks}


@pytest.fixture(scope="module")
def zk_node(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    node = LocalNode(tmp_path_factory.mktemp("zkmode"))
    model = make_model(seed=3)
    node.push(model.data, name="tiny", version="1")
    steps: list[str] = []
    node.zk_setup(
        "tiny:1",
        [NamedInputs(s) for s in model.samples],
        dev_srs=True,
        decomp=DECOMP,
        progress=steps.append,
    )
    assert steps == ["settings", "calibrate", "compile", "srs", "keys"]
    again: list[str] = []
    node.zk_setup(
        "tiny:1",
        [NamedInputs(s) for s in model.samples],
        dev_srs=True,
        decomp=DECOMP,
        progress=again.append,
    )
    assert again == []  # set up once, never again
    yield node, model
    node.close()


def _x(seed: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).uniform(-1, 1, (1, 8)).astype(np.float32)}


def test_zk_receipt_verifies_only_with_dev_srs_allowed(zk_node) -> None:  # type: ignore[no-untyped-def]
    node, model = zk_node
    result = node.infer("tiny:1", _x(1), mode="zk")
    bundle = result.bundle
    entry = next(p for p in bundle.receipt.proofs if p["type"] == "zk")
    assert entry["srs"] == "dev" and entry["output_names"] == ["y"]
    # The answer is the circuit's output (what the proof covers), close to the float run's.
    float_y = node.infer("tiny:1", _x(1)).outputs["y"]
    assert result.outputs["y"].dtype == float_y.dtype
    assert np.allclose(result.outputs["y"], float_y, atol=0.05)
    assert [p["type"] for p in bundle.receipt.proofs] == ["signature", "zk"]
    strict = node.verifier().check(bundle, _material(model))
    assert checks(strict)["zk.proof"] == "passed"
    assert checks(strict)["zk.srs"] == "failed" and not strict.verified
    relaxed = node.verifier(Policy(allow_dev_srs=True)).check(bundle, _material(model))
    assert relaxed.verified, [c for c in relaxed.checks if c.status.value == "failed"]
    for name in ("zk.setup", "zk.model", "zk.input", "zk.output", "zk.model.rederived"):
        assert checks(relaxed)[name] == "passed", name


def _material(model: Any) -> Any:
    from inferproof.verify import Material

    return Material(model_bytes=model.data)


def test_vanilla_receipt_fails_a_zk_policy(zk_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = zk_node
    bundle = node.infer("tiny:1", _x(2)).bundle
    report = node.verifier(Policy(require_zk=True)).check(bundle)
    assert checks(report)["zk.proof"] == "failed"


def test_swapped_proof_is_rejected(zk_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = zk_node
    a = node.infer("tiny:1", _x(3), mode="zk").bundle
    b = node.infer("tiny:1", _x(4), mode="zk").bundle
    doc = json.loads(a.dumps())
    doc["proofs"]["zk"] = json.loads(b.dumps())["proofs"]["zk"]
    report = node.verifier(Policy(allow_dev_srs=True)).check(Bundle.from_json(doc))
    assert checks(report)["zk.proof"] == "failed"


def test_lying_node_proof_for_another_input(zk_node) -> None:  # type: ignore[no-untyped-def]
    """A dishonest node signs a receipt for input A carrying the proof of input B."""
    node, _ = zk_node
    a = node.infer("tiny:1", _x(5), mode="zk").bundle
    b = node.infer("tiny:1", _x(6), mode="zk").bundle
    stmt = json.loads(base64.b64decode(a.envelope["payload"]))
    b_entry = next(p for p in b.receipt.proofs if p["type"] == "zk")
    stmt["predicate"]["proofs"] = [
        p if p["type"] != "zk" else b_entry for p in stmt["predicate"]["proofs"]
    ]
    doc = json.loads(a.dumps())
    doc["dsseEnvelope"] = sign_envelope(canonical_json(stmt), node.issuer._key)
    doc["proofs"]["zk"] = json.loads(b.dumps())["proofs"]["zk"]
    doc.pop("tlogEntry")
    report = node.verifier(Policy(allow_dev_srs=True)).check(Bundle.from_json(doc))
    assert checks(report)["signature"] == "passed" and checks(report)["zk.proof"] == "passed"
    assert checks(report)["zk.input"] == "failed"


def test_lying_node_edited_circuit_output(zk_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = zk_node
    a = node.infer("tiny:1", _x(7), mode="zk").bundle
    stmt = json.loads(base64.b64decode(a.envelope["payload"]))
    entry = next(p for p in stmt["predicate"]["proofs"] if p["type"] == "zk")
    entry["output_names"] = ["z"]  # the proof is claimed to cover another output
    doc = json.loads(a.dumps())
    doc["dsseEnvelope"] = sign_envelope(canonical_json(stmt), node.issuer._key)
    doc.pop("tlogEntry")
    report = node.verifier(Policy(allow_dev_srs=True)).check(Bundle.from_json(doc))
    assert checks(report)["zk.output"] == "failed"


def test_unknown_setup_is_not_checked_elsewhere(zk_node, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node, _ = zk_node
    bundle = node.infer("tiny:1", _x(8), mode="zk").bundle
    other = LocalNode(tmp_path / "elsewhere")
    report = other.verifier(trust=node.trust_root()).check(bundle)
    assert checks(report)["zk.proof"] == "not_checked"
    assert "SRS" in next(c.detail for c in report.checks if c.name == "zk.proof")
    other.close()


def test_not_set_up_is_a_clear_error(zk_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = zk_node
    from inferproof.errors import InputError

    with pytest.raises(InputError, match="not set up for zk proofs"):
        node.infer("tiny:1", {"x": np.zeros((2, 8), np.float32)}, mode="zk")
    with pytest.raises(InputError, match="unknown mode"):
        node.infer("tiny:1", _x(1), mode="fast")


def test_cli_infer_zk_and_verify(zk_node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    node, _ = zk_node
    monkeypatch.setenv("INFERPROOF_HOME", str(node.home.root))
    node.close()
    inp = tmp_path / "x.json"
    inp.write_text(json.dumps({"x": _x(9)["x"].tolist()}))
    out = tmp_path / "b.json"
    result = runner.invoke(
        app, ["infer", "tiny:1", "--input", str(inp), "--mode", "zk", "-o", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    strict = runner.invoke(app, ["verify", str(out), "--json"])
    assert strict.exit_code == 1
    relaxed = runner.invoke(app, ["verify", str(out), "--json", "--allow-dev-srs"])
    assert relaxed.exit_code == 0, relaxed.stdout
    assert {c["name"]: c["status"] for c in json.loads(relaxed.stdout)["checks"]}[
        "zk.proof"
    ] == "passed"


def test_model_push_with_zk_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERPROOF_HOME", str(tmp_path / "home"))
    model = make_model(seed=11)
    f = tmp_path / "m.onnx"
    f.write_bytes(model.data)
    sample = tmp_path / "s.json"
    sample.write_text(json.dumps({"x": model.samples[0]["x"].tolist()}))
    result = runner.invoke(
        app,
        ["model", "push", str(f), "--name", "m", "--zk-sample-input", str(sample), "--zk-dev-srs"],
    )
    assert result.exit_code == 0, result.stderr
    assert "zk setup sha256:" in result.stdout and "dev SRS" in result.stdout
