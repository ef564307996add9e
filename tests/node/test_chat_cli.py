"""`inferproof serve --relay URL [--relay-api-key KEY]`: checked options, and a real
server process relaying to a second node on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from inferproof.cli._node import serve, stop_node
from inferproof.node import TokenStore
from inferproof.receipts import Bundle

from ._chat import ask, openai_at, serving, tiny_gguf
from .conftest import Running

app = typer.Typer()
app.command("serve")(serve)
app.command("noop")(lambda: None)  # two commands keep `serve` a subcommand
runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--relay", "ftp://example.com/v1"], "upstream must be an http(s) URL"),
        (["--relay", "https://user:pw@example.com/v1"], "must not hold credentials"),
        (["--relay-api-key", "k"], "--relay-api-key needs --relay"),
    ],
)
def test_serve_rejects_bad_relay_options(home: Path, args: list[str], words: str) -> None:
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2 and words in result.output


def _wait_ready(url: str, seconds: float = 30.0) -> None:
    # "listening on" is printed as the socket is bound; wait until the app answers.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not become ready")


def test_serve_relays_to_an_upstream_node(
    make_node: Callable[..., Running], tmp_path: Path
) -> None:
    upstream = serving(make_node, tiny_gguf(), name="upstream")
    home = tmp_path / "relay-home"
    token = TokenStore(home).create("test")
    env = {**os.environ, "INFERPROOF_HOME": str(home), "INFERPROOF_RELAY_API_KEY": upstream.token}
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferproof", "serve", "--port", "0",
         "--relay", f"{upstream.url}/v1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on "), line
        url = line.removeprefix("listening on ")
        _wait_ready(url)
        answer = openai_at(url, token).chat.completions.create(**ask("Hi"))
    finally:
        code = stop_node(proc)
        stderr = proc.stderr.read() if proc.stderr else ""
    receipt = Bundle.from_json((answer.model_extra or {})["inferproof"]["bundle"]).receipt
    assert receipt.proofs[1]["upstream"] == f"{upstream.url}/v1"
    assert f"relaying chat for models not held here to {upstream.url}/v1" in stderr
    # The key came from the environment and is never printed.
    assert upstream.token not in stderr
    assert code in (0, -15)
