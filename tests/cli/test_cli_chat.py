"""LLM chat from the command line: push a GGUF, chat, verify by re-execution."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from inferproof.cli import app
from inferproof.testing import tiny_llama_gguf

runner = CliRunner()


def test_push_chat_verify(home: Path, tmp_path: Path) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(tiny_llama_gguf())
    pushed = runner.invoke(app, ["model", "push", str(gguf), "--name", "tiny"])
    assert pushed.exit_code == 0, pushed.stderr
    shown = json.loads(runner.invoke(app, ["model", "show", "tiny", "--json"]).stdout)
    assert shown["format"] == "gguf"
    out = tmp_path / "chat.json"
    said = runner.invoke(
        app,
        ["chat", "tiny", "hello there", "--max-tokens", "12", "--temperature", "0", "-o", str(out)],
    )
    assert said.exit_code == 0, said.stderr
    ok = runner.invoke(app, ["verify", str(out), "--model", str(gguf), "--json"])
    assert ok.exit_code == 0, ok.stdout
    checks = {c["name"]: c for c in json.loads(ok.stdout)["checks"]}
    assert checks["output.fingerprint"]["detail"].startswith("bit-identical: prefill of")
    assert checks["log.inclusion"]["status"] == "passed"
    doc = json.loads(out.read_text())
    text = json.dumps(doc)
    assert "hello there" in text  # the public request rides in the bundle
    # an edited answer in the bundle no longer matches the signed digest
    assert set(doc["outputs"]) == {"finish_reason", "text", "usage"}
    doc["outputs"]["text"] += "!"
    tampered = tmp_path / "t.json"
    tampered.write_text(json.dumps(doc))
    bad = runner.invoke(app, ["verify", str(tampered), "--model", str(gguf), "--json"])
    assert bad.exit_code == 1
    failed = [c["name"] for c in json.loads(bad.stdout)["checks"] if c["status"] == "failed"]
    assert "output.digest" in failed
