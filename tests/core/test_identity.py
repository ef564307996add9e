"""Node identity: TEE evidence in receipts, checked by the verifier, and `policy init`.

There is no TEE here: the configfs-tsm interface is the fake tree from the attest
tests (it stands for hardware) handing back a real TDX quote from ../shared/vectors.
That quote's report_data does not bind our key, which is exactly what the verifier
must notice; no test can make real hardware sign our key.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
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


def old_identities_allowed(node: LocalNode):  # type: ignore[no-untyped-def]
    """The vectors' identities date from 2025, older than any default maximum age."""
    return parse_policy({"attestation": {"max_age_seconds": 20 * 365 * 86400}}, node.trust_root())[
        1
    ]


@pytest.fixture()
def attested(node: LocalNode, mlp_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    entry = FakeTsmEntry(tmp_path / "tsm" / "e", vector("tdx/tdx_quote"), "tdx_guest")
    collateral = vector("tdx/tdx_quote_collateral.json")
    # Produced inside the quote's collateral window (SOURCES.md), as a real node would be.
    when = datetime(2025, 7, 1, tzinfo=UTC)
    identity = node.attest(
        ConfigfsTsmProducer(tmp_path / "tsm", entry="e"), None, (collateral,), now=when
    )
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
def test_unbound_quote_fails_binding(attested) -> None:  # type: ignore[no-untyped-def]
    node, _ = attested
    # The quote verifies at its production time; only the key binding can fail.
    bundle = node.infer("mlp", mlp_input()).bundle
    check = env_check(node.verifier(old_identities_allowed(node)).check(bundle))
    assert check.status is CheckStatus.FAILED
    assert check.detail == "tdx evidence is valid but the evidence does not bind the node key"


@needs_vectors
def test_identity_outside_collateral_window_fails(
    node: LocalNode, mlp_bytes: bytes, tmp_path: Path
) -> None:
    entry = FakeTsmEntry(tmp_path / "tsm" / "e", vector("tdx/tdx_quote"), "tdx_guest")
    collateral = vector("tdx/tdx_quote_collateral.json")
    node.attest(ConfigfsTsmProducer(tmp_path / "tsm", entry="e"), None, (collateral,))  # now
    entry.join()
    node.push(mlp_bytes, name="mlp")
    check = env_check(node.verifier().check(node.infer("mlp", mlp_input()).bundle))
    assert check.status is CheckStatus.FAILED and "tdx attestation failed" in check.detail


@needs_vectors
def test_old_attestation_fails_max_age(attested) -> None:  # type: ignore[no-untyped-def]
    node, _ = attested
    bundle = node.infer("mlp", mlp_input()).bundle  # receipt dated now, identity 2025-07-01
    _, policy = parse_policy({"attestation": {"max_age_seconds": 86400}}, node.trust_root())
    check = env_check(node.verifier(policy).check(bundle))
    assert check.status is CheckStatus.FAILED and "must re-attest" in check.detail


@needs_vectors
def test_identity_verified_once_per_verifier(attested, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    node, _ = attested
    import inferproof.attest._identity as identity_mod

    calls = []
    real = identity_mod.verify_evidence
    monkeypatch.setattr(
        identity_mod, "verify_evidence", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    verifier = node.verifier(old_identities_allowed(node))
    bundles = [node.infer("mlp", mlp_input(seed=i)).bundle for i in range(5)]
    details = {env_check(verifier.check(b)).detail for b in bundles}
    assert len(calls) == 1 and len(details) == 1


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
        # A fresh home trusts no publisher: requiring a signature would refuse every
        # receipt of the tour (issue 12), so the policy says what to add instead.
        assert policy.require_log and not policy.require_model_signature
        assert not policy.require_hardware
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
