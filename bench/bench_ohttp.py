"""What Oblivious HTTP costs: an inference over plain HTTP against the same inference
sealed to the node's gateway key and sent through a relay, in one run.

One node and one relay on loopback (real HTTP servers, uvicorn), the credit-risk model,
one client thread, ``--requests`` inferences each way, alternated in rounds so both see
the same machine. The client verifies every receipt in both rows (signature, log
inclusion and consistency, input, model), as a user's client does.

Run: .venv/bin/python bench/bench_ohttp.py [--requests 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.node.conftest import pushed, serve_thread, start  # noqa: E402

from inferproof.client import Client  # noqa: E402
from inferproof.node import create_relay  # noqa: E402
from inferproof.testing import credit_risk_model  # noqa: E402

ROW = {"X": [[52.0, 0.41, 34.0, 2.0]]}


def _relay(gateway: str) -> tuple[str, uvicorn.Server]:
    server = uvicorn.Server(uvicorn.Config(create_relay(gateway), log_level="warning",
                                           access_log=False))  # fmt: skip
    url, _ = serve_thread(server)
    return url + "/", server


def _timed(client: Client, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        client.infer("credit:1", ROW)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = start(Path(tmp) / "node")
        relay_url, relay = _relay(node.url + "/.well-known/ohttp-gateway")
        try:
            pushed(node, credit_risk_model()[0], name="credit", version="1")
            plain = Client(node.url, node.token, home=Path(tmp) / "plain")
            sealed = Client(node.url, node.token, home=Path(tmp) / "sealed",
                            confidential=True, relay=relay_url)  # fmt: skip
            for client in (plain, sealed):  # warm both paths
                _timed(client, 10)
            rows: dict[str, list[float]] = {"plain": [], "sealed": []}
            per = max(1, args.requests // args.rounds)
            for _ in range(args.rounds):
                rows["plain"] += _timed(plain, per)
                rows["sealed"] += _timed(sealed, per)
            plain.close()
            sealed.close()
        finally:
            relay.should_exit = True
            node.stop()
    base = statistics.median(rows["plain"])
    print(f"{len(rows['plain'])} verified inferences each way, one client thread, loopback")
    print("| path | requests/s | p50 (ms) | p99 (ms) | p50 vs plain |")
    print("|---|---:|---:|---:|---:|")
    for name, label in (("plain", "plain HTTP to the node (reference)"),
                        ("sealed", "Oblivious HTTP: client -> relay -> gateway")):  # fmt: skip
        t = sorted(rows[name])
        p99 = t[min(len(t) - 1, int(0.99 * len(t)))]
        med = statistics.median(t)
        print(f"| {label} | {len(t) / sum(t):.0f} | {med * 1000:.2f} | {p99 * 1000:.2f} | "
              f"{med / base:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
