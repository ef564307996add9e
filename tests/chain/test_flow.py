"""Anchoring a real node's log on anvil through the command line, and ``log.anchored``:
an anchored bundle verifies, a repeated anchor sends nothing, a forked view fails."""

from __future__ import annotations

import json
import os
from dataclasses import replace
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


# anvil's first development account: a published test key that only ever holds test ETH
# on a local chain (Foundry's documentation lists it).
ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def test_signing_with_a_local_key_and_a_clear_error_without_funds(
    chain: Any, home: Path, credit_files: Any, tmp_path: Path
) -> None:
    from eth_account import Account

    env = dict(os.environ, INFERPROOF_HOME=str(home), COLUMNS="200")
    key = tmp_path / "operator.key"
    key.write_text(ANVIL_KEY_0 + "\n")
    key.chmod(0o600)
    model, inp = credit_files
    assert inferproof(env, "model", "push", str(model), "--name", "risk").returncode == 0
    empty = inferproof(env, "chain", "deploy", "--rpc", chain.url, "--key", str(key))
    assert "the log is empty: nothing sent" in inferproof(env, "anchor").stdout, empty.stderr
    assert inferproof(env, "infer", "risk", "--input", str(inp), "-o",
                      str(tmp_path / "b.json")).returncode == 0  # fmt: skip
    deployed = inferproof(env, "chain", "deploy", "--rpc", chain.url, "--key", str(key))
    assert deployed.returncode == 0, deployed.stderr
    assert Account.from_key(ANVIL_KEY_0).address in deployed.stdout
    signed = inferproof(env, "anchor", "--key", str(key))
    assert signed.returncode == 0 and "anchored size" in signed.stdout, signed.stderr
    poor = tmp_path / "poor.key"
    poor.write_text(Account.create().key.hex())
    other = inferproof(env, "anchor", "--key", str(poor))
    assert other.returncode == 2 and "the log's operator is" in other.stderr
    broke = dict(env, INFERPROOF_HOME=str(tmp_path / "home2"))
    assert inferproof(broke, "model", "push", str(model), "--name", "risk").returncode == 0
    refused = inferproof(broke, "chain", "deploy", "--rpc", chain.url, "--key", str(poor))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "insufficient funds" in refused.stderr.lower() or "funds" in refused.stderr.lower()


def test_log_anchored_fails_without_a_log_proof_or_an_anchor(
    chain: Any, home: Path, credit_model: Any
) -> None:
    owner = chain.accounts[0]
    with LocalNode(home) as node:
        node.push(credit_model[0], name="risk")
        bundle = node.infer("risk", {"X": credit_model[1]["X"]}).bundle
        contract = CheckpointAnchor.deploy(chain.web3, owner)  # nothing anchored on it
        unanchored = anchored_check(bundle, contract, node.consistency_proof)
        unlogged = anchored_check(replace(bundle, tlog_entry=None), contract,
                                  node.consistency_proof)  # fmt: skip
    assert unanchored.status.value == "failed" and "has no anchor" in unanchored.detail
    assert unlogged.status.value == "failed" and "no log proof" in unlogged.detail
