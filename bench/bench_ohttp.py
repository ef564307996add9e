"""What Oblivious HTTP costs: an inference over plain HTTP against the same inference
sealed to the node's gateway key and sent through a relay, in one run.

One node and one relay (``inferproof relay``, its own process) on loopback, real HTTP
servers, the credit-risk model.
Three tables, each with plain HTTP as the reference in the same run:

- latency: one client thread, ``--requests`` inferences each way (plain, chunked OHTTP
  as the client sends by default, and the one-shot RFC 9458 form), alternated in rounds
  so all see the same machine;
- throughput under load: ``--threads`` client threads at once, each its own client;
- streamed chat (the tiny GGUF): time to the first delta and to the verified end.

Every receipt is verified in every row (signature, log inclusion and consistency,
input, model), as a user's client does.

Run: .venv/bin/python bench/bench_ohttp.py [--requests 200] [--threads 8]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.node._chat import tiny_gguf  # noqa: E402
from tests.node.conftest import Running, pushed, start  # noqa: E402

from inferproof.client import Client  # noqa: E402
from inferproof.testing import credit_risk_model  # noqa: E402

ROW = {"X": [[52.0, 0.41, 34.0, 2.0]]}


def _relay(gateway: str) -> tuple[str, subprocess.Popen[bytes]]:
    """``inferproof relay`` in its own process, as it is deployed (it shares no GIL
    with the node or the clients)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferproof", "relay", "--gateway", gateway, "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + "/healthz").status_code == 200:
                return url + "/", proc
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the relay did not start")


def _timed(client: Client, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        client.infer("credit:1", ROW)
        out.append(time.perf_counter() - started)
    return out


Make = Callable[[str], Client]


def _clients(node: Running, relay_url: str, tmp: Path) -> dict[str, Make]:
    def plain(name: str) -> Client:
        return Client(node.url, node.token, home=tmp / name)

    def chunked(name: str) -> Client:
        return Client(node.url, node.token, home=tmp / name, confidential=True, relay=relay_url)

    def one_shot(name: str) -> Client:
        client = chunked(name)
        client._http._transport.chunked = False  # type: ignore[attr-defined]
        return client

    return {"plain": plain, "chunked": chunked, "one-shot": one_shot}


LABELS = {
    "plain": "plain HTTP to the node (reference)",
    "chunked": "chunked OHTTP via the relay (the client's default)",
    "one-shot": "one-shot OHTTP (RFC 9458) via the relay",
}


def _latency(make: dict[str, Make], requests: int, rounds: int) -> None:
    clients = {name: m(f"lat-{name}") for name, m in make.items()}
    for client in clients.values():  # warm every path
        _timed(client, 10)
    rows: dict[str, list[float]] = {name: [] for name in clients}
    per = max(1, requests // rounds)
    for _ in range(rounds):
        for name, client in clients.items():
            rows[name] += _timed(client, per)
    for client in clients.values():
        client.close()
    base = statistics.median(rows["plain"])
    print(f"{len(rows['plain'])} verified inferences each way, one client thread, loopback")
    print("| path | requests/s | p50 (ms) | p99 (ms) | p50 vs plain |")
    print("|---|---:|---:|---:|---:|")
    for name, t in rows.items():
        t = sorted(t)
        p99 = t[min(len(t) - 1, int(0.99 * len(t)))]
        med = statistics.median(t)
        print(f"| {LABELS[name]} | {len(t) / sum(t):.0f} | {med * 1000:.2f} | "
              f"{p99 * 1000:.2f} | {med / base:.2f}x |")  # fmt: skip


def _load(make: dict[str, Make], threads: int, requests: int) -> None:
    per = max(1, requests // threads)
    rates: dict[str, float] = {}
    for name in ("plain", "chunked", "plain", "chunked"):  # twice each, interleaved
        clients = [make[name](f"load-{name}-{i}") for i in range(threads)]
        for client in clients:
            _timed(client, 2)
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda c: _timed(c, per), clients))
        took = time.perf_counter() - started
        rates[name] = max(rates.get(name, 0.0), threads * per / took)
        for client in clients:
            client.close()
    print(f"\n{threads} client threads at once, {threads * per} verified inferences per run, "
          "best of two runs")  # fmt: skip
    print("| path | requests/s | vs plain |")
    print("|---|---:|---:|")
    for name in ("plain", "chunked"):
        print(f"| {LABELS[name]} | {rates[name]:.0f} | {rates[name] / rates['plain']:.2f} |")


def _streamed(make: dict[str, Make], n: int) -> None:
    rows: dict[str, tuple[list[float], list[float]]] = {}
    for name in ("plain", "chunked"):
        client, first, whole = make[name](f"chat-{name}"), [], []
        for i in range(n + 2):
            started = time.perf_counter()
            with client.chat_stream("tiny", "Hi", temperature=0, max_tokens=32) as stream:
                seen = None
                for _ in stream:
                    seen = seen or time.perf_counter()
            end = time.perf_counter()
            if i >= 2:  # the first two load the model and warm the path
                first.append((seen or end) - started)
                whole.append(end - started)
        client.close()
        rows[name] = (first, whole)
    print(f"\nstreamed chat, tiny GGUF, 32 tokens, {n} answers each way, verified at the end")
    print("| path | first delta p50 (ms) | verified end p50 (ms) | end vs plain |")
    print("|---|---:|---:|---:|")
    base = statistics.median(rows["plain"][1])
    for name, (first, whole) in rows.items():
        med = statistics.median(whole)
        print(f"| {LABELS[name]} | {statistics.median(first) * 1000:.1f} | {med * 1000:.1f} | "
              f"{med / base:.2f}x |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--chats", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = start(Path(tmp) / "node")
        relay_url, relay = _relay(node.url + "/.well-known/ohttp-gateway")
        try:
            pushed(node, credit_risk_model()[0], name="credit", version="1")
            node.node.push(tiny_gguf(), name="tiny")
            make = _clients(node, relay_url, Path(tmp))
            _latency(make, args.requests, args.rounds)
            _load(make, args.threads, args.requests * 2)
            _streamed(make, args.chats)
        finally:
            relay.terminate()
            relay.wait(30)
            node.stop()


if __name__ == "__main__":
    main()
