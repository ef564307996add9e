"""Run records: the node-signed hash chain over an agent run's calls, and its tampering."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferproof import Bundle, InputError, LocalNode, VerificationError
from inferproof._canonical import canonical_json
from inferproof._checks import CheckStatus
from inferproof.receipts import RunRecord, chain, receipt_digest, sign_envelope
from inferproof.verify import RunVerifier

CREDIT = {"X": np.array([[52.0, 0.41, 34.0, 2.0]], np.float32)}


def _run(node: LocalNode, n_infer: int = 2) -> RunRecord:
    run = node.run_recorder(run_id="run-1", agent={"name": "test-agent"})
    for i in range(n_infer):
        x = {"X": CREDIT["X"] + np.float32(i)}
        run.add("infer", node.infer("credit", x).bundle)
    chat = {"messages": [{"role": "user", "content": "Why?"}], "max_tokens": 8, "temperature": 0}
    run.add("chat", node.chat("tiny", chat).bundle)
    return run.record()


def _checks(report) -> dict[str, tuple[CheckStatus, str]]:
    return {c.name: (c.status, c.detail) for c in report.checks}


def _edit(record: RunRecord, change) -> RunRecord:
    obj = copy.deepcopy(record.to_json())
    change(obj)
    return RunRecord.from_json(obj)


def test_a_run_record_verifies_and_lists_every_call(agent_node, tmp_path: Path) -> None:
    record = _run(agent_node)
    path = tmp_path / "run.json"
    record.write(path)
    again = RunRecord.read(path)
    report = RunVerifier(agent_node.verifier()).verify(again)
    assert report.verified
    checks = _checks(report)
    assert [n for n in checks if n.startswith("run.")][:3] == [
        "run.signature",
        "run.chain",
        "run.calls",
    ]
    assert checks["run.chain"] == (
        CheckStatus.PASSED,
        "3 call(s) linked from the first to the subject",
    )
    assert checks["run.log.inclusion"][0] is CheckStatus.PASSED
    assert [c.tool for c in report.calls] == ["infer", "infer", "chat"]
    assert [c.receipt for c in report.calls] == [receipt_digest(b) for b in again.bundles]
    # The calls, then the run record, went into the log in that order.
    indexes = [c.log_index for c in report.calls]
    assert indexes == sorted(indexes) and len(set(indexes)) == 3
    assert all(c.verified for c in report.calls)
    # The links are the documented hash chain of the receipt digests.
    st = again.statement
    assert [c.link for c in st.calls] == chain("run-1", [c.receipt for c in st.calls])
    assert st.agent == {"name": "test-agent"} and st.node_id == agent_node.node_id


def test_a_record_taken_mid_run_covers_the_calls_so_far(agent_node) -> None:
    run = agent_node.run_recorder()
    run.add("infer", agent_node.infer("credit", CREDIT).bundle)
    first = run.record()
    run.add("infer", agent_node.infer("credit", CREDIT).bundle)
    second = run.record()
    assert len(first.statement.calls) == 1 and len(second.statement.calls) == 2
    assert first.statement.calls[0] == second.statement.calls[0]
    verifier = RunVerifier(agent_node.verifier())
    assert verifier.check(first).verified and verifier.check(second).verified


def test_an_empty_run_verifies(agent_node) -> None:
    record = agent_node.run_recorder(run_id="idle").record()
    report = RunVerifier(agent_node.verifier()).verify(record)
    assert report.calls == () and _checks(report)["run.chain"][0] is CheckStatus.PASSED


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o["calls"].pop(1), "call 1: the record carries receipt"),
        (lambda o: o["calls"].pop(), "the record carries 2 call bundle(s), the signed chain 3"),
        (lambda o: o["calls"].insert(0, o["calls"].pop(1)), "call 0: the record carries receipt"),
        (lambda o: o["calls"].append(copy.deepcopy(o["calls"][0])), "the signed chain 3: a call"),
    ],
    ids=["dropped", "last dropped", "reordered", "inserted"],
)
def test_dropped_reordered_or_inserted_calls_fail(agent_node, change, message: str) -> None:
    record = _edit(_run(agent_node), change)
    report = RunVerifier(agent_node.verifier()).check(record)
    status, detail = _checks(report)["run.calls"]
    assert not report.verified and status is CheckStatus.FAILED and message in detail
    with pytest.raises(VerificationError, match=r"run\.calls"):
        RunVerifier(agent_node.verifier()).verify(record)


def test_a_call_replaced_by_another_valid_receipt_fails(agent_node) -> None:
    record = _run(agent_node)
    other = agent_node.infer("credit", {"X": CREDIT["X"] * 2}).bundle
    forged = _edit(record, lambda o: o["calls"].__setitem__(0, other.to_json()))
    status, detail = _checks(RunVerifier(agent_node.verifier()).check(forged))["run.calls"]
    assert status is CheckStatus.FAILED and "(no signed call)" in detail


def test_a_tampered_call_bundle_fails_under_its_own_check(agent_node) -> None:
    record = _run(agent_node)

    def flip(o: dict[str, Any]) -> None:
        o["calls"][2]["outputs"] = {"text": "a different answer"}

    report = RunVerifier(agent_node.verifier()).check(_edit(record, flip))
    assert not report.verified and not report.calls[2].verified
    assert report.first_failure is not None and report.first_failure.name.startswith("call[2].")


def _resign(record: RunRecord, node: LocalNode, edit) -> RunRecord:
    """A statement edited and signed again with the node's own key (the chain checks
    must catch what a signature alone would not)."""
    st = copy.deepcopy(record.statement.statement)
    edit(st)
    envelope = sign_envelope(canonical_json(st), node.issuer._key)
    return _edit(record, lambda o: o.__setitem__("dsseEnvelope", envelope))


def test_a_signed_chain_with_a_wrong_link_or_subject_fails(agent_node) -> None:
    record = _run(agent_node)
    bad_link = _resign(record, agent_node, lambda st: st["predicate"]["calls"][1].__setitem__(
        "link", st["predicate"]["calls"][0]["link"]))  # fmt: skip
    bad_subject = _resign(record, agent_node, lambda st: st["subject"][0]["digest"].__setitem__(
        "sha256", "0" * 64))  # fmt: skip
    runs = RunVerifier(agent_node.verifier())
    assert _checks(runs.check(bad_link))["run.chain"] == (
        CheckStatus.FAILED, "call 1: the signed link is not the chain's")  # fmt: skip
    assert _checks(runs.check(bad_subject))["run.chain"] == (
        CheckStatus.FAILED, "the statement's subject is not the chain's last link")  # fmt: skip


def test_a_record_signed_by_an_untrusted_key_fails(agent_node, tmp_path: Path) -> None:
    record = _run(agent_node)
    with LocalNode(tmp_path / "other-home") as other:
        envelope = sign_envelope(canonical_json(record.statement.statement), other.issuer._key)
    forged = _edit(record, lambda o: o.__setitem__("dsseEnvelope", envelope))
    status, detail = _checks(RunVerifier(agent_node.verifier()).check(forged))["run.signature"]
    assert status is CheckStatus.FAILED and "not a node key the policy trusts" in detail


def test_every_bit_flip_of_the_signed_chain_fails(agent_node) -> None:
    record = _run(agent_node, n_infer=1)
    runs = RunVerifier(agent_node.verifier())
    for field in ("payload", "sig"):
        holder = record.envelope if field == "payload" else record.envelope["signatures"][0]
        raw = base64.b64decode(holder[field])
        for i in range(0, len(raw) * 8, 7):  # every 7th bit: each byte hit, bits spread
            flipped = bytearray(raw)
            flipped[i // 8] ^= 1 << (i % 8)

            def put(o: dict[str, Any], value: bytes = bytes(flipped), f: str = field) -> None:
                target = o["dsseEnvelope"] if f == "payload" else o["dsseEnvelope"]["signatures"][0]
                target[f] = base64.b64encode(value).decode()

            try:
                tampered = _edit(record, put)
            except InputError:
                continue  # no longer a well-formed record: refused before any check
            assert not runs.check(tampered).verified, (field, i)


def test_a_tampered_log_proof_fails(agent_node) -> None:
    record = _run(agent_node, n_infer=1)
    assert record.tlog_entry is not None
    lines = record.tlog_entry.split("\n")
    lines[1] = "index 9999"
    forged = _edit(record, lambda o: o.__setitem__("tlogEntry", "\n".join(lines)))
    report = RunVerifier(agent_node.verifier()).check(forged)
    assert not report.verified
    assert _checks(report)["run.log.inclusion"][0] is CheckStatus.FAILED


def test_a_run_record_is_never_a_receipt_nor_a_receipt_a_run_record(agent_node) -> None:
    record = _run(agent_node, n_infer=1)
    as_bundle = {**record.bundles[0].to_json(), "dsseEnvelope": record.envelope}
    with pytest.raises(InputError, match="not an inferproof receipt"):
        Bundle.from_json(as_bundle)
    as_record = {**record.to_json(), "dsseEnvelope": record.bundles[0].envelope}
    with pytest.raises(InputError, match="not an inferproof run record"):
        RunRecord.from_json(as_record)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda o: o.__setitem__("mediaType", "x"), "not a run record"),
        (lambda o: o.__setitem__("extra", 1), "unknown field"),
        (lambda o: o.__setitem__("calls", {}), "calls must be a list"),
        (lambda o: o["calls"].__setitem__(0, {"mediaType": "x"}), "run record call 0:"),
        (lambda o: o.__setitem__("tlogEntry", 5), "tlogEntry must be a string"),
    ],
)
def test_malformed_record_files_are_refused(agent_node, edit, message: str) -> None:
    obj = _run(agent_node, n_infer=1).to_json()
    edit(obj)
    with pytest.raises(InputError, match=message):
        RunRecord.loads(json.dumps(obj))


def test_bad_run_ids_and_tools_are_refused(agent_node) -> None:
    bundle = agent_node.infer("credit", CREDIT).bundle
    for run_id in ("", "x" * 129, "tab\there"):
        with pytest.raises(InputError, match="run id"):
            agent_node.run_recorder(run_id=run_id)
    run = agent_node.run_recorder()
    run.add("", bundle)
    with pytest.raises(InputError, match="tool"):
        run.record()
