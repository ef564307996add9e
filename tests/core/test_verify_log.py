"""Receipts in the transparency log: inclusion, trust, witnesses, split views."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from inferproof import LocalNode
from inferproof._canonical import canonical_json
from inferproof.log import SignerKey, TlogProof, hash_leaf, verify_inclusion
from inferproof.log._checkpoint import Checkpoint
from inferproof.log._note import Note
from inferproof.receipts import Bundle
from inferproof.verify import CheckStatus, Policy, parse_policy

from ..conftest import mlp_input


def checks(report: Any) -> dict[str, str]:
    return {c.name: c.status.value for c in report.checks}


@pytest.fixture()
def logged(node: LocalNode, mlp_bytes: bytes) -> tuple[LocalNode, Bundle]:
    node.push(mlp_bytes, name="mlp")
    return node, node.infer("mlp", mlp_input()).bundle


def test_leaf_is_the_canonical_envelope(logged) -> None:  # type: ignore[no-untyped-def]
    node, bundle = logged
    proof = TlogProof.parse(bundle.tlog_entry)
    cp = Checkpoint.parse(Note.parse(proof.checkpoint).text)
    # Recompute the inclusion independently of the verifier, from the bundle alone.
    verify_inclusion(
        hash_leaf(canonical_json(bundle.envelope)),
        proof.index,
        cp.size,
        list(proof.path),
        cp.root_hash,
    )
    assert cp.origin == node.log.origin
    assert node.log.entry(proof.index) == canonical_json(bundle.envelope)


def test_every_receipt_is_logged(logged) -> None:  # type: ignore[no-untyped-def]
    node, _ = logged
    before = node.log.size
    bundles = [node.infer("mlp", mlp_input(seed=i)).bundle for i in range(5)]
    assert node.log.size == before + 5
    indexes = {TlogProof.parse(b.tlog_entry).index for b in bundles}  # type: ignore[arg-type]
    assert len(indexes) == 5
    assert node.log.verify().size == node.log.size


def test_tlog_entry_bit_flips_fail(logged) -> None:  # type: ignore[no-untyped-def]
    node, bundle = logged
    text = bundle.tlog_entry
    assert text is not None
    verifier = node.verifier()
    for i in range(0, len(text), 3):
        ch = text[i]
        flipped = chr(ord(ch) ^ 0x01)
        b = bundle.with_tlog_entry(text[:i] + flipped + text[i + 1 :])
        report = verifier.check(b)
        log_failed = [
            c for c in report.checks if c.name.startswith("log.") and c.status is CheckStatus.FAILED
        ]
        assert log_failed, f"flip at {i} ({ch!r}) not detected"


def test_proof_for_another_receipt_fails(logged) -> None:  # type: ignore[no-untyped-def]
    node, bundle = logged
    other = node.infer("mlp", mlp_input(seed=4)).bundle
    mixed = bundle.with_tlog_entry(other.tlog_entry)  # type: ignore[arg-type]
    assert checks(node.verifier().check(mixed))["log.inclusion"] == "failed"


def test_untrusted_log_fails_and_missing_entry(logged, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node, bundle = logged
    trust = node.trust_root()
    from dataclasses import replace

    stranger = SignerKey.generate("other.example/log").verifier()
    report = node.verifier(trust=replace(trust, log_keys={stranger.name: stranger})).check(bundle)
    assert checks(report)["log.inclusion"] == "failed"
    bare = Bundle.from_json({k: v for k, v in bundle.to_json().items() if k != "tlogEntry"})
    assert checks(node.verifier().check(bare))["log.inclusion"] == "not_checked"
    assert checks(node.verifier(Policy(require_log=True)).check(bare))["log.inclusion"] == "failed"


def test_witness_quorum_from_policy(logged) -> None:  # type: ignore[no-untyped-def]
    node, bundle = logged
    witness = SignerKey.generate("witness.example/w1", alg=0x04)
    trust, policy = parse_policy(
        {"trust": {"witness_keys": [str(witness.verifier())]}, "log": {"witness_quorum": 1}},
        node.trust_root(),
    )
    report = node.verifier(policy, trust).check(bundle)
    assert checks(report)["log.witness_quorum"] == "failed"


def test_split_view_is_detected(node: LocalNode, mlp_bytes: bytes, tmp_path: Path) -> None:
    """A second log with the same key but another history: the verifier's memory
    of the first log's checkpoints turns the second one into a failed check."""
    node.push(mlp_bytes, name="mlp")
    first = [node.infer("mlp", mlp_input(seed=i)).bundle for i in range(3)]
    verifier = node.verifier()
    for b in first:
        assert checks(verifier.check(b))["log.consistency"] == "passed"
    # A forked copy of the node: same keys, the log copied at size 3, then diverging.
    node.close()
    twin_home = tmp_path / "twin"
    shutil.copytree(node.home.root, twin_home)
    twin = LocalNode(twin_home)
    forked = twin.infer("mlp", mlp_input(seed=100)).bundle  # size 4 on the twin
    honest = node.infer("mlp", mlp_input(seed=200)).bundle  # size 4 on the node
    assert checks(verifier.check(honest))["log.consistency"] == "passed"
    report = verifier.check(forked)
    assert checks(report)["log.consistency"] == "failed"
    assert "split view" in next(c.detail for c in report.checks if c.name == "log.consistency")
    twin.close()


def test_rollback_is_detected(node: LocalNode, mlp_bytes: bytes, tmp_path: Path) -> None:
    node.push(mlp_bytes, name="mlp")
    node.infer("mlp", mlp_input(seed=1))
    node.close()
    snapshot = tmp_path / "snap"
    shutil.copytree(node.home.root, snapshot)
    grown = [node.infer("mlp", mlp_input(seed=i)).bundle for i in range(2, 5)]
    verifier = node.verifier()
    assert checks(verifier.check(grown[-1]))["log.consistency"] == "passed"  # remembers size 4
    node.close()
    # Roll the node's log back to size 1 and let it write a different entry 2.
    shutil.rmtree(node.home.root / "log")
    shutil.copytree(snapshot / "log", node.home.root / "log")
    rolled = LocalNode(node.home.root)
    replay = rolled.infer("mlp", mlp_input(seed=99)).bundle  # size 2, different history
    report = rolled.verifier().check(replay)
    assert checks(report)["log.consistency"] == "failed"
    rolled.close()


def test_cli_log_commands(logged, home: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from inferproof.cli import app

    node, bundle = logged
    node.close()
    out = CliRunner().invoke(app, ["log", "info"])
    assert out.exit_code == 0 and node.log.origin in out.stdout
    index = TlogProof.parse(bundle.tlog_entry).index  # type: ignore[arg-type]
    proof = CliRunner().invoke(app, ["log", "proof", str(index)])
    assert proof.exit_code == 0 and proof.stdout.startswith("c2sp.org/tlog-proof@v1")
    node.close()


def test_bundle_json_has_tlog_entry(logged, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, bundle = logged
    path = tmp_path / "b.json"
    bundle.write(path)
    assert json.loads(path.read_text())["tlogEntry"].startswith("c2sp.org/tlog-proof@v1\n")
