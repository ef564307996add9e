"""Inference node throughput and latency over HTTP against the in-process library (issue 6).

Every figure counts receipts that were issued, logged (durable group commit) and, where
the row says so, verified by the client (signature, log inclusion, consistency with the
client's checkpoint memory, input, nonce, requested model). Server and clients share this
machine: the node is one process (`python -m inferproof.node`), clients are separate
processes with threads (Python verifies under the GIL, so processes add cores).

Run: .venv/bin/python bench/bench_node.py [--seconds 6] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from inferproof import LocalNode
from inferproof.cli._node import start_node, stop_node
from inferproof.client import Client
from inferproof.node import TokenStore
from inferproof.testing import mlp_model
from inferproof.verify import Verifier

SIZES = (32, 64, 32, 2)  # the "mlp-4k" of bench_core: 4,258 parameters
MODEL = "mlp:1"


def _x(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"x": rng.standard_normal((1, SIZES[0])).astype(np.float32)}


def _pct(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) * 1e3 if samples else float("nan")


def in_process(seconds: float, threads: int, verify: bool) -> dict[str, float]:
    """LocalNode.infer (+ Verifier.check) from ``threads`` threads of this process."""
    with tempfile.TemporaryDirectory() as tmp:
        node = LocalNode(Path(tmp))
        node.push(mlp_model(SIZES), name="mlp", version="1")
        trust = node.trust_root()
        lat: list[float] = []
        count = [0]
        stop = time.monotonic() + seconds
        lock = threading.Lock()

        def loop(seed: int) -> None:
            rng = np.random.default_rng(seed)
            # One checkpoint memory per thread: the library's file-based memory writes
            # its file with a per-process temporary name (see the notes).
            verifier = Verifier(trust, checkpoint_memory=Path(tmp) / f"mem{seed}",
                                consistency=node.consistency_proof)  # fmt: skip
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                result = node.infer(MODEL, _x(rng))
                if verify:
                    verifier.verify(result.bundle)
                with lock:
                    lat.append(time.perf_counter() - t0)
                    count[0] += 1

        node.infer(MODEL, _x(np.random.default_rng(0)))
        t0 = time.perf_counter()
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(loop, range(threads)))
        elapsed = time.perf_counter() - t0
        node.close()
    return {"rate": count[0] / elapsed, "p50": _pct(lat, 50), "p99": _pct(lat, 99)}


def worker(
    url: str, token: str, home: str, seconds: float, threads: int, batch: int, verify: bool
) -> None:
    """A client process: ``threads`` threads, each with its own Client, until time is up."""
    lat: list[float] = []
    count = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop(i: int) -> None:
        rng = np.random.default_rng(i)
        with Client(url, token=token, home=Path(home) / str(i), verify=verify) as client:
            client.infer(MODEL, _x(rng))  # pin, warm the connection
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                if batch > 1:
                    n = len(client.infer_batch(MODEL, [_x(rng) for _ in range(batch)]))
                else:
                    client.infer(MODEL, _x(rng))
                    n = 1
                with lock:
                    lat.append(time.perf_counter() - t0)
                    count[0] += n

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(loop, range(threads)))
    print(json.dumps({"count": count[0], "elapsed": time.perf_counter() - t0, "lat": lat}))


def over_http(
    url: str, token: str, seconds: float, procs: int, threads: int, batch: int, verify: bool
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            url,
            token,
            tmp,
            str(seconds),
            str(threads),
            str(batch),
            str(int(verify)),
        ]
        children = [
            subprocess.Popen([*cmd[:5], f"{tmp}/{p}", *cmd[6:]], stdout=subprocess.PIPE, text=True)
            for p in range(procs)
        ]
        outs = [json.loads(c.communicate()[0]) for c in children]
    lat = [x for o in outs for x in o["lat"]]
    # Requests run concurrently in every process: the rate is the sum of per-process rates.
    rate = sum(o["count"] / o["elapsed"] for o in outs)
    return {"rate": rate, "p50": _pct(lat, 50), "p99": _pct(lat, 99)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, token, home, seconds, threads, batch, verify = sys.argv[2:9]
        worker(url, token, home, float(seconds), int(threads), int(batch), verify == "1")
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    s = args.seconds
    rows: list[tuple[str, dict[str, float]]] = []
    base = in_process(s, 32, verify=False)
    rows.append(("in-process LocalNode.infer, 32 threads (reference)", base))
    rows.append(("in-process infer + Verifier.verify, 32 threads", in_process(s, 32, verify=True)))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "node"
        token = TokenStore(home).create("bench")
        proc, url = start_node(home)
        try:
            with Client(url, token=token, home=Path(tmp) / "pusher") as client:
                client.push(mlp_model(SIZES), name="mlp", version="1")
            for label, procs, threads, batch, verify in (
                ("HTTP, 1 request per inference, unverified (verify=False)", 2, 16, 1, False),
                ("HTTP, 1 request per inference, verified", 2, 16, 1, True),
                ("HTTP batch of 64, each item its own receipt, unverified", 2, 2, 64, False),
                ("HTTP batch of 64, each item its own receipt, verified", 2, 2, 64, True),
                ("HTTP batch of 64, verified, 1 client process", 1, 2, 64, True),
            ):
                rows.append((label, over_http(url, token, s, procs, threads, batch, verify)))
        finally:
            stop_node(proc)
    lines = [
        f"`.venv/bin/python bench/bench_node.py --seconds {s:g}` on {os.cpu_count()} cores; model mlp-4k "
        f"({SIZES}); every receipt durably logged. HTTP rows: node in one process, clients in 2 "
        "processes (16 threads each for single requests, 2 each for batches) on the same machine; "
        "latency is per HTTP request (a batch request carries 64 inferences).",
        "",
        "| setup | receipts/s | ratio to in-process | p50 latency (ms) | p99 latency (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, r in rows:
        lines.append(
            f"| {label} | {r['rate']:,.0f} | {r['rate'] / base['rate']:.2f} | {r['p50']:.2f} | {r['p99']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text("# Inference node benchmark (issue 6)\n\n" + text)


if __name__ == "__main__":
    main()
