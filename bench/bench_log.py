"""Benchmark of the transparency log against pymerkle 7.0.0 (reference), printed as markdown.

    .venv/bin/python bench/bench_log.py [--entries 1000000] [--out FILE]

Measures durable batched appends per second into SQLite (ours: WAL, synchronous=FULL,
one signed checkpoint per batch; pymerkle SqliteTree with the same pragmas, one
append_entries transaction per batch), then inclusion and consistency proof generation
and verification at ``--entries`` leaves, and proof sizes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pymerkle import SqliteTree
from pymerkle import verify_consistency as pm_verify_consistency
from pymerkle import verify_inclusion as pm_verify_inclusion

from inferproof.log import Log, SignerKey, hash_leaf, verify_consistency, verify_inclusion

BATCH = 1024


def _per_op(fn: Callable[[int], object], args: list[int]) -> float:
    """Median seconds per call of fn over args."""
    times = []
    for a in args:
        t = time.perf_counter()
        fn(a)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _entries(n: int, start: int = 0) -> list[bytes]:
    return [f"bench entry {i:012d} ".encode() * 4 for i in range(start, start + n)]


def bench_appends(tmp: Path, count: int) -> dict[str, float]:
    data = _entries(count)
    with Log.open(tmp / "ours.sqlite", SignerKey.generate("bench.example/log")) as log:
        t = time.perf_counter()
        for i in range(0, count, BATCH):
            log.append_many(data[i : i + BATCH])
        ours = count / (time.perf_counter() - t)
    with Log.open(tmp / "ours2.sqlite", SignerKey.generate("bench.example/log")) as log:
        sub = data[: count // 2]
        t = time.perf_counter()
        pending = [log.submit(d) for d in sub]
        for p in pending:
            p.result()
        pipelined = len(sub) / (time.perf_counter() - t)
    tree = SqliteTree(str(tmp / "pymerkle.sqlite"))
    tree.con.execute("PRAGMA journal_mode=WAL")
    tree.con.execute("PRAGMA synchronous=FULL")
    t = time.perf_counter()
    for i in range(0, count, BATCH):
        tree.append_entries(data[i : i + BATCH])
    ref = count / (time.perf_counter() - t)
    tree.close()
    return {"ours": ours, "pipelined": pipelined, "pymerkle": ref}


def bench_proofs(tmp: Path, size: int, samples: int) -> dict[str, float]:
    rng = random.Random(7)
    log = Log.open(tmp / "big.sqlite", SignerKey.generate("bench.example/big"))
    for i in range(0, size, 8192):
        log.append_many(_entries(min(8192, size - i), i))
    tree = SqliteTree(str(tmp / "pmbig.sqlite"))
    for i in range(0, size, 100_000):
        tree.append_entries(_entries(min(100_000, size - i), i))
    idx = [rng.randrange(size) for _ in range(samples)]
    olds = [rng.randrange(1, size) for _ in range(samples)]
    root = log.root()
    leaf = {i: hash_leaf(log.entry(i)) for i in idx}
    r: dict[str, float] = {}
    r["inc_gen"] = _per_op(lambda i: log.inclusion_proof(i, size), idx)
    proofs = {i: log.inclusion_proof(i, size) for i in idx}
    r["inc_ver"] = _per_op(lambda i: verify_inclusion(leaf[i], i, size, proofs[i], root), idx)
    r["con_gen"] = _per_op(lambda m: log.consistency_proof(m, size), olds)
    cons = {m: (log.consistency_proof(m, size), log.root(m)) for m in olds}
    r["con_ver"] = _per_op(
        lambda m: verify_consistency(m, size, cons[m][1], root, cons[m][0]), olds
    )
    few_idx, few_old = idx[:20], olds[:20]  # pymerkle is far slower: fewer samples
    r["pm_inc_gen"] = _per_op(lambda i: tree.prove_inclusion(i + 1, size), few_idx)
    pm_root = tree.get_root(size)
    pm_p = {i: tree.prove_inclusion(i + 1, size) for i in few_idx}
    pm_leaf = {i: tree.get_leaf(i + 1) for i in few_idx}
    r["pm_inc_ver"] = _per_op(lambda i: pm_verify_inclusion(pm_leaf[i], pm_root, pm_p[i]), few_idx)
    r["pm_con_gen"] = _per_op(lambda m: tree.prove_consistency(m, size), few_old)
    pm_c = {m: (tree.prove_consistency(m, size), tree.get_root(m)) for m in few_old}
    r["pm_con_ver"] = _per_op(
        lambda m: pm_verify_consistency(pm_c[m][1], pm_root, pm_c[m][0]), few_old
    )
    r["inc_hashes"] = statistics.mean(len(p) for p in proofs.values())
    r["con_hashes"] = statistics.mean(len(p) for p, _ in cons.values())
    r["proof_text"] = statistics.mean(len(log.tlog_proof(i).encode()) for i in idx[:100])
    log.close()
    tree.close()
    return r


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def table(appends: dict[str, float], proofs: dict[str, float], size: int, count: int) -> str:
    rows = [
        "| measure | inferproof.log | pymerkle 7.0.0 | ratio (ours / ref) |",
        "|---|---|---|---|",
        f"| durable appends/s, batches of {BATCH}, {count:,} entries "
        f"| {appends['ours']:,.0f} | {appends['pymerkle']:,.0f} "
        f"| {appends['ours'] / appends['pymerkle']:.2f}x throughput |",
        f"| acknowledged appends/s via submit() incl. inclusion proof "
        f"| {appends['pipelined']:,.0f} | n/a | |",
    ]
    for key, label in (
        ("inc_gen", "inclusion proof generation"),
        ("inc_ver", "inclusion proof verification"),
        ("con_gen", "consistency proof generation"),
        ("con_ver", "consistency proof verification"),
    ):
        ours, ref = proofs[key], proofs["pm_" + key]
        rows.append(
            f"| {label} at {size:,} entries (median) | {_us(ours)} | {_us(ref)} "
            f"| {ref / ours:.1f}x faster |"
        )
    rows.append(
        f"| proof size at {size:,} entries | inclusion {proofs['inc_hashes']:.1f} hashes "
        f"({proofs['inc_hashes'] * 32:.0f} B), consistency {proofs['con_hashes']:.1f} hashes, "
        f"tlog-proof text {proofs['proof_text']:.0f} B | | |"
    )
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=200_000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        appends = bench_appends(Path(tmp), args.appends)
        proofs = bench_proofs(Path(tmp), args.entries, args.samples)
    text = table(appends, proofs, args.entries, args.appends)
    print(text)
    if args.out:
        args.out.write_text(
            "# Transparency log benchmark\n\n"
            "`.venv/bin/python bench/bench_log.py --out FILE` "
            "(2 cores; SQLite WAL, synchronous=FULL for both).\n\n" + text
        )


if __name__ == "__main__":
    main()
