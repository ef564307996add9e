"""Issue 11, low: witness cosignature timestamps were never compared with the
verification time.

c2sp.org/tlog-cosignature: the timestamp "is the time at which the cosignature was
generated", and "verifiers MAY reject cosignatures with timestamps in the future". A
cosignature dated after the verification time by more than the clock-skew allowance
(``COSIGNATURE_CLOCK_SKEW``) is a witness statement about a time that has not come: it
does not count toward the quorum, and the check says which one and why. The
verification time is an argument (a fixed ``now`` here), never read deep inside.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inferproof import LocalNode
from inferproof.errors import VerificationError
from inferproof.log import (
    ALG_COSIGNATURE_V1,
    COSIGNATURE_CLOCK_SKEW,
    SignerKey,
    TlogProof,
    open_checkpoint,
    verify_tlog_proof,
)
from inferproof.receipts import Bundle
from inferproof.verify import Material, Policy
from inferproof.verify._logcheck import log_checks

from ..conftest import mlp_input

NOW = 1_900_000_000  # the verification time of every test here (2030-03-17)


@pytest.fixture()
def logged(tmp_path: Path, mlp_bytes: bytes) -> tuple[LocalNode, Bundle]:
    node = LocalNode(tmp_path / "node")
    node.push(mlp_bytes, name="mlp")
    return node, node.infer("mlp", mlp_input()).bundle


def _witnesses(n: int) -> list[SignerKey]:
    return [SignerKey.generate(f"w{i}.example/witness", ALG_COSIGNATURE_V1) for i in range(n)]


def _cosigned(bundle: Bundle, node: LocalNode, cosigs: list[tuple[SignerKey, int]]) -> Bundle:
    """``bundle`` with its checkpoint cosigned by each witness at the given time."""
    assert bundle.tlog_entry is not None
    proof = TlogProof.parse(bundle.tlog_entry)
    note = open_checkpoint(proof.checkpoint, node.log.verifier_key).note
    signed = note.with_signatures(w.sign(note.text, ts) for w, ts in cosigs)
    return bundle.with_tlog_entry(TlogProof(proof.index, proof.path, signed.encode()).encode())


def _quorum_check(bundle: Bundle, node: LocalNode, witnesses: list[SignerKey], quorum: int):  # type: ignore[no-untyped-def]
    checks = log_checks(
        bundle,
        {node.log.origin: node.log.verifier_key},
        [w.verifier() for w in witnesses],
        quorum,
        True,
        None,
        None,
        now=NOW,
    )
    return next(c for c in checks if c.name == "log.witness_quorum")


@pytest.mark.parametrize(
    ("offset", "counts"),
    [
        (-86_400, True),  # a day old: fine
        (0, True),
        (COSIGNATURE_CLOCK_SKEW, True),  # within the allowance for clock skew
        (COSIGNATURE_CLOCK_SKEW + 1, False),  # beyond it: dated in the future
        (10 * 365 * 86_400, False),
    ],
)
def test_future_cosignature_does_not_count(
    logged: tuple[LocalNode, Bundle], offset: int, counts: bool
) -> None:
    """Issue 11, low: a cosignature dated beyond the skew allowance after ``now`` is not
    counted toward a quorum of one; the detail names the witness and the reason."""
    node, bundle = logged
    (witness,) = _witnesses(1)
    check = _quorum_check(_cosigned(bundle, node, [(witness, NOW + offset)]), node, [witness], 1)
    assert check.status.value == ("passed" if counts else "failed"), check.detail
    if not counts:
        assert witness.name in check.detail
        assert f"{offset} s after the verification time" in check.detail
        assert f"{COSIGNATURE_CLOCK_SKEW} s clock-skew allowance" in check.detail


def test_one_future_cosignature_of_two(logged: tuple[LocalNode, Bundle]) -> None:
    """Issue 11, low: quorum 2 with one future cosignature fails; quorum 1 passes and
    still says which cosignature it did not count."""
    node, bundle = logged
    on_time, early = _witnesses(2)
    cosigned = _cosigned(bundle, node, [(on_time, NOW - 60), (early, NOW + 3600)])
    two = _quorum_check(cosigned, node, [on_time, early], 2)
    assert two.status.value == "failed" and "1 of 2 required" in two.detail
    one = _quorum_check(cosigned, node, [on_time, early], 1)
    assert one.status.value == "passed"
    assert on_time.name in one.detail and f"not counted: {early.name}" in one.detail


def test_time_is_an_argument_of_the_low_level_check(logged: tuple[LocalNode, Bundle]) -> None:
    """Issue 11, low: verify_tlog_proof compares times only with the ``now`` it is given
    (strictly, unless given an allowance), and says so when it is given none."""
    node, bundle = logged
    (witness,) = _witnesses(1)
    cosigned = _cosigned(bundle, node, [(witness, NOW + 10)])
    assert cosigned.tlog_entry is not None
    leaf = node.log.entry(TlogProof.parse(cosigned.tlog_entry).index)
    args = (cosigned.tlog_entry, leaf, node.log.verifier_key, [witness.verifier()], 1)
    with pytest.raises(VerificationError) as info:
        verify_tlog_proof(*args, now=NOW)
    assert info.value.check == "log.witness_quorum" and "10 s after" in info.value.detail
    assert verify_tlog_proof(*args, now=NOW, clock_skew=COSIGNATURE_CLOCK_SKEW).cosigners == (
        witness.name,
    )
    unchecked = verify_tlog_proof(*args).checks[-1]
    assert unchecked.passed and "times not compared" in unchecked.detail


def test_the_verifier_compares_cosignature_times(logged: tuple[LocalNode, Bundle]) -> None:
    """Issue 11, low: through the Verifier, the verification time is Material.now."""
    node, bundle = logged
    (witness,) = _witnesses(1)
    cosigned = _cosigned(bundle, node, [(witness, NOW + 3600)])
    trust = node.trust_root()
    verifier = node.verifier(
        Policy(witness_quorum=1), replace(trust, witness_keys=(witness.verifier(),))
    )
    report = verifier.check(cosigned, Material(now=datetime.fromtimestamp(NOW, UTC)))
    check = next(c for c in report.checks if c.name == "log.witness_quorum")
    assert check.status.value == "failed" and "after the verification time" in check.detail
