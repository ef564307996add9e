"""Receipt overhead and bundle verification throughput (issue 2).

Compares, in one run, bare onnxruntime ``session.run`` against ``LocalNode.infer``
with a full signed receipt on the same pinned session, and measures how many
bundles verify per second (signature and policy, no re-execution) on one core.

Run: .venv/bin/python bench/bench_core.py [--rounds N]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from inferproof import LocalNode
from inferproof.receipts import Bundle
from inferproof.testing import mlp_model

MODELS = {
    "mlp-4k (32-64-32-2)": (32, 64, 32, 2),
    "mlp-1M (512-1024-512-64)": (512, 1024, 512, 64),
}


def _median_ms(fn, rounds: int) -> float:  # type: ignore[no-untyped-def]
    for _ in range(min(50, rounds)):
        fn()
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        node = LocalNode(Path(tmp) / "a", log=False)
        logged = LocalNode(Path(tmp) / "b")
        for label, sizes in MODELS.items():
            params = sum(a * b + b for a, b in itertools.pairwise(sizes))
            rec = node.push(mlp_model(sizes), name=f"m{sizes[0]}")
            x = {"x": np.random.default_rng(0).standard_normal((1, sizes[0])).astype(np.float32)}
            node.infer(rec.digest, x)  # warm the session cache
            model = node._onnx.session(rec.digest)
            rounds = args.rounds if params < 100_000 else max(200, args.rounds // 10)
            bare = _median_ms(lambda m=model, x=x: m.run(x), rounds)
            full = _median_ms(lambda d=rec.digest, x=x: node.infer(d, x), rounds)
            logged.push(mlp_model(sizes), name=f"m{sizes[0]}")
            with_log = _median_ms(
                lambda d=rec.digest, x=x: logged.infer(d, x), max(100, rounds // 10)
            )
            bundle = Bundle.loads(node.infer(rec.digest, x).bundle.dumps())
            verifier = node.verifier()  # no log entry (log=False): signature and policy
            n = 3000
            t0 = time.perf_counter()
            for _ in range(n):
                verifier.check(bundle)
            per_s = n / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _ in range(n // 3):
                verifier.check(Bundle.loads(bundle.dumps()))
            per_s_parse = (n // 3) / (time.perf_counter() - t0)
            rows.append(
                (label, params, bare, full, full - bare, full / bare, with_log, per_s, per_s_parse)
            )
    logged.close()
    print(
        "| model | params | bare session.run (ms) | infer + receipt (ms) | added (ms) | ratio "
        "| + durable log append, 1 client (ms) | verify/s (parsed bundle) | verify/s incl. JSON parse |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, params, bare, full, added, ratio, wl, vps, vpp in rows:
        print(
            f"| {label} | {params:,} | {bare:.3f} | {full:.3f} | {added:.3f} | {ratio:.2f} "
            f"| {wl:.3f} | {vps:,.0f} | {vpp:,.0f} |"
        )


if __name__ == "__main__":
    main()
