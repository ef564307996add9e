"""Run records through a real HTTP node: ``POST /v1/runs`` and the verifying client."""

from __future__ import annotations

import httpx
import numpy as np

from inferproof import Client
from inferproof._checks import CheckStatus
from inferproof.receipts import receipt_digest, utc_now

X = {"X": np.array([[52.0, 0.41, 34.0, 2.0]], np.float32)}


def test_a_remote_run_is_signed_by_the_node_and_verifies(remote) -> None:
    with Client(remote.url, token=remote.token) as client:
        run = client.run_recorder(run_id="remote-1", agent={"name": "t"})
        run.add("infer", client.infer("credit", X).bundle)
        run.add("chat", client.chat("tiny", "Hello?", max_tokens=6, temperature=0).bundle)
        record = run.record()
        report = client.check_run(record)
    assert report.verified, report.first_failure
    assert record.statement.node_id == remote.node.node_id
    assert [c.tool for c in report.calls] == ["infer", "chat"]
    checks = {c.name: c.status for c in report.checks}
    assert checks["run.chain"] is CheckStatus.PASSED and checks["run.log.inclusion"] is (
        CheckStatus.PASSED
    )


def test_the_node_signs_only_receipts_it_issued_to_the_caller(remote, tmp_path) -> None:
    # A receipt from this node but under another token, and one from another node.
    from inferproof.node import TokenStore

    other_token = TokenStore(remote.home).create("someone else")
    with Client(remote.url, token=other_token) as theirs:
        foreign = receipt_digest(theirs.infer("credit", X).bundle)
    with Client(remote.url, token=remote.token) as client:
        mine = receipt_digest(client.infer("credit", X).bundle)
    body = {
        "run": "r",
        "started": utc_now(),
        "calls": [{"tool": "infer", "receipt": mine}, {"tool": "infer", "receipt": foreign}],
    }
    headers = {"Authorization": f"Bearer {remote.token}"}
    answer = httpx.post(f"{remote.url}/v1/runs", json=body, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        f"call 1: receipt {foreign} is not one this node issued to this token"
    )
    assert httpx.post(f"{remote.url}/v1/runs", json=body).status_code == 401
    bad = {**body, "calls": [{"tool": "in fer", "receipt": mine}]}
    assert httpx.post(f"{remote.url}/v1/runs", json=bad, headers=headers).status_code == 422
    ok = {**body, "calls": body["calls"][:1]}
    signed = httpx.post(f"{remote.url}/v1/runs", json=ok, headers=headers)
    assert signed.status_code == 200 and set(signed.json()) == {"dsseEnvelope", "tlogEntry"}
