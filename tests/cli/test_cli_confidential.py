"""`inferproof infer|chat --node URL --confidential --relay URL`, run as a user runs it
(a real process), against a real node and relay on loopback: the answer comes back
verified, the relay forwarded only ciphertext, and every misuse is one line and exit 2.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferproof.receipts import Bundle
from inferproof.testing import credit_risk_model
from tests._cli import inferproof
from tests.confidential._relay import Relay, relay_for
from tests.node._chat import tiny_gguf
from tests.node.conftest import Running, pushed, start


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Relay]]:
    running = start(tmp_path_factory.mktemp("cli-confidential") / "node")
    try:
        running.node.push(tiny_gguf(), name="tiny")
        pushed(running, credit_risk_model()[0], name="credit", version="1")
        with relay_for(running) as relay:
            yield running, relay
    finally:
        running.stop()


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERPROOF_")}
    return {**env, "INFERPROOF_HOME": str(tmp_path / "home")}


def test_infer_and_chat_go_sealed_through_the_relay(
    served: tuple[Running, Relay], tmp_path: Path
) -> None:
    running, relay = served
    inputs = tmp_path / "x.json"
    inputs.write_text(json.dumps({"X": [[52.0, 0.41, 34.0, 2.0]]}))
    where = ["--node", running.url, "--token", running.token, "--confidential",
             "--relay", relay.url]  # fmt: skip
    before = len(relay.forwarded.sent)
    done = inferproof(_env(tmp_path), "infer", "credit:1", "--input", str(inputs),
                      "-o", str(tmp_path / "i.json"), *where)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "confidential: not_checked: software node" in done.stdout + done.stderr
    assert Bundle.read(tmp_path / "i.json").receipt.model_digest.startswith("sha256:")
    said = inferproof(_env(tmp_path), "chat", "tiny", "Hello there", "--temperature", "0",
                      "--max-tokens", "8", "-o", str(tmp_path / "c.json"), *where)  # fmt: skip
    assert said.returncode == 0, said.stderr
    assert said.stdout.strip() and "verified: " in said.stderr
    assert "confidential: not_checked" in said.stderr
    sent = relay.posted(before)
    assert len(sent) >= 2
    for body in sent:
        for secret in (b"Hello there", b"credit", b"tiny", running.token.encode(), b"/v1/"):
            assert secret not in body


def test_a_policy_requiring_attestation_refuses_a_software_node(
    served: tuple[Running, Relay], tmp_path: Path
) -> None:
    running, relay = served
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"require": {"confidential": True}}))
    done = inferproof(_env(tmp_path), "chat", "tiny", "Hello", "--node", running.url,
                      "--token", running.token, "--policy", str(policy), "--confidential",
                      "--relay", relay.url)  # fmt: skip
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.startswith("error: confidential: the node's gateway key is not bound")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--node", "http://127.0.0.1:9", "--confidential"], "error: --confidential needs --relay"),
        (["--node", "http://127.0.0.1:9", "--relay", "http://r/"], "error: --relay needs --confi"),
        (["--confidential", "--relay", "http://r/"], "error: --confidential applies with --node"),
        (["--node", "http://127.0.0.1:9", "--confidential", "--relay", "ftp://r/"],
         "error: --relay must be the http(s) URL"),
        (["--node", "http://127.0.0.1:9", "--confidential", "--relay", "http://127.0.0.1:9/"],
         "error: the relay http://127.0.0.1:9/ is unreachable"),
    ],
)  # fmt: skip
def test_misused_flags_are_one_line_errors(args: list[str], message: str, tmp_path: Path) -> None:
    done = inferproof(_env(tmp_path), "chat", "tiny", "Hi", *args)
    assert done.returncode != 0
    assert done.stderr.startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
