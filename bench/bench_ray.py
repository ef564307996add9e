"""Benchmark proving on Ray against the node's own proving queue, in one run.

16 ZK proofs of the small MLP (8-8-2, the tests' circuit) submitted as node jobs:
on the node's thread pool (today's path, ``max_jobs`` 1 and 2), and on a local Ray
with 2 worker CPUs through RayProver (which also verifies each proof on the node, as
a Ray worker is not trusted). Ray's start and one warm-up proof (workers start, the
artifacts are put in Ray's object store) are timed apart. Prints a markdown table.

Run: ``RAY_USAGE_STATS_ENABLED=0 .venv/bin/python bench/bench_ray.py [--proofs 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _models
from inferproof._canonical import sha256_digest
from inferproof.engine import RayProver
from inferproof.hub import LocalBlobStore
from inferproof.node._jobs import Jobs
from inferproof.proofs import zk


def _run_jobs(jobs: Jobs, work: Callable[[Any], Any], n: int) -> float:
    async def main() -> float:
        t0 = time.perf_counter()
        submitted = [jobs.submit("zk", "bench", work) for _ in range(n)]
        for job in submitted:
            await jobs.wait(job, 3600)
        elapsed = time.perf_counter() - t0
        states = [jobs.snapshot(job) for job in submitted]
        bad = [s.error for s in states if s.status != "succeeded"]
        if bad:
            raise SystemExit(f"proofs failed: {bad[:2]}")
        return elapsed

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--proofs", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    n = args.proofs
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        root = Path(tmp)
        store = LocalBlobStore(root / "blobs")
        data, samples = _models.mlp((8, 8, 2), seed=1)
        record = zk.setup(data, sha256_digest(data), samples, store,
                          zk.JsonSetupIndex(root / "zk"), dev_srs=True,
                          decomp=(1024, 2))  # fmt: skip
        x = samples[0]
        rows: list[tuple[str, float]] = []
        for k in (1, 2):
            jobs = Jobs(k, n, 3600.0, 3600.0)
            rows.append(
                (
                    f"node queue, max_jobs={k}",
                    _run_jobs(jobs, lambda p: zk.prove(record, x, store), n),
                )
            )
            jobs.shutdown()
        t0 = time.perf_counter()
        prover = RayProver(None, num_cpus=2)
        started = time.perf_counter() - t0
        t0 = time.perf_counter()
        prover(record, x, store)
        warm = time.perf_counter() - t0
        jobs = Jobs(n, n, 3600.0, 3600.0)
        rows.append(
            (
                "Ray, 2 worker CPUs (+ local verify)",
                _run_jobs(jobs, lambda p: prover(record, x, store, p), n),
            )
        )
        jobs.shutdown()
        prover.close()
    base = rows[0][1]
    print(
        f"{n} proofs of the 8-8-2 MLP (logrows {record.logrows}, dev SRS), {os.cpu_count()} cores\n"
    )
    print("| path | wall time (s) | proofs/s | speed vs max_jobs=1 |")
    print("|---|---:|---:|---:|")
    for name, secs in rows:
        print(f"| {name} | {secs:.2f} | {n / secs:.2f} | {base / secs:.2f}x |")
    print(
        f"\nRay start {started:.2f} s; first proof on Ray (workers start, artifacts put) {warm:.2f} s"
    )


if __name__ == "__main__":
    main()
