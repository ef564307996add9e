"""Issue 11, low: ``Verifier.check`` must never raise for a malformed bundle.

A shape that wrapped ``np.prod`` to 0 gave a traceback from ``inferproof verify``.
Each group of checks now runs on its own and fails closed under its own name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inferproof import LocalNode
from inferproof.receipts import Bundle
from inferproof.testing import mlp_model
from inferproof.verify import Material, Verifier


def _bundle(node: LocalNode) -> Bundle:
    node.push(mlp_model((8, 2)), name="m")
    return node.infer("m", {"x": np.ones((1, 8), np.float32)}).bundle


def test_a_step_that_stumbles_fails_under_its_name(tmp_path: Path) -> None:
    with LocalNode(tmp_path / "n") as node:
        bundle = _bundle(node)

        def stumbles(_: Bundle, __: Material) -> object:
            raise KeyError("predicate")

        verifier = Verifier(node.trust_root(), extra_checks=(stumbles,))  # type: ignore[arg-type]
        report = verifier.check(bundle)
    by_name = {c.name: c for c in report.checks}
    assert not report.verified
    assert by_name["extra.0"].status.value == "failed"
    assert "malformed bundle (KeyError)" in by_name["extra.0"].detail
    assert by_name["signature"].passed  # the other checks still ran


def test_hostile_proof_entries_fail_closed(tmp_path: Path) -> None:
    with LocalNode(tmp_path / "n") as node:
        bundle = _bundle(node)
        doc = bundle.to_json()
        doc["proofs"] = {"zk": {"proof": [], "setup": 5}}
        report = node.verifier().check(Bundle.from_json(doc))
    assert report.verified  # an unclaimed proof part is ignored: nothing in it is trusted
    assert all(c.name != "zk.proof" for c in report.checks)
