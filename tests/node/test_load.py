"""Many clients at once (threads and processes) against one node on loopback, and a
kill -9 under load: every answer verifies, every acknowledged receipt is in the log."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import rfc8785

from inferproof.cli._node import start_node, stop_node
from inferproof.client import Client
from inferproof.errors import Error, InputError
from inferproof.log import TileClient, TlogProof, VerifierKey, open_checkpoint, verify_consistency
from inferproof.node import TokenStore

WORKER = Path(__file__).with_name("_load_worker.py")
SECONDS = 4.0


def _thread_worker(
    url: str, token: str, home: Path, stop: threading.Event, out: list[dict[str, Any]]
) -> None:
    rng = np.random.default_rng(len(str(home)))
    with Client(url, token=token, home=home, retries=2) as client:
        while not stop.is_set():
            try:
                a = client.infer("mlp:1", {"x": rng.standard_normal((1, 8)).astype(np.float32)})
            except InputError as exc:
                out.append({"refused": str(exc)})
                continue
            except Error as exc:  # the node went away (kill -9): stop
                out.append({"gone": str(exc)})
                return
            out.append({"ok": a.receipt_digest, "index": a.log_index, "id": a.bundle_id,
                        "envelope": a.bundle.envelope, "checkpoint": TlogProof.parse(a.bundle.tlog_entry).checkpoint.decode()})  # fmt: skip


def _check_log(url: str, acknowledged: list[dict[str, Any]]) -> Any:
    with httpx.Client(base_url=url) as http:
        ident = http.get("/v1/identity").json()
        key = VerifierKey.parse(ident["log"]["verifier_key"])
        tiles = TileClient(lambda p: http.get(f"/v1/log/{p}").content, key)
        tiles.verify_root()
        entries = list(tiles.all_entries())
        for answer in acknowledged:
            assert entries[answer["index"]] == rfc8785.dumps(answer["envelope"])
            assert (
                http.get(f"/v1/bundles/{answer['id']}").json()["dsseEnvelope"] == answer["envelope"]
            )
        final = tiles.checkpoint
        for note in {a["checkpoint"] for a in acknowledged if "checkpoint" in a}:
            cp = open_checkpoint(note.encode(), key)
            proof = http.get(
                "/v1/log/consistency", params={"old": cp.size, "new": final.size}
            ).json()
            hashes = [base64.b64decode(h) for h in proof["hashes"]]
            verify_consistency(cp.size, final.size, cp.root_hash, final.root_hash, hashes)
        return final


def _setup(tmp_path: Path, small_model: bytes) -> tuple[Any, str, str, Path]:
    home = tmp_path / "node"
    token = TokenStore(home).create("load")
    proc, url = start_node(home)
    with Client(url, token=token, home=tmp_path / "pusher") as client:
        client.push(small_model, name="mlp", version="1")
    return proc, url, token, home


def test_threads_and_processes_against_one_node(tmp_path: Path, small_model: bytes) -> None:
    proc, url, token, _ = _setup(tmp_path, small_model)
    try:
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER),
                    url,
                    token,
                    str(tmp_path / f"p{i}"),
                    str(SECONDS),
                    "400",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        stop, outcomes = threading.Event(), [[] for _ in range(4)]
        threads = [
            threading.Thread(
                target=_thread_worker, args=(url, token, tmp_path / f"t{i}", stop, outcomes[i])
            )
            for i in range(4)
        ]
        for t in threads:
            t.start()
        results = []
        for w in workers:
            out, _ = w.communicate(timeout=120)
            assert w.returncode == 0
            results.extend(json.loads(line) for line in out.splitlines())
        stop.set()
        for t in threads:
            t.join(60)
        for o in outcomes:
            results.extend(o)
        answered = [r for r in results if "ok" in r]
        pushed = [r for r in results if "pushed" in r]
        refused = [r for r in results if "refused" in r]
        assert not [r for r in results if "gone" in r]
        assert all("429" in r["refused"] for r in refused)
        assert len(answered) >= 50 and pushed
        assert len({r["index"] for r in answered}) == len(answered)
        _check_log(url, answered)
    finally:
        stop_node(proc)


def test_kill_9_loses_no_acknowledged_receipt(tmp_path: Path, small_model: bytes) -> None:
    proc, url, token, home = _setup(tmp_path, small_model)
    stop, outcomes = threading.Event(), [[] for _ in range(3)]
    threads = [
        threading.Thread(
            target=_thread_worker, args=(url, token, tmp_path / f"k{i}", stop, outcomes[i])
        )
        for i in range(3)
    ]
    for t in threads:
        t.start()
    time.sleep(2.0)
    proc.kill()  # SIGKILL: no shutdown handler runs
    proc.wait()
    for t in threads:
        t.join(60)
    acknowledged = [r for o in outcomes for r in o if "ok" in r]
    assert len(acknowledged) >= 20
    assert all("gone" in o[-1] for o in outcomes)  # every client saw the node die
    proc, url = start_node(home)
    try:
        final = _check_log(url, acknowledged)
        assert final.size >= max(r["index"] for r in acknowledged) + 1
        # The restarted node serves on: a client verifies a new answer against the same pins.
        with Client(url, token=token, home=tmp_path / "k0") as client:
            assert client.infer("mlp:1", {"x": np.zeros((1, 8), np.float32)}).report.verified
    finally:
        stop_node(proc)
