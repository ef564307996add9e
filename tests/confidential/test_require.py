"""Policy ``require.confidential``: a confidential client seals nothing but its identity
request to a node whose gateway key no hardware attestation binds, unless the policy
opts in to software nodes, and the report says which it was.

No TEE exists here, so the hardware is played as in tests/security: a producer that
hands its report data back as evidence and ``verify_evidence`` accepting exactly that,
behind the same interfaces a real TDX quote goes through. The identity document, the
key binding, the relay and the client above them are the real code.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import inferproof.attest._identity as identity_module
from inferproof import LocalNode
from inferproof.client import AsyncClient, Client
from inferproof.errors import InputError, VerificationError
from inferproof.testing import credit_risk_model
from inferproof.verify import Policy, TrustRoot, parse_policy
from tests.confidential._relay import Relay, relay_for
from tests.node.conftest import Running, pushed, start
from tests.security.test_review_hardware_identity import StandInTdx, _stand_in_verify

ROW = {"X": [[52.0, 0.41, 34.0, 2.0]]}
REQUIRED = Policy(require_confidential=True)


@pytest.fixture(autouse=True)
def stand_in_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity_module, "verify_evidence", _stand_in_verify)


def _serving(home: Path, attested: bool) -> Running:
    if attested:
        with LocalNode(home) as node:
            node.attest(StandInTdx(), now=datetime.now(UTC))
    running = start(home)
    pushed(running, credit_risk_model()[0], name="credit", version="1")
    return running


@pytest.fixture(scope="module")
def software(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Relay]]:
    running = _serving(tmp_path_factory.mktemp("software") / "node", attested=False)
    try:
        with relay_for(running) as relay:
            yield running, relay
    finally:
        running.stop()


def _client(running: Running, relay: Relay, home: Path, policy: Policy) -> Client:
    return Client(running.url, running.token, policy=policy, home=home, confidential=True,
                  relay=relay.url)  # fmt: skip


def test_a_software_node_is_refused_before_anything_but_the_identity_is_sealed(
    software: tuple[Running, Relay], tmp_path: Path
) -> None:
    running, relay = software
    before = len(relay.posted())
    with pytest.raises(VerificationError, match="not bound by hardware attestation") as caught:
        _client(running, relay, tmp_path, REQUIRED)
    assert caught.value.check == "confidential"
    assert len(relay.posted()) == before + 1  # the sealed GET /v1/identity, nothing else


def test_a_software_node_passes_only_when_opted_in_and_says_so(
    software: tuple[Running, Relay], tmp_path: Path
) -> None:
    running, relay = software
    policy = Policy(require_confidential=True, confidential_allow_software=True)
    with _client(running, relay, tmp_path, policy) as client:
        answer = client.infer("credit:1", ROW)
    assert answer.report is not None and answer.report.verified
    check = next(c for c in answer.report.checks if c.name == "confidential")
    assert check.passed and check.detail.startswith("software node (opted in)")


def test_an_attested_node_passes_with_its_platform_named(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    running = _serving(tmp_path_factory.mktemp("tee") / "node", attested=True)
    try:
        with relay_for(running) as relay, _client(running, relay, tmp_path, REQUIRED) as client:
            answer = client.infer("credit:1", ROW)
    finally:
        running.stop()
    assert answer.report is not None and answer.report.verified
    check = next(c for c in answer.report.checks if c.name == "confidential")
    assert check.passed and "verified tdx evidence" in check.detail


def test_evidence_that_binds_another_key_is_refused(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """A node serving the attestation of another node's key beside its own binding."""
    other = tmp_path_factory.mktemp("other") / "node"
    with LocalNode(other) as node:
        foreign = node.attest(StandInTdx(), now=datetime.now(UTC))
    running = _serving(tmp_path_factory.mktemp("liar") / "node", attested=False)
    # The lie, as a modified node would tell it (our node refuses such a file at start).
    running.node.issuer._identity = foreign
    try:
        with relay_for(running) as relay, pytest.raises(VerificationError) as caught:
            _client(running, relay, tmp_path, REQUIRED)
    finally:
        running.stop()
    assert caught.value.check == "confidential"
    assert "binds another key" in str(caught.value)


def test_the_policy_file_names_the_requirement_and_the_opt_in() -> None:
    _, policy = parse_policy(
        {"require": {"confidential": True}, "confidential": {"allow_software": True}},
        TrustRoot.from_keys([]),
    )
    assert policy.require_confidential and policy.confidential_allow_software
    _, default = parse_policy({}, TrustRoot.from_keys([]))
    assert not default.require_confidential and not default.confidential_allow_software
    bad = [
        ({"require": {"confidential": "yes"}}, "require.confidential must be true or false"),
        ({"confidential": {"allow_software": 1}}, "confidential.allow_software must be true"),
        ({"confidential": {"allow": True}}, "unknown key"),
        ({"confidential": []}, "'confidential' must be an object"),
    ]
    for doc, message in bad:
        with pytest.raises(InputError, match=message):
            parse_policy(doc, TrustRoot.from_keys([]))


def test_a_client_that_would_send_in_the_clear_is_refused(
    software: tuple[Running, Relay], tmp_path: Path
) -> None:
    running, _ = software
    with pytest.raises(InputError, match="requires confidential inference"):
        Client(running.url, running.token, policy=REQUIRED, home=tmp_path)
    with pytest.raises(InputError, match="does not send confidentially"):
        AsyncClient(running.url, running.token, policy=REQUIRED, home=tmp_path)
