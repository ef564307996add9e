"""Runs of a workflow on a real feed on loopback: receipts with provenance, a failed run
signed into the chain, alerts firing."""

from __future__ import annotations

import hashlib
import json

import pytest

from inferproof import LocalNode
from inferproof._checks import CheckStatus
from inferproof.workflows import (
    AlertSpec,
    Definition,
    FeedSpec,
    Query,
    Schedule,
    check_history,
    run_once,
)

RISKY = {"income": 20, "debt": 0.9, "age": 22, "late": 6}
SAFE = {"income": 150, "debt": 0.05, "age": 50, "late": 0}


@pytest.fixture()
def setup(home, credit_model, server):  # type: ignore[no-untyped-def]
    url, routes = server
    with LocalNode(home) as node:
        record = node.push(credit_model[0], name="credit")
        d = Definition.create(
            "risk", record, FeedSpec.parse(url + "/applicants"),
            Query("X", ("income", "debt", "age", "late"), 1), Schedule(every=60.0),
            (AlertSpec("output.probabilities[0][1] > 0.5", "http://127.0.0.1:9/hook"),),
        )  # fmt: skip
        yield node, d, routes


def _feed(routes, rows) -> None:  # type: ignore[no-untyped-def]
    routes["/applicants"] = (200, json.dumps(rows).encode(), {})


def test_runs_chain_through_a_failure_and_alerts_fire(setup) -> None:
    node, d, routes = setup
    results, previous = [], None
    for run, rows in enumerate([[SAFE], None, [SAFE, RISKY]], start=1):
        if rows is None:
            routes["/applicants"] = (503, b"down", {})
        else:
            _feed(routes, rows)
        r = run_once(node, d, run, previous)
        results.append(r)
        previous = r.entry.digest
    ok1, failed2, ok3 = results
    assert ok1.ok and ok1.fired == () and ok1.webhooks == ()
    assert not failed2.ok and "answered 503" in (failed2.reason or "")
    assert failed2.fired == (f"failed: {failed2.reason}",)
    assert failed2.webhooks == ("http://127.0.0.1:9/hook",)
    assert ok3.fired == ("output.probabilities[0][1] > 0.5",) and ok3.webhooks
    report = check_history("risk", [r.entry for r in results], node.verifier())
    assert report.verified, report.first_failure
    bundle = ok3.entry.bundle
    assert bundle is not None
    prov = bundle.proofs["provenance"]
    assert prov["window"] == {"rows": 2, "first": 1, "last": 1}
    assert prov["digest"] == "sha256:" + hashlib.sha256(
        json.dumps([SAFE, RISKY]).encode()).hexdigest()  # fmt: skip
    checks = {c.name: c.status for c in node.verifier().check(bundle).checks}
    assert checks["input.provenance"] is CheckStatus.PASSED
    assert bundle.receipt.parameters["workflow"]["previous"] == failed2.entry.digest


def test_rows_that_do_not_fit_make_a_failed_run(setup) -> None:
    node, d, routes = setup
    _feed(routes, [{"income": "n/a", "debt": 0.1, "age": 30, "late": 0}])
    r = run_once(node, d, 1, None)
    assert not r.ok and "is not a finite number" in (r.reason or "")
    assert check_history("risk", [r.entry], node.verifier()).verified
