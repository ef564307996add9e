"""ZK through a node: set a model up over HTTP, prove through it, verify (issue 12)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from inferproof.testing import credit_risk_model

from .conftest import Running, pushed

SAMPLE = {"X": [[52.0, 0.41, 34.0, 2.0]]}


def _wait(running: Running, job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 600
    with running.http() as http:
        while job["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            job = http.get(f"/v1/jobs/{job['id']}", params={"wait": 30}).json()
    return job


def test_setup_then_prove_through_the_node(running: Running, tmp_path: Path) -> None:
    from dataclasses import replace

    from inferproof.client import DEFAULT_POLICY, Client

    model, _ = credit_risk_model()
    pushed(running, model, name="credit-risk", version="1")
    with running.http() as http:
        got = http.post("/v1/zk/setups", json={"model": "credit-risk:1", "samples": [SAMPLE],
                                               "srs": "dev"})  # fmt: skip
    assert got.status_code == 202 and got.headers["location"].startswith("/v1/jobs/")
    done = _wait(running, got.json())
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert (
        result["srs"] == "dev" and result["model"] == "sha256:" + hashlib.sha256(model).hexdigest()
    )
    policy = replace(DEFAULT_POLICY, require_zk=True, allow_dev_srs=True)
    with Client(running.url, token=running.token, policy=policy, home=tmp_path / "c") as client:
        answer = client.infer("credit-risk:1", SAMPLE, mode="zk")
    entry = next(p for p in answer.bundle.receipt.proofs if p["type"] == "zk")
    assert entry["setup"] == result["setup"]
    assert answer.report is not None and answer.report.verified


def test_bad_setup_requests_are_refused_before_a_job(running: Running) -> None:
    pushed(running, credit_risk_model()[0], name="credit-risk", version="1")
    cases = [
        ({"model": "absent", "samples": [SAMPLE], "srs": "dev"}, 404, "no model"),
        ({"model": "credit-risk:1", "samples": [], "srs": "dev"}, 422, "samples"),
        ({"model": "credit-risk:1", "samples": [SAMPLE], "srs": "mine"}, 422, "srs"),
        ({"model": "credit-risk:1", "samples": [SAMPLE], "srs": "sha256:" + "0" * 64}, 404,
         "no SRS"),
        ({"model": "credit-risk:1", "samples": [{"X": [["a"]]}], "srs": "dev"}, 400, "numbers"),
    ]  # fmt: skip
    with running.http() as http:
        for body, status, needle in cases:
            got = http.post("/v1/zk/setups", json=body)
            assert got.status_code == status, (body, got.text)
            assert needle in got.text
    with running.http(auth=False) as anonymous:
        assert anonymous.post("/v1/zk/setups", json=cases[0][0]).status_code == 401


def test_the_client_sets_up_and_proves(running: Running, tmp_path: Path) -> None:
    from dataclasses import replace

    from inferproof.client import DEFAULT_POLICY, Client

    pushed(running, credit_risk_model()[0], name="credit-risk", version="1")
    lines: list[str] = []
    policy = replace(DEFAULT_POLICY, require_zk=True, allow_dev_srs=True)
    with Client(running.url, token=running.token, policy=policy, home=tmp_path / "c") as client:
        info = client.zk_setup("credit-risk:1", [SAMPLE], srs="dev", progress=lines.append)
        answer = client.infer("credit-risk:1", SAMPLE, mode="zk")
    assert info.srs == "dev" and info.logrows > 0 and lines
    assert answer.report is not None and answer.report.verified
    assert next(p for p in answer.bundle.receipt.proofs if p["type"] == "zk")["setup"] == info.setup


def test_cli_zk_setup_through_a_node(running: Running, tmp_path: Path) -> None:
    import json as _json

    from typer.testing import CliRunner

    from inferproof.cli import app

    pushed(running, credit_risk_model()[0], name="credit-risk", version="1")
    inp = tmp_path / "x.json"
    inp.write_text(_json.dumps(SAMPLE))
    base = ["zk", "setup", "credit-risk:1", "--sample-input", str(inp), "--node", running.url,
            "--token", running.token]  # fmt: skip
    both = CliRunner().invoke(app, [*base, "--dev-srs", "--online-srs"])
    assert both.exit_code == 2 and "exactly one SRS" in both.stderr
    done = CliRunner().invoke(
        app, [*base, "--dev-srs"], env={"INFERPROOF_HOME": str(tmp_path / "h")}
    )
    assert done.exit_code == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("sha256:")
    assert "SRS dev" in done.stdout


def test_cli_push_with_zk_sample_through_a_node(running: Running, tmp_path: Path) -> None:
    import json as _json

    from typer.testing import CliRunner

    from inferproof.cli import app

    model, inp = tmp_path / "credit.onnx", tmp_path / "x.json"
    model.write_bytes(credit_risk_model()[0])
    inp.write_text(_json.dumps(SAMPLE))
    env = {"INFERPROOF_HOME": str(tmp_path / "h")}
    args = ["model", "push", str(model), "--name", "credit-risk", "--node", running.url,
            "--token", running.token, "--zk-sample-input", str(inp)]  # fmt: skip
    both = CliRunner().invoke(app, [*args, "--zk-dev-srs", "--zk-srs", str(inp)], env=env)
    assert both.exit_code == 2 and "not both" in both.stderr
    done = CliRunner().invoke(app, [*args, "--zk-dev-srs"], env=env)
    assert done.exit_code == 0, done.stderr
    assert "zk setup sha256:" in done.stdout and "dev SRS" in done.stdout
