"""Node identity: TEE evidence in receipts, checked by the verifier, and `policy init`.

There is no TEE here: the configfs-tsm interface is the fake tree from the attest
tests (it stands for hardware) handing back a real TDX quote from ../shared/vectors.
That quote's report_data does not bind our key, which is exactly what the verifier
must notice; no test can make real hardware sign our key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferproof import LocalNode
from inferproof.attest import ConfigfsTsmProducer
from inferproof.cli import app
from inferproof.verify import CheckStatus, Material, Policy, parse_policy

from ..attest.conftest import needs_vectors, vector
from ..attest.test_producers import FakeTsmEntry
from ..conftest import mlp_input

runner = CliRunner()


def env_check(report):  # type: ignore[no-untyped-def]
    return next(c for c in report.checks if c.name == "environment")


@pytest.fixture()
def attested(node: LocalNode, mlp_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    entry = FakeTsmEntry(tmp_path / "tsm" / "e", vector("tdx/tdx_quote"), "tdx_guest")
    collateral = vector("tdx/tdx_quote_collateral.json")
    identity = node.attest(ConfigfsTsmProducer(tmp_path / "tsm", entry="e"), None, (collateral,))
    entry.join()
    node.push(mlp_bytes, name="mlp")
    return node, identity


@needs_vectors
def test_receipt_names_the_identity(attested) -> None:  # type: ignore[no-untyped-def]
    node, identity = attested
    bundle = node.infer("mlp", mlp_input()).bundle
    env = bundle.receipt.environment
    assert env["type"] == "hardware" and env["platform"] == "tdx"
    assert env["identity"] == identity.digest
    assert bundle.attestation == identity.doc


@needs_vectors
def test_unbound_quote_fails_binding(attested, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    node, _ = attested
    # Receipt time inside the quote's collateral window, so only the binding can fail.
    import inferproof._local as local

    monkeypatch.setattr(local, "_now", lambda: "2025-07-01T00:00:00Z")
    bundle = node.infer("mlp", mlp_input()).bundle
    check = env_check(node.verifier().check(bundle))
    assert check.status is CheckStatus.FAILED
    assert check.detail == "tdx evidence is valid but the evidence does not bind the node key"


@needs_vectors
def test_expired_collateral_fails(attested) -> None:  # type: ignore[no-untyped-def]
    node, _ = attested
    bundle = node.infer("mlp", mlp_input()).bundle  # receipt dated now: collateral expired
    check = env_check(node.verifier().check(bundle))
    assert check.status is CheckStatus.FAILED and "tdx attestation failed" in check.detail


@needs_vectors
def test_identity_swap_and_removal_fail(attested) -> None:  # type: ignore[no-untyped-def]
    node, _ = attested
    bundle = node.infer("mlp", mlp_input()).bundle
    doc = json.loads(bundle.dumps())
    doc["attestation"]["provider"] = "configfs-tsm:other"
    from inferproof.receipts import Bundle

    swapped = node.verifier().check(Bundle.from_json(doc))
    assert "not the one the receipt names" in env_check(swapped).detail
    doc.pop("attestation")
    missing = node.verifier().check(Bundle.from_json(doc))
    assert "has no evidence" in env_check(missing).detail


def test_software_node_fails_a_hardware_policy(node: LocalNode, mlp_bytes: bytes) -> None:
    node.push(mlp_bytes, name="mlp")
    bundle = node.infer("mlp", mlp_input()).bundle
    check = env_check(node.verifier(Policy(require_hardware=True)).check(bundle, Material()))
    assert check.status is CheckStatus.FAILED and "not hardware-backed" in check.detail


def test_node_attest_without_tee_is_a_clear_error(home: Path) -> None:
    result = runner.invoke(app, ["node", "attest", "--configfs", str(home / "none")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")


def test_node_identity_prints_keys(home: Path) -> None:
    result = runner.invoke(app, ["node", "identity"])
    doc = json.loads(result.stdout)
    assert doc["node_id"].startswith("sha256:") and doc["attestation"] is None
    assert doc["environment"]["hardware_backed"] is False


@pytest.mark.parametrize("platform", [None, "nitro", "tdx", "sgx", "snp"])
def test_policy_init_writes_a_valid_commented_policy(
    home: Path, tmp_path: Path, platform: str | None
) -> None:
    out = tmp_path / "policy.json"
    args = ["policy", "init", "-o", str(out)] + (["--platform", platform] if platform else [])
    assert runner.invoke(app, args).exit_code == 0
    doc = json.loads(out.read_text())
    assert "$comment" in doc and "$comment" in doc["trust"]
    if platform is None:
        trust, policy = parse_policy(doc, LocalNode(home).trust_root())
        assert policy.require_log and policy.require_model_signature and not policy.require_hardware
        assert len(trust.node_keys) == 1
    else:
        # The placeholders must be replaced before use: the parser says so.
        with pytest.raises(Exception, match="hex"):
            parse_policy(doc, LocalNode(home).trust_root())
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "exists" in again.stderr


def test_policy_attestation_section_parses(home: Path) -> None:
    doc = {
        "require": {"hardware": True},
        "attestation": {"$comment": "x", "platforms": ["tdx"], "tcb_statuses": ["UpToDate"]},
    }
    _, policy = parse_policy(doc, LocalNode(home).trust_root())
    assert policy.attestation is not None and policy.require_hardware
    with pytest.raises(Exception, match="unknown"):
        parse_policy({"attestation": {"pcrs": {}}}, LocalNode(home).trust_root())
