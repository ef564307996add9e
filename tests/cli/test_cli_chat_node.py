"""`inferproof chat MODEL PROMPT --node URL`: the answer through a node, verified by the
client before the command succeeds, against a real node on loopback."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferproof.cli import app
from inferproof.client import Client
from inferproof.engine import receipt_digest
from inferproof.receipts import Bundle

from ..node._chat import tiny_gguf
from ..node.conftest import Running, start

runner = CliRunner()
GREEDY = ["--temperature", "0", "--max-tokens", "12"]


@pytest.fixture()
def chat_node(tmp_path: Path) -> Iterator[Running]:
    running = start(tmp_path / "node-home")
    running.node.push(tiny_gguf(), name="tiny")
    yield running
    running.stop()


def _chat(running: Running, *args: str, env: dict[str, str] | None = None) -> object:
    where = [] if env else ["--node", running.url, "--token", running.token]
    return runner.invoke(app, ["chat", "tiny", "Hi", *GREEDY, *where, *args], env=env)


def test_chat_through_a_node_prints_the_verified_answer(
    chat_node: Running, home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "answer.bundle.json"
    said = _chat(chat_node, "-o", str(out))
    assert said.exit_code == 0, said.stderr
    with Client(chat_node.url, token=chat_node.token, home=tmp_path / "c") as client:
        expected = client.chat("tiny", "Hi", temperature=0, max_tokens=12).text
    assert said.stdout == expected + "\n"
    bundle = Bundle.read(out)
    assert f"receipt {receipt_digest(bundle)}, log index 0, nonce " in said.stderr
    assert f"bundle written to {out}" in said.stderr
    assert "verified: " in said.stderr and "input.requested" in said.stderr
    assert "not checked (" in said.stderr
    # The client pinned the node in the CLI's home, as every --node command does.
    pins = list((home / "known_nodes").glob("*.json"))
    assert len(pins) == 1
    pin = json.loads(pins[0].read_text())
    assert base64.b64decode(pin["node_key"]) == chat_node.node.public_key


def test_node_and_token_come_from_the_environment(
    chat_node: Running, home: Path, tmp_path: Path
) -> None:
    env = {"INFERPROOF_NODE": chat_node.url, "INFERPROOF_TOKEN": chat_node.token}
    said = _chat(chat_node, "-o", str(tmp_path / "b.json"), env=env)
    assert said.exit_code == 0, said.stderr
    assert said.stdout.strip() and (tmp_path / "b.json").is_file()


def test_verified_stream_private_and_a_nonce(
    chat_node: Running, home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p.bundle.json"
    said = _chat(chat_node, "--verified-stream", "--private", "--nonce", "n-123", "-o", str(out))
    assert said.exit_code == 0, said.stderr
    opening = out.with_name(out.name + ".opening")
    assert opening.is_file() and opening.stat().st_mode & 0o777 == 0o600
    assert json.loads(opening.read_text())["request"]["messages"][0]["content"] == "Hi"
    assert Bundle.read(out).receipt.nonce == "n-123" and "nonce n-123" in said.stderr
    # The private prompt stays out of the bundle: not in its JSON nor in the signed
    # statement (base64 text could hold the two letters by chance, so look decoded).
    bundle = Bundle.read(out)
    assert bundle.inputs is None and "fingerprint" not in bundle.proofs
    payload = base64.b64decode(bundle.envelope["payload"]).decode()
    assert '"Hi"' not in payload and '"Hi"' not in out.read_text()


def test_a_policy_file_applies(chat_node: Running, home: Path, tmp_path: Path) -> None:
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"require": {"reexecution": True, "nonce": True, "log": True}}))
    said = _chat(chat_node, "--policy", str(strict), "-o", str(tmp_path / "s.json"))
    assert said.exit_code == 0, said.stderr
    assert "output.fingerprint" in said.stderr.split("not checked")[0]


def test_a_failed_check_after_the_text_says_it_is_not_verified(
    chat_node: Running, home: Path, tmp_path: Path
) -> None:
    """A policy trusting another node key: the answer streams, then its receipt fails."""
    other = base64.b64encode(os.urandom(32)).decode()
    policy = tmp_path / "other.json"
    policy.write_text(json.dumps({"trust": {"node_keys": [other]}, "require": {"nonce": True}}))
    said = _chat(chat_node, "--policy", str(policy), "-o", str(tmp_path / "x.json"))
    assert said.exit_code == 1
    assert said.stdout.strip()  # the text was shown as it came
    lines = said.stderr.strip().splitlines()
    assert lines[0] == "warning: the answer above is NOT verified"
    assert lines[-1].startswith("error: signature: ")
    assert not (tmp_path / "x.json").exists()
    held = _chat(chat_node, "--policy", str(policy), "--verified-stream")
    assert held.exit_code == 1 and held.stdout == ""  # nothing printed before the check
    assert held.stderr.startswith("error: signature: ")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["chat", "tiny.gguf", "Hi", "--node", "URL"], "error: with --node, MODEL names a model"),
        (["chat", "nothing", "Hi", "--node", "URL", "--token", "T"], "error: node answered 404"),
        (["chat", "tiny", "Hi", "--node", "URL"], "error: node answered 401"),
        (["chat", "tiny", "Hi", "--node", "URL", "--token", "T", "--max-tokens", "0"], "Invalid"),
        (["chat", "tiny", "Hi", "--node", "ftp://x"], "error: node URL 'ftp://x' must start"),
        (["chat", "tiny", "Hi", "--verified-stream"], "error: --policy and --verified-stream"),
    ],
)
def test_bad_input_is_one_line(chat_node: Running, home: Path, args: list[str], match: str) -> None:
    args = [chat_node.url if a == "URL" else chat_node.token if a == "T" else a for a in args]
    said = runner.invoke(app, args, env={"INFERPROOF_TOKEN": ""})
    assert said.exit_code == 2
    assert match in said.stderr
    if match.startswith("error: "):
        assert len(said.stderr.strip().splitlines()) == 1
        assert said.stdout == ""
