"""``inferproof demo --agent``: a scripted agent on the MCP tools of a real ``inferproof
mcp`` subprocess; its run record verifies and a tampered copy fails, from the CLI too."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .._cli import inferproof as _inferproof


def test_demo_agent_end_to_end_in_a_real_process(tmp_path: Path) -> None:
    env = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "home"), COLUMNS="200")
    demo = tmp_path / "demo"
    proc = _inferproof(env, "demo", "--agent", "--dir", str(demo))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "MCP tools: infer, chat, verify_bundle" in out
    assert "credit-risk:1: X: float32[?, 4] -> " in out
    assert "default probability 0." in out and "SmolLM2: " in out
    assert "2 call(s): VERIFIED" in out
    assert "run.calls: FAILED call 0: the record carries receipt" in out
    assert "NO: no bundle" in out and "2 call(s): NOT VERIFIED" in out
    record = json.loads((demo / "run.json").read_text())
    assert len(record["calls"]) == 2
    ok = _inferproof(env, "run", "verify", str(demo / "run.json"))
    bad = _inferproof(env, "run", "verify", str(demo / "run-tampered.json"))
    assert ok.returncode == 0 and "2 call(s): VERIFIED" in ok.stdout, ok.stdout + ok.stderr
    assert bad.returncode == 1 and "error: run record NOT verified: run.calls" in bad.stderr
    as_json = _inferproof(env, "run", "verify", "--json", str(demo / "run.json"))
    report = json.loads(as_json.stdout)
    assert report["verified"] and [c["tool"] for c in report["calls"]] == ["infer", "chat"]


def test_run_verify_refuses_a_file_that_is_no_record(tmp_path: Path) -> None:
    env = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "home"))
    junk = tmp_path / "junk.json"
    junk.write_text('{"mediaType": "nope"}')
    proc = _inferproof(env, "run", "verify", str(junk))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: not a run record")
    missing = _inferproof(env, "run", "verify", str(tmp_path / "absent.json"))
    assert missing.returncode == 2 and "cannot read run record" in missing.stderr


def test_mcp_over_http_refuses_a_public_host_without_public(tmp_path: Path) -> None:
    env = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "home"))
    proc = _inferproof(env, "mcp", "--http", "--host", "0.0.0.0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "is not loopback and the MCP endpoint has no authentication" in proc.stderr
