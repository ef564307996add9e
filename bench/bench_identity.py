"""Cost of the node identity per receipt: 1,000 bundles from one attested node.

The node's identity is a real TDX quote (../shared/vectors) delivered through a
configfs-tsm stand-in; it does not bind this node's key, so the environment check
fails on the binding, after the full DCAP verification, which is the cost measured.
One verifier caches the verified identity; the reference builds a fresh verifier
per bundle, so it verifies the quote every time.

Run: .venv/bin/python bench/bench_identity.py [--bundles 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.attest.test_producers import FakeTsmEntry  # noqa: E402

from inferproof import LocalNode  # noqa: E402
from inferproof.attest import ConfigfsTsmProducer  # noqa: E402
from inferproof.testing import mlp_model  # noqa: E402

VECTORS = ROOT / ".." / "shared" / "vectors" / "attestation"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundles", type=int, default=1000)
    n = parser.parse_args().bundles
    with tempfile.TemporaryDirectory() as tmp:
        node = LocalNode(Path(tmp) / "home", log=False)
        entry = FakeTsmEntry(
            Path(tmp) / "tsm" / "e", (VECTORS / "tdx/tdx_quote").read_bytes(), "tdx_guest"
        )
        collateral = (VECTORS / "tdx/tdx_quote_collateral.json").read_bytes()
        node.attest(
            ConfigfsTsmProducer(Path(tmp) / "tsm", entry="e"),
            None,
            (collateral,),
            now=datetime(2025, 7, 1, tzinfo=UTC),
        )
        entry.join()
        rec = node.push(mlp_model((8, 16, 2)), name="m")
        x = {"x": np.ones((1, 8), np.float32)}
        bundles = [node.infer(rec.digest, x).bundle for _ in range(n)]
        trust = node.trust_root()
        t0 = time.perf_counter()
        cached = node.verifier(trust=trust)
        for b in bundles:
            cached.check(b)
        t_cached = time.perf_counter() - t0
        m = max(50, n // 10)
        t0 = time.perf_counter()
        for b in bundles[:m]:
            node.verifier(trust=trust).check(b)
        t_fresh = (time.perf_counter() - t0) * n / m
        node.close()
    print(
        "| bundles from one TDX-attested node | cached identity (s) | per bundle (ms) | verify quote every time (s, extrapolated) | per bundle (ms) | ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {n} | {t_cached:.2f} | {t_cached / n * 1e3:.3f} | {t_fresh:.2f} | {t_fresh / n * 1e3:.3f} | {t_fresh / t_cached:.1f}x |"
    )


if __name__ == "__main__":
    main()
