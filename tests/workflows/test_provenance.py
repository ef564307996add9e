"""A workflow run's receipt: the workflow in its parameters, the data's provenance in its
signed input block, the record in the bundle, checked as ``input.provenance``."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from inferproof import Bundle, LocalNode
from inferproof._checks import CheckStatus

X = {"X": np.array([[52.0, 0.41, 34.0, 2.0]], np.float32)}
PROVENANCE = {
    "feed": {"kind": "http", "source": "http://127.0.0.1:9/prices", "format": "json"},
    "digest": "sha256:" + "ab" * 32,
    "fetched_at": "2026-12-01T18:00:00.000Z",
    "window": {"rows": 40, "first": 10, "last": 39},
    "signature": {"scheme": "ed25519", "verified": True},
}
WORKFLOW = {"name": "risk", "definition": "sha256:" + "cd" * 32, "run": 3, "previous": None}


@pytest.fixture()
def run_bundle(home, credit_model):  # type: ignore[no-untyped-def]
    with LocalNode(home) as node:
        node.push(credit_model[0], name="credit")
        result = node.infer("credit", X, workflow=WORKFLOW, provenance=PROVENANCE)
        yield node, result.bundle


def _check(node: LocalNode, bundle: Bundle) -> tuple[CheckStatus, str]:
    report = node.verifier().check(bundle)
    return next((c.status, c.detail) for c in report.checks if c.name == "input.provenance")


def test_the_receipt_names_the_run_and_commits_to_the_provenance(run_bundle) -> None:
    node, bundle = run_bundle
    assert bundle.receipt.parameters["workflow"] == WORKFLOW
    assert bundle.receipt.input["provenance"].startswith("sha256:")
    assert bundle.proofs["provenance"] == PROVENANCE
    status, detail = _check(node, Bundle.from_json(bundle.to_json()))
    assert status is CheckStatus.PASSED
    assert detail.startswith("input data from http://127.0.0.1:9/prices (signed: the node ")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.__setitem__("digest", "sha256:" + "00" * 32), "hashes to"),
        (lambda p: p["window"].__setitem__("first", 11), "hashes to"),
        (lambda p: p["signature"].__setitem__("verified", False), "hashes to"),
    ],
)
def test_a_changed_provenance_fails(run_bundle, edit, message: str) -> None:
    node, bundle = run_bundle
    obj = copy.deepcopy(bundle.to_json())
    edit(obj["proofs"]["provenance"])
    status, detail = _check(node, Bundle.from_json(obj))
    assert status is CheckStatus.FAILED and message in detail


def test_a_dropped_provenance_fails(run_bundle) -> None:
    node, bundle = run_bundle
    obj = copy.deepcopy(bundle.to_json())
    del obj["proofs"]["provenance"]
    status, detail = _check(node, Bundle.from_json(obj))
    assert status is CheckStatus.FAILED and "does not carry" in detail


def test_a_receipt_without_provenance_has_no_such_check(home, credit_model) -> None:
    with LocalNode(home) as node:
        node.push(credit_model[0], name="credit")
        report = node.verifier().check(node.infer("credit", X).bundle)
    assert "input.provenance" not in {c.name for c in report.checks}
