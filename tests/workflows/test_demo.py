"""``inferproof demo --workflow`` in a real process, as a new user runs it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests._cli import inferproof


def test_demo_workflow(tmp_path: Path) -> None:
    env = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "home"), COLUMNS="200")
    out = tmp_path / "demo"
    proc = inferproof(env, "demo", "--workflow", "--dir", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    assert text.count("signature verified") == 5  # the webhooks of runs 6 to 10
    assert "alert fired on run(s) [6, 7, 8, 9, 10]" in text
    assert "workflow.provenance: passed 10 run(s) re-checked" in text
    assert "10 run(s): VERIFIED" in text
    assert "workflow.chain: FAILED entry 4 is run 6, expected run 5: run 5 is missing" in text
    history = json.loads((out / "demo-eth-volatility.history.json").read_text())
    assert len(history["runs"]) == 10
    # The files the demo names verify (and fail) with the commands it suggests.
    ok = inferproof(
        env, "workflow", "verify", "--file", str(out / "demo-eth-volatility.history.json")
    )
    gap = inferproof(env, "workflow", "verify", "--file",
                     str(out / "demo-eth-volatility.history-gap.json"))  # fmt: skip
    assert ok.returncode == 0 and gap.returncode == 1 and "run 5 is missing" in gap.stderr
