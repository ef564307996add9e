"""`inferproof token ...`, `serve` argument checks and the node demo, through Typer."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from inferproof.cli._demo import node_demo
from inferproof.cli._node import serve, token_app
from inferproof.node import TokenStore

app = typer.Typer()
app.add_typer(token_app, name="token")
app.command("serve")(serve)
app.command("demo")(node_demo)
runner = CliRunner()


def test_token_create_list_revoke(home: Path) -> None:
    made = runner.invoke(app, ["token", "create", "--label", "ci runner"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    store = TokenStore(home)
    assert token.startswith("ipt_") and store.check(token) is not None
    listed = runner.invoke(app, ["token", "list"])
    digest = store.list()[0].hash
    assert digest[:16] in listed.stdout and "ci runner" in listed.stdout
    assert runner.invoke(app, ["token", "revoke", digest[:10]]).exit_code == 0
    assert store.check(token) is None
    bad = runner.invoke(app, ["token", "revoke", "abc"])
    assert bad.exit_code == 2 and "at least 8" in bad.output


@pytest.mark.parametrize(
    "args", [["--port", "70000"], ["--max-jobs", "0"], ["--request-timeout", "0"]]
)
def test_serve_rejects_bad_limits(home: Path, args: list[str]) -> None:
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2 and "error:" in result.output


def test_node_demo_shows_a_verified_result(tmp_path: Path, home: Path) -> None:
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "VERIFIED: the policy is satisfied" in out
    assert "NOT VERIFIED (output.digest" in out  # the tampered copy
    assert "node stopped cleanly" in out
    # The node's own home holds the log the demo's receipt went into.
    assert (tmp_path / "demo" / "node-home" / "log" / "log.sqlite").exists()
    assert not (home / "log").exists()  # the user's home was not touched
