"""Issue 11, item 3: the hardware-identity cache let an unattested key pass require_hardware.

Results were cached by identity-document digest with the "binds the signer's key"
comparison inside the cached call: after one genuine receipt from key K1, a
receipt signed by a second trusted key K2 that names K1's identity passed. Also,
with no ``attestation.max_age_seconds`` in the policy, an identity produced 17
months before a receipt was accepted.

No TEE exists here, so the hardware is played by a producer that hands its report
data back as evidence, and by the evidence verifier accepting exactly that: the
stand-in sits behind the same ``EvidenceProducer`` interface and the same
``verify_evidence`` function a real Intel TDX quote goes through. Everything
above it (identity documents, the cache, the binding, the age) is the real code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import inferproof.attest._identity as identity_module
from inferproof import LocalNode
from inferproof.attest import AttestationReport, Evidence, NodeIdentity
from inferproof.cli import app
from inferproof.testing import mlp_model
from inferproof.verify import Policy, TrustRoot, parse_policy

X = {"x": np.full((1, 8), 0.5, np.float32)}


class StandInTdx:
    """A TDX "quote" that is its report data (a test stand-in for the hardware)."""

    name = "stand-in-tdx"

    def produce(self, report_data: bytes) -> Evidence:
        return Evidence(platform="tdx", data=b"TDX" + report_data, provider=self.name)


def _stand_in_verify(evidence: bytes, platform: str, *_: Any, at: datetime, **__: Any) -> Any:
    assert evidence.startswith(b"TDX") and platform == "tdx"
    return AttestationReport(
        platform="tdx",
        measurements={"MRTD": "ab" * 48},
        report_data=evidence[3:],
        debug=False,
        verified_at=at,
        checks=(),
    )


@pytest.fixture(autouse=True)
def stand_in_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity_module, "verify_evidence", _stand_in_verify)


def _node(root: Path, produced: datetime | None) -> LocalNode:
    node = LocalNode(root)
    if produced is not None:
        node.attest(StandInTdx(), now=produced)
    node.push(mlp_model((8, 16, 2)), name="mlp")
    return node


def _environment(report: Any) -> Any:
    return next(c for c in report.checks if c.name == "environment")


def _trusting(*nodes: LocalNode) -> TrustRoot:
    return TrustRoot.from_keys([n.public_key for n in nodes])


def _forge(software: LocalNode, identity: NodeIdentity) -> Any:
    """The software node issues a receipt naming another node's hardware identity."""
    software.issuer._identity = identity  # what a node that rewrote its own code could do
    return software.infer("mlp", X).bundle


def test_a_genuine_identity_does_not_vouch_for_another_key(tmp_path: Path) -> None:
    hardware = _node(tmp_path / "k1", datetime.now(UTC))
    software = _node(tmp_path / "k2", None)
    assert hardware.identity is not None
    verifier = hardware.verifier(Policy(require_hardware=True), _trusting(hardware, software))
    genuine = verifier.check(hardware.infer("mlp", X).bundle)
    assert _environment(genuine).passed, _environment(genuine).detail
    assert "hardware-attested by tdx" in _environment(genuine).detail
    forged = _forge(software, hardware.identity)
    for v in (
        verifier,
        hardware.verifier(Policy(require_hardware=True), _trusting(hardware, software)),
    ):
        check = _environment(v.check(forged))  # with the cache warm, and cold
        assert not check.passed
        assert "binds another key than the one that signed this receipt" in check.detail


def test_an_old_identity_is_refused_by_default(tmp_path: Path) -> None:
    seventeen_months = timedelta(days=17 * 30)
    node = _node(tmp_path / "n", datetime.now(UTC) - seventeen_months)
    bundle = node.infer("mlp", X).bundle
    check = _environment(node.verifier(Policy(require_hardware=True)).check(bundle))
    assert not check.passed and "must re-attest" in check.detail
    assert f"allows {30 * 24 * 3600} s" in check.detail  # the TDX default, 30 days
    # The same receipt passes when the policy explicitly allows older identities.
    _, lenient = parse_policy(
        {"attestation": {"max_age_seconds": 10 * 365 * 86400}}, node.trust_root()
    )
    assert _environment(node.verifier(lenient).check(bundle)).passed


def test_a_fresh_identity_passes_by_default(tmp_path: Path) -> None:
    node = _node(tmp_path / "n", datetime.now(UTC) - timedelta(days=29))
    bundle = node.infer("mlp", X).bundle
    assert _environment(node.verifier(Policy(require_hardware=True)).check(bundle)).passed


@pytest.mark.parametrize("platform", ["nitro", "tdx", "sgx", "snp"])
def test_policy_init_writes_a_maximum_age_for_every_platform(
    platform: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERPROOF_HOME", str(tmp_path / "home"))
    out = tmp_path / "policy.json"
    result = CliRunner().invoke(app, ["policy", "init", "--platform", platform, "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    age = json.loads(out.read_text())["attestation"]["max_age_seconds"]
    assert isinstance(age, int) and 0 < age <= 30 * 24 * 3600
