"""The chain commands end to end on a real anvil: every contract deployed, a ZK result
settled once and checked by `verify --rpc` (zk.onchain), a reorg that drops an anchor
seen and repaired, confirmations required, the wrong chain refused, the registry."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferproof import LocalNode
from inferproof.chain import (
    AnchorSchedule,
    ChainConfig,
    CheckpointAnchor,
    anchor_log,
    connect,
    last_sent,
    wait_confirmations,
)
from inferproof.errors import Error
from inferproof.runtime import NamedInputs
from tests._cli import inferproof

from ..security.test_review_hardware_identity import StandInTdx
from ..zk.conftest import DECOMP, make_model


def _runner(home: Path) -> Any:
    env = dict(os.environ, INFERPROOF_HOME=str(home), COLUMNS="200")

    def run(*args: str, code: int = 0) -> Any:
        done = inferproof(env, *args)
        assert done.returncode == code, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        return done

    return run


def _checks(stdout: str) -> dict[str, Any]:
    return {c["name"]: c for c in json.loads(stdout)["checks"]}


def test_zk_verifier_settle_and_verify_onchain(chain: Any, home: Path, tmp_path: Path) -> None:
    run = _runner(home)
    model = make_model(seed=7)
    with LocalNode(home) as node:
        node.push(model.data, name="tiny", version="1")
        node.zk_setup("tiny:1", [NamedInputs(s) for s in model.samples], dev_srs=True,
                      decomp=DECOMP)  # fmt: skip
    x = {"x": np.random.default_rng(1).uniform(-1, 1, (1, 8)).astype(np.float32).tolist()}
    (tmp_path / "x.json").write_text(json.dumps(x))
    bundle = tmp_path / "zk.json"
    run("infer", "tiny:1", "--input", str(tmp_path / "x.json"), "--mode", "zk", "-o", str(bundle))
    deployed = run("chain", "deploy", "--rpc", chain.url).stdout
    assert "settlement contract 0x" in deployed and "node registry 0x" in deployed
    # Before the circuit's verifier is on chain, zk.onchain fails and says why.
    run("anchor")
    early = run("verify", str(bundle), "--rpc", chain.url, "--allow-dev-srs", "--json", code=1)
    assert "no verifier is registered" in _checks(early.stdout)["zk.onchain"]["detail"]
    sol = tmp_path / "Verifier.sol"
    made = run("zk", "evm-verifier", "tiny:1", "--sol", str(sol)).stdout
    assert "registered for setup sha256:" in made and "contract Halo2Verifier" in sol.read_text()
    assert "already registered" in run("zk", "evm-verifier", "tiny:1").stdout
    assert "settled " in run("settle", str(bundle)).stdout
    assert "nothing sent" in run("settle", str(bundle)).stdout  # never twice
    report = run("verify", str(bundle), "--rpc", chain.url, "--allow-dev-srs", "--json")
    checks = _checks(report.stdout)
    assert checks["zk.onchain"]["status"] == "passed"
    assert "settled in block" in checks["zk.onchain"]["detail"]
    assert checks["log.anchored"]["status"] == "passed"
    # A tampered bundle: the output changed, the receipt no longer matches; settle is
    # refused by the chain's verifier before anything is recorded.
    raw = json.loads(bundle.read_text())
    proof = raw["proofs"]["zk"]["proof"]
    proof["instances"][-1] = proof["instances"][-2]
    (tmp_path / "bad.json").write_text(json.dumps(raw))
    bad = run("settle", str(tmp_path / "bad.json"), code=2)
    assert "InvalidProof" in bad.stderr


def test_a_reorg_that_drops_an_anchor_is_seen_and_repaired(
    chain: Any, home: Path, credit_files: Any, tmp_path: Path
) -> None:
    run = _runner(home)
    model, inp = credit_files
    run("model", "push", str(model), "--name", "risk")
    run("infer", "risk", "--input", str(inp), "-o", str(tmp_path / "b.json"))
    run("chain", "deploy", "--rpc", chain.url)
    assert "anchored size 1" in run("anchor").stdout
    assert "1 confirmation(s)" in run("chain", "status").stdout
    # The block holding the anchor is replaced by an empty one: the anchor is gone.
    chain.web3.provider.make_request("anvil_reorg", [1, []])
    dropped = run("chain", "status", code=1)
    assert "dropped by a reorg" in dropped.stdout
    again = run("anchor")
    assert "dropped by a reorg" in again.stderr and "anchored size 1 (from 0)" in again.stdout
    assert "dropped" not in run("chain", "status").stdout


def test_confirmations_are_required_and_waited_for(
    chain: Any, home: Path, credit_model: Any
) -> None:
    owner = chain.accounts[0]
    with LocalNode(home) as node:
        node.push(credit_model[0], name="risk")
        bundle = node.infer("risk", {"X": credit_model[1]["X"]}).bundle
        contract = CheckpointAnchor.deploy(chain.web3, owner)
        contract.set_operator(node.log.origin, owner, sender=owner)
        result = anchor_log(node.log, contract, owner, node.home.root)
        assert result.sent is not None and last_sent(node.home.root, node.log.origin) == result.sent
        from inferproof.chain import anchored_check

        few = anchored_check(bundle, contract, node.consistency_proof, confirmations=3)
        assert few.status.value == "failed" and "fewer than the 3 confirmations" in few.detail
        miner = threading.Timer(1.0, chain.web3.provider.make_request, ("anvil_mine", [2]))
        miner.start()
        seen: list[int] = []
        status = wait_confirmations(chain.web3, result.sent, 3, 30, seen.append)
        miner.join()
        assert status.confirmations >= 3 and seen[0] == 1
        enough = anchored_check(bundle, contract, node.consistency_proof, confirmations=3)
        assert enough.status.value == "passed"
        with pytest.raises(Error, match=r"not reached in 0\.5 s"):
            wait_confirmations(chain.web3, result.sent, 99, 0.5)


def test_the_wrong_chain_is_refused(chain: Any, home: Path, credit_files: Any) -> None:
    run = _runner(home)
    model, _ = credit_files
    run("model", "push", str(model), "--name", "risk")
    run("chain", "deploy", "--rpc", chain.url)
    cfg = ChainConfig.read(home)
    ChainConfig(cfg.rpc, 1, cfg.anchor, cfg.operator, cfg.settlement, cfg.registry).write(home)
    refused = run("anchor", code=2)
    assert "is chain 31337; the contracts were deployed on chain 1" in refused.stderr
    with pytest.raises(Error, match="is chain 31337"):
        connect(chain.url, 5)


def test_anchoring_on_a_schedule_of_receipts(chain: Any, home: Path, credit_model: Any) -> None:
    owner = chain.accounts[0]
    with LocalNode(home) as node:
        node.push(credit_model[0], name="risk")
        contract = CheckpointAnchor.deploy(chain.web3, owner)
        contract.set_operator(node.log.origin, owner, sender=owner)
        results: list[Any] = []
        schedule = AnchorSchedule(lambda: anchor_log(node.log, contract, owner, node.home.root),
                                  lambda: node.log.size, every=None, receipts=2,
                                  report=results.append)  # fmt: skip
        schedule.start()
        try:
            assert results and results[0].new == 0  # the empty log: nothing sent
            for _ in range(3):
                node.infer("risk", {"X": credit_model[1]["X"]})
            deadline = time.monotonic() + 20
            while contract.latest(node.log.origin).size < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            schedule.stop()
    sent = [r for r in results if not isinstance(r, Error) and r.receipt is not None]
    assert sent and sent[0].new >= 2  # anchored once two receipts were logged
    assert all(r.new > r.old for r in sent)  # never the same checkpoint twice


def test_register_and_discover_a_node(chain: Any, home: Path) -> None:
    run = _runner(home)
    with LocalNode(home) as node:
        node.attest(StandInTdx(), now=datetime.now(UTC))
    run("chain", "deploy", "--rpc", chain.url)
    made = run("chain", "register", "--endpoint", "https://node.example:8443")
    assert "registered node sha256:" in made.stdout and "(tdx)" in made.stdout
    found = json.loads(run("chain", "nodes", "--json").stdout)
    (entry,) = found["nodes"]
    assert entry["status"] == "verified" and entry["endpoint"] == "https://node.example:8443"
    software = _runner(home.parent / "software")
    software("chain", "deploy", "--rpc", chain.url)
    refused = software("chain", "register", "--endpoint", "https://x.example", code=2)
    assert "no identity document" in refused.stderr


def test_anchor_every_keeps_anchoring_until_interrupted(
    chain: Any, home: Path, credit_files: Any, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    run = _runner(home)
    model, inp = credit_files
    run("model", "push", str(model), "--name", "risk")
    run("chain", "deploy", "--rpc", chain.url)
    env = dict(os.environ, INFERPROOF_HOME=str(home), COLUMNS="200")
    loop = subprocess.Popen([sys.executable, "-m", "inferproof", "anchor", "--every", "1s",
                             "--receipts", "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        cfg = ChainConfig.read(home)
        contract = CheckpointAnchor(chain.web3, cfg.anchor)
        with LocalNode(home) as node:
            origin = node.log.origin
        for n in (1, 2):
            run("infer", "risk", "--input", str(inp), "-o", str(tmp_path / f"b{n}.json"))
            deadline = time.monotonic() + 30
            while contract.latest(origin).size < n and time.monotonic() < deadline:
                time.sleep(0.2)
            assert contract.latest(origin).size == n
    finally:
        loop.send_signal(signal.SIGINT)
        out, err = loop.communicate(timeout=30)
    assert loop.returncode == 0, err
    assert "anchored size 1 (from 0)" in out and "anchored size 2 (from 1)" in out
    assert "Traceback" not in err


def test_a_serving_node_anchors_on_its_schedule(
    chain: Any, tmp_path: Path, credit_model: Any
) -> None:
    """`serve --anchor-receipts 2`: the node's own scheduler anchors while it serves."""
    from inferproof.node import NodeConfig

    from ..node.conftest import start

    home = tmp_path / "served"
    owner = chain.accounts[0]
    with LocalNode(home) as node:
        node.push(credit_model[0], name="risk")
        origin = node.log.origin
        contract = CheckpointAnchor.deploy(chain.web3, owner)
        contract.set_operator(origin, owner, sender=owner)
        ChainConfig(chain.url, int(chain.web3.eth.chain_id), contract.address, owner).write(home)
    running = start(home, NodeConfig(anchor_receipts=2))
    try:
        with running.http() as http:
            for _ in range(2):
                got = http.post("/v1/infer", json={"model": "risk",
                                                   "inputs": {"X": credit_model[1]["X"]}})  # fmt: skip
                assert got.status_code == 200, got.text
        deadline = time.monotonic() + 30
        while contract.latest(origin).size < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert contract.latest(origin).size == 2
        assert last_sent(home, origin) is not None
    finally:
        running.stop()


def test_serve_with_anchoring_needs_a_deployed_chain(home: Path) -> None:
    refused = _runner(home)("serve", "--anchor-every", "60s", "--port", "0", code=2)
    assert "deploy first (inferproof chain deploy --rpc URL)" in refused.stderr
    bad = _runner(home)("anchor", "--every", "0.1s", code=2)
    assert "no " in bad.stderr and "chain.json" in bad.stderr


def test_an_rpc_without_unlocked_accounts_needs_a_key(home: Path, credit_files: Any) -> None:
    """A public RPC unlocks no account: deploy says to give --key, in one line."""
    from inferproof.chain import Anvil

    run = _runner(home)
    run("model", "push", str(credit_files[0]), "--name", "risk")
    with Anvil(accounts=0) as bare:
        refused = run("chain", "deploy", "--rpc", bare.url, code=2)
    assert "the RPC unlocks no account: give --key FILE" in refused.stderr
