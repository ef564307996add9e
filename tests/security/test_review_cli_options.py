"""Issue 11, low: an option that cannot apply is an error, not a no-op.

``--input`` was silently ignored for chat receipts, and ``--allow-dev-srs`` with
``--node``: a user believed something was checked (or allowed) that was not.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from inferproof import LocalNode
from inferproof.cli import app
from inferproof.cli._node import node_client
from inferproof.testing import mlp_model, tiny_llama_gguf

from ..node.conftest import Running


def test_input_on_a_chat_receipt_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERPROOF_HOME", str(tmp_path / "home"))
    with LocalNode(tmp_path / "home") as node:
        node.push(tiny_llama_gguf(), name="tiny")
        result = node.chat("tiny", {"messages": [{"role": "user", "content": "Hi"}],
                                    "max_tokens": 4, "temperature": 0})  # fmt: skip
    bundle, inp = tmp_path / "b.json", tmp_path / "x.json"
    result.bundle.write(bundle)
    inp.write_text(json.dumps({"x": [[1.0]]}))
    got = CliRunner().invoke(app, ["verify", str(bundle), "--input", str(inp)])
    assert got.exit_code == 2
    assert got.stderr.startswith("error: --input applies to tensor receipts")
    assert CliRunner().invoke(app, ["verify", str(bundle)]).exit_code == 0


def test_allow_dev_srs_applies_through_a_node(running: Running, tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"version": 1, "require": {"log": True}}))
    for path in (None, policy):
        with node_client(running.url, None, path, allow_dev_srs=True) as client:
            assert client.policy.allow_dev_srs
        with node_client(running.url, None, path) as client:
            assert not client.policy.allow_dev_srs


def test_srs_with_node_is_an_error(running: Running, tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    with LocalNode(tmp_path / "h") as node:
        node.push(mlp_model((8, 2)), name="m")
        node.infer("m", {"x": np.ones((1, 8), np.float32)}).bundle.write(bundle)
    srs = tmp_path / "k.srs"
    srs.write_bytes(b"x")
    got = CliRunner().invoke(app, ["verify", str(bundle), "--node", running.url, "--srs", str(srs)])
    assert got.exit_code == 2 and "--srs applies to offline verification" in got.stderr
