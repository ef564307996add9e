"""``inferproof demo --chain`` in a real process, as a new user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests._cli import inferproof

from .conftest import _ensure_tools


def test_demo_chain(tmp_path: Path) -> None:
    _ensure_tools()
    env = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "home"), COLUMNS="200")
    out = tmp_path / "demo"
    # A relative --dir, as a reader types it: the demo's home is then relative too, and
    # EZKL's child process (which runs in its own folder) must still find the keys.
    proc = subprocess.run([sys.executable, "-m", "inferproof", "demo", "--chain", "--dir", "demo"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    assert "anchored size 2 (from 0)" in text and "anchored size 3 (from 2)" in text
    assert "anchoring again: nothing sent" in text
    assert "refused by the chain: the CheckpointAnchor contract refused: InconsistentProof" in text
    assert "the anchor still holds size 3" in text
    assert "VERIFIED: the policy is satisfied" in text
    assert "zk.onchain: passed the on-chain verifier" in text
    assert "refused by the chain: the InferenceSettlement contract refused: InvalidProof" in text
    settled = json.loads((out / "settlement.json").read_text())
    assert settled["block"] > 0 and len(settled["id"]) == 64
    # The demo keeps its own home: the user's gets no chain.json pointing at a dead chain.
    assert not (tmp_path / "home" / "chain.json").exists()
    assert (out / "home" / "chain.json").is_file()
    # The bundle it wrote verifies offline against the demo node's trust root.
    demo_env = dict(env, INFERPROOF_HOME=str(out / "home"))
    bundle = inferproof(demo_env, "verify", str(out / "zk-bundle.json"), "--allow-dev-srs")
    assert bundle.returncode == 0, bundle.stdout + bundle.stderr
