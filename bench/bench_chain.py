"""Gas of anchoring a checkpoint against the length of its consistency proof (issue 16).

On a real anvil, the checkpoint anchor contract takes a first anchor (no proof), then
anchors that each extend the last one; each row is one anchor from size m to size n, its
RFC 9162 proof length, and the gas the transaction used. The reference is the
contract's fixed cost: the first anchor, which checks no proof; per-hash gas is the
slope of a least-squares fit. The same proofs are also checked with the library's
verifier (in Python) to show the contract and the library agree on each.

Run: .venv/bin/python bench/bench_chain.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from inferproof.chain import Anvil, CheckpointAnchor
from inferproof.log import MemoryTree, consistency_proof, verify_consistency

# (m, n) pairs whose proofs grow from 1 to about 20 hashes.
PAIRS = [(1, 2), (2, 4), (3, 8), (5, 13), (8, 21), (13, 100), (100, 1000), (1000, 10_000),
         (10_000, 70_000), (70_000, 100_001)]  # fmt: skip


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    tree = MemoryTree([str(i).encode() for i in range(max(n for _, n in PAIRS))])
    rows = []
    with Anvil() as chain:
        owner = chain.accounts[0]
        for m, n in PAIRS:
            anchor = CheckpointAnchor.deploy(chain.web3, owner)
            anchor.set_operator("bench/log", owner, sender=owner)
            first = anchor.anchor("bench/log", m, tree.root(m), [], sender=owner)
            proof = consistency_proof(tree, m, n)
            t0 = time.perf_counter()
            verify_consistency(m, n, tree.root(m), tree.root(n), proof)
            py_ms = (time.perf_counter() - t0) * 1e3
            tx = anchor.anchor("bench/log", n, tree.root(n), proof, sender=owner)
            rows.append((m, n, len(proof), first["gasUsed"], tx["gasUsed"], py_ms))
    lengths = np.array([r[2] for r in rows], float)
    gas = np.array([r[4] for r in rows], float)
    slope, intercept = np.polyfit(lengths, gas, 1)
    print("| from size | to size | proof hashes | first anchor gas (no proof) | anchor gas | "
          "gas / first anchor | library check ms |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for m, n, k, g0, g, ms in rows:
        print(f"| {m} | {n} | {k} | {g0} | {g} | {g / g0:.2f} | {ms:.3f} |")
    print(f"\nleast squares: anchor gas = {intercept:.0f} + {slope:.0f} per proof hash")


if __name__ == "__main__":
    main()
