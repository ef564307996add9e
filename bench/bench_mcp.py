"""What a verified MCP tool call adds over a direct library call (issue 14).

On the credit-risk ONNX model (the demo's), in one run, calls interleaved round by
round (this machine's speed drifts, so each variant is compared with the direct call
of the same round):

1. direct: ``LocalNode.infer`` (sign, log; no verification);
2. verified library call: ``LocalBackend.infer`` (the same, then the verifier);
3. MCP tool call in process: the SDK's ``Client`` on the server object (no transport);
4. MCP tool call over stdio: a real ``inferproof mcp`` subprocess, JSON-RPC on pipes.

Run: .venv/bin/python bench/bench_mcp.py [--calls 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from mcp import Client, StdioServerParameters

from inferproof import LocalNode
from inferproof.integrations import LocalBackend, Tools
from inferproof.integrations.mcp import create_server
from inferproof.testing import credit_risk_model

X = [[52.0, 0.41, 34.0, 2.0]]
ARGS = {"model": "credit:1", "inputs": {"X": X}}


async def _timed(fn: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def run(calls: int, home: Path) -> dict[str, list[float]]:
    node = LocalNode(home)
    node.push(credit_risk_model()[0], name="credit", version="1")
    backend = LocalBackend(node)
    server = create_server(Tools(backend))
    tensors = {"X": np.array(X, np.float32)}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "inferproof", "mcp"],
        env={**os.environ, "INFERPROOF_HOME": str(home / "stdio")},
    )  # fmt: skip
    with LocalNode(home / "stdio") as other:  # the subprocess's own home and log
        other.push(credit_risk_model()[0], name="credit", version="1")
    times: dict[str, list[float]] = {k: [] for k in ("direct", "verified", "inproc", "stdio")}
    async with Client(server) as inproc, Client(params) as stdio:

        async def tool(c: Client) -> None:
            result = await c.call_tool("infer", ARGS)
            assert not result.is_error, result.content

        variants: dict[str, Callable[[], Awaitable[Any]]] = {
            "direct": lambda: anyio.to_thread.run_sync(lambda: node.infer("credit:1", tensors)),
            "verified": lambda: anyio.to_thread.run_sync(lambda: backend.infer("credit:1",
                                                                               {"X": X})),
            "inproc": lambda: tool(inproc),
            "stdio": lambda: tool(stdio),
        }  # fmt: skip
        for v in variants.values():  # warm up: sessions, caches, the first log append
            for _ in range(5):
                await v()
        names = list(variants)
        for i in range(calls):
            for name in names[i % 4 :] + names[: i % 4]:
                times[name].append(await _timed(variants[name]))
    node.close()
    return times


def table(times: dict[str, list[float]]) -> str:
    labels = {
        "direct": "LocalNode.infer (direct library call, not verified)",
        "verified": "LocalBackend.infer (direct, verified)",
        "inproc": "MCP tool call, in process (verified)",
        "stdio": "MCP tool call over stdio (verified)",
    }
    direct = np.array(times["direct"])
    lines = [
        f"{len(direct)} calls each, interleaved; ms per call; ratio = the call's time over "
        "the direct call's in the same round (median).",
        "",
        "| call | median ms | p90 ms | added over direct (median ms) | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in labels.items():
        t = np.array(times[key]) * 1e3
        added = statistics.median(t - direct * 1e3)
        ratio = statistics.median(t / (direct * 1e3))
        lines.append(
            f"| {label} | {np.median(t):.2f} | {np.percentile(t, 90):.2f} | {added:+.2f} | "
            f"{ratio:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as tmp:
        times = anyio.run(run, args.calls, Path(tmp))
    print(table(times))


if __name__ == "__main__":
    main()
