"""Issue 11, items 2, 4 and 9: what a ZK receipt vouches for, and who can check it.

- 11.2: ``zk.output`` compared the proof with the receipt's own circuit outputs,
  never with the outputs a client reads: a node could prove the real inference and
  sign any answer beside it. The answer of a ZK receipt is now the proven one.
- 11.4: a verifier without the setup saw ``zk.proof: not checked`` and no ``zk.srs``
  check at all, so a receipt over a dev SRS passed ``allow_dev_srs: false``. The SRS
  kind is checked from the signed receipt always, and a bundle carries its setup
  record, settings and verifying key, accepted by digest.
- 11.9: ``--private-input --mode zk`` published the input as a public instance.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from inferproof import LocalNode
from inferproof._canonical import canonical_json, sha256_digest
from inferproof.cli import app
from inferproof.errors import InputError
from inferproof.proofs.zk import ZkSetup
from inferproof.receipts import Bundle, sign_envelope
from inferproof.runtime import encode_tensors, tensors_digest
from inferproof.verify import Material, Policy

from ..core.test_zk_mode import _x, checks, zk_node

__all__ = ["zk_node"]  # the module-scoped fixture: a node with a tiny model set up
DEV = Policy(allow_dev_srs=True)


def _resign(node: LocalNode, bundle: Bundle, edit: Any) -> Bundle:
    """The node (its own key) re-signs an edited statement and bundle, unlogged."""
    stmt = json.loads(base64.b64decode(bundle.envelope["payload"]))
    doc = json.loads(bundle.dumps())
    edit(stmt, doc)
    doc["dsseEnvelope"] = sign_envelope(canonical_json(stmt), node.issuer._key)
    doc.pop("tlogEntry")
    return Bundle.from_json(doc)


def _setup(node: LocalNode, bundle: Bundle) -> ZkSetup:
    entry = next(p for p in bundle.receipt.proofs if p["type"] == "zk")
    return ZkSetup.from_bytes(node.hub.blobs.get(entry["setup"]))


def test_review_zk_answer_is_the_proven_one(zk_node: Any) -> None:
    """11.2: a real proof beside a signed answer the circuit did not compute fails."""
    node, _ = zk_node
    honest = node.infer("tiny:1", _x(11), mode="zk")
    lie = {"y": honest.outputs["y"] + np.float32(0.25)}

    def answer_other(stmt: dict[str, Any], doc: dict[str, Any]) -> None:
        stmt["subject"][0]["digest"]["sha256"] = tensors_digest(lie).split(":")[1]
        doc["outputs"] = encode_tensors(lie)

    forged = _resign(node, honest.bundle, answer_other)
    report = node.verifier(DEV).check(forged)
    assert checks(report)["signature"] == "passed" and checks(report)["output.digest"] == "passed"
    assert checks(report)["zk.proof"] == "passed"
    assert checks(report)["zk.output"] == "failed" and not report.verified
    assert checks(node.verifier(DEV).check(honest.bundle))["zk.output"] == "passed"


def test_review_zk_checkable_by_anyone(zk_node: Any, tmp_path: Path) -> None:
    """11.4: a verifier with neither the setup nor the node's hub checks the proof."""
    node, model = zk_node
    bundle = node.infer("tiny:1", _x(12), mode="zk").bundle
    srs = node.hub.blobs.get(_setup(node, bundle).srs_digest)
    with LocalNode(tmp_path / "third-party") as other:
        trust = node.trust_root()
        report = other.verifier(DEV, trust, srs=srs).check(bundle, Material(model_bytes=model.data))
    for name in ("zk.setup", "zk.proof", "zk.srs", "zk.model", "zk.output", "zk.model.rederived"):
        assert checks(report)[name] == "passed", (name, report.to_json())


def test_review_zk_dev_srs_refused_without_a_setup(zk_node: Any, tmp_path: Path) -> None:
    """11.4: the SRS kind the receipt signs is checked even when nothing else can be."""
    node, _ = zk_node
    bundle = node.infer("tiny:1", _x(13), mode="zk").bundle
    with LocalNode(tmp_path / "third-party") as other:
        report = other.verifier(trust=node.trust_root()).check(bundle)
    assert checks(report)["zk.srs"] == "failed" and not report.verified
    assert checks(report)["zk.proof"] == "not_checked"


@pytest.mark.parametrize("target", ["record", "vk", "settings"])
def test_review_zk_carried_setup_is_checked(zk_node: Any, tmp_path: Path, target: str) -> None:
    """11.4: carried artifacts are accepted only when they hash to the signed digests."""
    node, _ = zk_node
    bundle = node.infer("tiny:1", _x(14), mode="zk").bundle
    setup = _setup(node, bundle)
    doc = json.loads(bundle.dumps())
    part = doc["proofs"]["zk"]
    if target == "record":
        part["setup_record"]["logrows"] += 1
    else:
        digest = setup.vk_digest if target == "vk" else setup.settings_digest
        raw = bytearray(base64.b64decode(part["artifacts"][digest]))
        raw[len(raw) // 2] ^= 1
        part["artifacts"][digest] = base64.b64encode(bytes(raw)).decode()
    srs = node.hub.blobs.get(setup.srs_digest)
    with LocalNode(tmp_path / "third-party") as other:
        report = other.verifier(DEV, node.trust_root(), srs=srs).check(Bundle.from_json(doc))
    assert checks(report)["zk.setup"] == "failed" and not report.verified


def test_review_zk_private_input_is_refused(zk_node: Any) -> None:
    """11.9: a public-input setup would publish a private input in the proof."""
    node, _ = zk_node
    with pytest.raises(InputError, match="inputs are public instances of the proof"):
        node.infer("tiny:1", _x(15), mode="zk", private_input=True, private_output=False)
    # And an output is always an instance: a private output is refused with any setup.
    with pytest.raises(InputError, match="publishes its outputs"):
        node.infer("tiny:1", _x(15), mode="zk", private_input=True)


def test_review_zk_private_input_cli(zk_node: Any, tmp_path: Path, monkeypatch: Any) -> None:
    node, _ = zk_node
    monkeypatch.setenv("INFERPROOF_HOME", str(node.home.root))
    inp = tmp_path / "x.json"
    inp.write_text(json.dumps({"x": _x(16)["x"].tolist()}))
    args = ["infer", "tiny:1", "--input", str(inp), "-o", str(tmp_path / "b.json"),
            "--mode", "zk", "--private-input"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--public-output" in result.stderr
    result = CliRunner().invoke(app, [*args, "--public-output"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "hashed inputs" in result.stderr
    assert not (tmp_path / "b.json").exists()


def test_review_zk_a_dev_srs_called_public_is_refused(zk_node: Any, tmp_path: Path) -> None:
    """11.4: the node labels its own (dev) SRS "public" in a setup record it signs."""
    node, _ = zk_node
    bundle = node.infer("tiny:1", _x(17), mode="zk").bundle
    srs = node.hub.blobs.get(_setup(node, bundle).srs_digest)

    def relabel(stmt: dict[str, Any], doc: dict[str, Any]) -> None:
        part = doc["proofs"]["zk"]
        part["setup_record"]["srs"]["kind"] = "public"
        record = ZkSetup.from_json(part["setup_record"])
        part["setup"] = part["proof"]["setup"] = record.digest()
        entry = next(p for p in stmt["predicate"]["proofs"] if p["type"] == "zk")
        entry.update(setup=record.digest(), srs="public",
                     proof=sha256_digest(canonical_json(part["proof"])))  # fmt: skip

    forged = _resign(node, bundle, relabel)
    with LocalNode(tmp_path / "third-party") as other:
        report = other.verifier(Policy(), node.trust_root(), srs=srs).check(forged)
    assert checks(report)["zk.proof"] == "passed"  # EZKL accepts it: the SRS is what it is
    detail = next(c.detail for c in report.checks if c.name == "zk.srs")
    assert checks(report)["zk.srs"] == "failed" and "not one of the public ceremony" in detail
    assert not report.verified


def test_review_zk_a_client_checks_the_proof(make_node: Any, tmp_path: Path) -> None:
    """11.4: a client of the node, with none of the node's hub, checks the proof."""
    from inferproof.client import DEFAULT_POLICY, Client
    from inferproof.runtime import NamedInputs

    from ..zk.conftest import DECOMP, make_model

    running = make_node()
    model = make_model(seed=3)
    running.node.push(model.data, name="tiny", version="1")
    samples = [NamedInputs(s) for s in model.samples]
    running.node.zk_setup("tiny:1", samples, dev_srs=True, decomp=DECOMP)
    policy = replace(DEFAULT_POLICY, require_zk=True, allow_dev_srs=True)
    with Client(running.url, token=running.token, policy=policy, home=tmp_path / "c") as client:
        answer = client.infer("tiny:1", _x(18), mode="zk")
    assert answer.report is not None and answer.report.verified
    for name in ("zk.proof", "zk.srs", "zk.output", "zk.input", "zk.setup"):
        assert checks(answer.report)[name] == "passed", name
