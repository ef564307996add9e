"""Anchoring a real node's log on anvil through the command line, and ``log.anchored``:
an anchored bundle verifies, a repeated anchor sends nothing, a forked view fails."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from inferproof import LocalNode
from inferproof.chain import CheckpointAnchor, anchored_check
from inferproof.receipts import Bundle
from tests._cli import inferproof


def test_deploy_anchor_and_verify_with_rpc(chain: Any, home: Path, credit_files: Any,
                                            tmp_path: Path) -> None:  # fmt: skip
    env = dict(os.environ, INFERPROOF_HOME=str(home), COLUMNS="200")
    model, inp = credit_files

    def ok(*args: str) -> str:
        done = inferproof(env, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    ok("model", "push", str(model), "--name", "risk", "--version", "1")
    first, second = tmp_path / "b1.json", tmp_path / "b2.json"
    ok("infer", "risk:1", "--input", str(inp), "-o", str(first))
    assert "anchor contract 0x" in ok("chain", "deploy", "--rpc", chain.url)
    assert "anchored size" in ok("anchor")
    assert "nothing sent" in ok("anchor")  # the same checkpoint is never sent twice
    ok("infer", "risk:1", "--input", str(inp), "-o", str(second))
    assert "(from " in ok("anchor")
    for bundle in (first, second):  # older than the anchor, and the anchor itself
        report = json.loads(ok("verify", str(bundle), "--rpc", chain.url, "--json"))
        anchored = next(c for c in report["checks"] if c["name"] == "log.anchored")
        assert anchored["status"] == "passed" and "confirmation" in anchored["detail"]
    down = inferproof(env, "verify", str(first), "--rpc", "http://127.0.0.1:1")
    assert down.returncode == 2 and "does not answer" in down.stderr
    assert "Traceback" not in down.stderr


def test_a_forked_view_fails_log_anchored(chain: Any, home: Path, credit_model: Any) -> None:
    owner = chain.accounts[0]
    with LocalNode(home) as node:
        node.push(credit_model[0], name="risk")
        bundle = node.infer("risk", {"X": credit_model[1]["X"]}).bundle
        contract = CheckpointAnchor.deploy(chain.web3, owner)
        contract.set_operator(node.log.origin, owner, sender=owner)
        size = node.log.checkpoint().size
        # The chain holds another root for the same size: the log shown to this bundle's
        # holder is not the one anchored.
        contract.anchor(node.log.origin, size, b"\x07" * 32, [], sender=owner)
        check = anchored_check(Bundle.from_json(bundle.to_json()), contract,
                               node.consistency_proof)  # fmt: skip
    assert check.status.value == "failed" and "forked log" in check.detail
