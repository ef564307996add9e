"""A workflow history is a hash chain of signed runs, failures included; every way of
editing it is caught at the place it happened."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inferproof import LocalNode
from inferproof.receipts import utc_now
from inferproof.workflows import HistoryEntry, check_history, failure_statement
from inferproof.workflows._chain import link_fields

DEF = "sha256:" + "d" * 64


def _history(node: LocalNode, n: int = 5, failed_at: int = 3) -> list[HistoryEntry]:
    entries: list[HistoryEntry] = []
    previous = None
    for run in range(1, n + 1):
        fields = link_fields("risk", DEF, run, previous)
        if run == failed_at:
            st = failure_statement(
                node_id=node.node_id,
                workflow=fields,
                reason="feed answered 503",
                planned=utc_now(),
                at=utc_now(),
            )
            envelope, entry = node.issuer.sign_statement(st)  # fmt: skip
            e = HistoryEntry(envelope=envelope, tlog_entry=entry)
        else:
            x = {"X": np.array([[50.0 + run, 0.4, 34.0, 2.0]], np.float32)}
            e = HistoryEntry(bundle=node.infer("credit", x, workflow=fields).bundle)
        entries.append(HistoryEntry.from_json(e.to_json()))
        previous = e.digest
    return entries


@pytest.fixture()
def chain(home, credit_model):  # type: ignore[no-untyped-def]
    with LocalNode(home) as node:
        node.push(credit_model[0], name="credit")
        yield node, _history(node)


def _chain_failure(report) -> str:  # type: ignore[no-untyped-def]
    bad = report.first_failure
    assert bad is not None and not report.verified
    return f"{bad.name}: {bad.detail}"


def test_a_history_with_a_failed_run_verifies(chain) -> None:
    node, entries = chain
    report = check_history("risk", entries, node.verifier())
    assert report.verified, report.first_failure
    assert [(r[0], r[1], r[2]) for r in report.runs] == [
        (1, "receipt", True), (2, "receipt", True), (3, "failure", True),
        (4, "receipt", True), (5, "receipt", True)]  # fmt: skip
    assert report.runs[2][3].endswith("failed: feed answered 503")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda e: e.pop(1), "workflow.chain: entry 1 is run 3, expected run 2: run 2 is missing"),
        (lambda e: e.pop(2), "run 3 is missing"),
        (lambda e: e.insert(1, e.pop(3)), "entry 1 is run 4, expected run 2"),
        (lambda e: e.insert(2, e[1]), "entry 2 is run 2, expected run 3: run 3 is out of order"),
        (lambda e: e.pop(0), "entry 0 is run 2, expected run 1"),
    ],
    ids=["skipped", "failure dropped", "reordered", "duplicated", "first dropped"],
)
def test_edited_histories_fail_where_they_were_edited(chain, edit, message: str) -> None:
    node, entries = chain
    edit(entries)
    assert message in _chain_failure(check_history("risk", entries, node.verifier()))


def test_a_forged_run_fails(chain, tmp_path: Path) -> None:
    node, entries = chain
    with LocalNode(tmp_path / "forger") as forger:
        forger.push(node.model_bytes(entries[0].bundle.receipt.model_digest), name="credit")
        fields = link_fields("risk", DEF, 2, entries[0].digest)
        x = {"X": np.array([[1.0, 0.1, 20.0, 9.0]], np.float32)}
        entries[1] = HistoryEntry(bundle=forger.infer("credit", x, workflow=fields).bundle)
    text = _chain_failure(check_history("risk", entries, node.verifier()))
    assert text.startswith("workflow.run: run 2: signature:")


def test_a_run_of_another_workflow_or_definition_fails(home, credit_model) -> None:
    with LocalNode(home) as node:
        node.push(credit_model[0], name="credit")
        entries = _history(node, n=2, failed_at=0)
        x = {"X": np.array([[1.0, 0.1, 20.0, 9.0]], np.float32)}
        other = link_fields("other", DEF, 3, entries[1].digest)
        entries.append(HistoryEntry(bundle=node.infer("credit", x, workflow=other).bundle))
        assert "workflow.name: run 3 belongs to 'other'" in _chain_failure(
            check_history("risk", entries, node.verifier()))  # fmt: skip
        entries[2] = HistoryEntry(bundle=node.infer("credit", x, workflow=link_fields(
            "risk", "sha256:" + "e" * 64, 3, entries[1].digest)).bundle)  # fmt: skip
        assert "workflow.definition: runs of 2 definitions" in _chain_failure(
            check_history("risk", entries, node.verifier()))  # fmt: skip
        plain = HistoryEntry(bundle=node.infer("credit", x).bundle)
        assert "workflow.entry: entry 0: the receipt names no workflow run" in _chain_failure(
            check_history("risk", [plain], node.verifier()))  # fmt: skip
