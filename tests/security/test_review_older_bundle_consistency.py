"""Issue 11, low: ``log.consistency`` FAILED, instead of "not checked", for a
legitimate older bundle from a log whose newer checkpoint the verifier remembers
without a source of proofs for that log.

``inferproof verify`` on a machine that is not the issuing node proves consistency
from its own local log, which holds no proofs for another node's log: that was turned
into a failed check. A check that cannot be made is not checked; a source that does
hold the log and cannot link two sizes it signed is still a failure (rollback), and a
fork is still a failure wherever it can be seen (same size, or a proof that fails).
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest

from inferproof import LocalNode
from inferproof.receipts import Bundle
from inferproof.verify import Verifier

from ..conftest import mlp_input


def _consistency(report: Any) -> tuple[str, str]:
    check = next(c for c in report.checks if c.name == "log.consistency")
    return check.status.value, check.detail


@pytest.fixture()
def issuer(tmp_path: Path, mlp_bytes: bytes) -> LocalNode:
    node = LocalNode(tmp_path / "issuer")
    node.push(mlp_bytes, name="mlp")
    return node


def _auditor(tmp_path: Path, issuer: LocalNode) -> LocalNode:
    """Another machine that trusts the issuer's node and log keys (its trust folder)."""
    auditor = LocalNode(tmp_path / "auditor")
    trust = auditor.home.trust
    (trust / "nodes").mkdir(parents=True, exist_ok=True)
    (trust / "logs").mkdir(parents=True, exist_ok=True)
    (trust / "nodes" / "issuer.pub").write_text(base64.b64encode(issuer.public_key).decode())
    (trust / "logs" / "issuer.vkey").write_text(str(issuer.log.verifier_key))
    return auditor


def _bundles(issuer: LocalNode, n: int) -> list[Bundle]:
    return [issuer.infer("mlp", mlp_input(seed=i)).bundle for i in range(n)]


def test_older_bundle_is_not_checked_not_failed(issuer: LocalNode, tmp_path: Path) -> None:
    """Issue 11, low: newer bundle first, then an older one, verified on a machine whose
    proof source (its own log) holds no proofs for the issuer's log."""
    older, newer = _bundles(issuer, 3)[0], issuer.infer("mlp", mlp_input(seed=9)).bundle
    auditor = _auditor(tmp_path, issuer)
    assert _consistency(auditor.verifier().check(newer))[0] == "passed"  # first seen
    report = auditor.verifier().check(older)
    status, detail = _consistency(report)
    assert status == "not_checked", detail  # was "failed"
    assert "holds no proofs" in detail and issuer.log.origin in detail
    assert report.verified
    # Without any proof source at all, the same: not checked.
    plain = Verifier(auditor.trust_root(), checkpoint_memory=auditor.home.checkpoints)
    assert _consistency(plain.check(older))[0] == "not_checked"


def test_with_the_issuers_proofs_the_older_bundle_passes(issuer: LocalNode, tmp_path: Path) -> None:
    """Issue 11, low: given a source that holds the log, the same check is made and passes."""
    older, newer = _bundles(issuer, 2)[0], issuer.infer("mlp", mlp_input(seed=9)).bundle
    auditor = _auditor(tmp_path, issuer)
    verifier = Verifier(
        auditor.trust_root(),
        checkpoint_memory=auditor.home.checkpoints,
        consistency=issuer.consistency_proof,
    )
    assert _consistency(verifier.check(newer))[0] == "passed"
    assert _consistency(verifier.check(older)) == (
        "passed",
        f"consistent with the remembered size {issuer.log.size}",
    )


def test_a_fork_still_fails_where_it_can_be_seen(issuer: LocalNode, tmp_path: Path) -> None:
    """Issue 11, low: a twin of the issuer (same keys, history diverging after size 2):
    at the remembered size it is a split view, with the real log's proofs a fork; only
    where no proof can be had is it not checked."""
    _bundles(issuer, 2)
    issuer.close()
    shutil.copytree(issuer.home.root, tmp_path / "twin")
    twin = LocalNode(tmp_path / "twin")
    honest = _bundles(issuer, 2)  # sizes 3 and 4 on the issuer
    forked = [twin.infer("mlp", mlp_input(seed=50 + i)).bundle for i in range(3)]  # 3..5
    auditor = _auditor(tmp_path, issuer)
    assert _consistency(auditor.verifier().check(honest[1]))[0] == "passed"  # remembers 4
    status, detail = _consistency(auditor.verifier().check(forked[1]))  # size 4: split view
    assert status == "failed" and "split view" in detail
    with_proofs = Verifier(
        auditor.trust_root(),
        checkpoint_memory=auditor.home.checkpoints,
        consistency=issuer.consistency_proof,
    )
    status, detail = _consistency(with_proofs.check(forked[0]))  # size 3, proof 3 -> 4
    assert status == "failed" and "rollback or fork" in detail
    # The fork's bigger checkpoint: the issuer holds no size 5, but it holds this log,
    # so a size it cannot prove is a failure, not a pass.
    assert _consistency(with_proofs.check(forked[2]))[0] == "failed"
    assert _consistency(auditor.verifier().check(forked[2]))[0] == "not_checked"
    twin.close()
