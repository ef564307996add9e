"""The CLI's --node paths against a real node on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferproof.cli import app
from inferproof.cli._node import start_node, stop_node
from inferproof.node import TokenStore

runner = CliRunner()


@pytest.fixture()
def node_url(tmp_path: Path):  # type: ignore[no-untyped-def]
    home = tmp_path / "node-home"
    token = TokenStore(home).create("test")
    proc, url = start_node(home)
    yield url, token
    stop_node(proc)


def test_push_infer_verify_through_a_node(
    node_url, home: Path, credit_files: tuple[Path, Path], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url, token = node_url
    model, inp = credit_files
    denied = runner.invoke(app, ["model", "push", str(model), "--name", "risk", "--node", url])
    assert denied.exit_code != 0 and denied.stderr.startswith("error: ")
    pushed = runner.invoke(
        app,
        [
            "model",
            "push",
            str(model),
            "--name",
            "risk",
            "--version",
            "1",
            "--node",
            url,
            "--token",
            token,
        ],
    )
    assert pushed.exit_code == 0, pushed.stderr
    digest = pushed.stdout.strip().splitlines()[-1]
    listed = runner.invoke(app, ["model", "list", "--node", url])
    assert "risk" in listed.stdout
    shown = runner.invoke(app, ["model", "show", "risk:1", "--node", url, "--json"])
    assert json.loads(shown.stdout)["digest"] == digest
    out = tmp_path / "b.json"
    inferred = runner.invoke(
        app,
        ["infer", "risk:1", "--input", str(inp), "--node", url, "--token", token, "-o", str(out)],
    )
    assert inferred.exit_code == 0, inferred.stderr
    verified = runner.invoke(
        app, ["verify", str(out), "--node", url, "--json", "--model", str(model)]
    )
    assert verified.exit_code == 0, verified.stdout
    names = {c["name"]: c["status"] for c in json.loads(verified.stdout)["checks"]}
    assert names["signature"] == "passed" and names["log.inclusion"] == "passed"
    assert names["output.reexecution"] == "passed"
    doc = json.loads(out.read_text())
    doc["outputs"]["label"]["data"][0] ^= 1
    out.write_text(json.dumps(doc))
    tampered = runner.invoke(app, ["verify", str(out), "--node", url, "--json"])
    assert tampered.exit_code == 1


def test_demo_node_in_a_real_process(tmp_path: Path) -> None:
    env = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "home"), COLUMNS="200")
    proc = subprocess.run(
        [sys.executable, "-m", "inferproof", "demo", "--node", "--dir", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "VERIFIED" in proc.stdout and "node stopped cleanly" in proc.stdout
