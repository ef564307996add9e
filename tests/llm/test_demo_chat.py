"""``inferproof demo --chat``: SmolLM2 answers, its receipt verifies by re-execution, and
a tampered copy fails; run as a user runs it, in a real process."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .._cli import inferproof as _inferproof


def test_demo_chat_end_to_end_in_a_real_process(tmp_path: Path) -> None:
    env = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "home"), COLUMNS="200")
    demo = tmp_path / "demo"
    proc = _inferproof(env, "demo", "--chat", "--dir", str(demo))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # The question is worded so that its greedy answer is the same on every CPU family
    # (testing/_smollm2.py); the printed answer is the bundle's.
    assert "SmolLM2: The capital of France is Paris." in out
    answer = json.loads((demo / "chat-bundle.json").read_text())["outputs"]["text"]
    assert f"SmolLM2: {answer}\n" in out
    # SmolLM2's quantised kernels differ between one-row decoding and the prefill:
    # "within tolerance" (on a CPU where they agree, "bit-identical").
    assert re.search(r"(within tolerance|bit-identical): prefill of \d+ positions", out), out
    assert "VERIFIED: the policy is satisfied" in out
    assert "NOT VERIFIED (output.digest" in out
    assert "not re-executed: output.digest failed" in out
    tampered = json.loads((demo / "chat-bundle-tampered.json").read_text())
    assert "Lyon" in tampered["outputs"]["text"]
    # The bundle verifies again from the command line (the model from the local hub),
    # re-executed; the tampered copy does not.
    ok = _inferproof(env, "verify", str(demo / "chat-bundle.json"))
    bad = _inferproof(env, "verify", str(demo / "chat-bundle-tampered.json"))
    assert ok.returncode == 0 and ": prefill of" in ok.stdout, ok.stdout
    exact = _inferproof(env, "verify", "--exact", str(demo / "chat-bundle.json"))
    assert exact.returncode == 0 and "re-executed: identical" in exact.stdout, exact.stdout
    assert bad.returncode == 1 and "NOT VERIFIED (output.digest" in bad.stdout


def test_demo_chat_and_node_are_two_demos(tmp_path: Path) -> None:
    env = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "home"))
    proc = _inferproof(env, "demo", "--chat", "--node", "--dir", str(tmp_path / "d"))
    assert proc.returncode != 0
    assert "--node, --chat, --agent, --workflow and --chain are five demos: give one" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "d").exists()
