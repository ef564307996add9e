"""Gas and time of verifying a ZK proof on chain, against EZKL's own ``verify_evm``
(issue 16).

For each circuit: a real EZKL setup (dev SRS), EZKL's Solidity verifier built by
inferproof (EZKL writes it, solc-js 0.8.20 compiles it) and deployed on a real anvil,
then for ten proofs: the gas of ``verifyProof`` and of a settlement (verification plus
the record), the time of one on-chain verification through inferproof (an
``eth_call`` of the deployed verifier from web3.py, what ``zk.onchain`` makes) and
through EZKL's ``verify_evm`` on the same verifier and proof, in the same run; the
ratio is inferproof's time over EZKL's. EZKL's offline ``verify`` is shown beside.

Run: .venv/bin/python bench/bench_chain_zk.py [--proofs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ezkl

import _models
from inferproof._canonical import sha256_digest
from inferproof.chain import (
    Anvil,
    InferenceSettlement,
    ZkClaim,
    build_verifier,
    deploy_verifier,
)
from inferproof.hub._blobs import LocalBlobStore
from inferproof.proofs import zk
from inferproof.proofs.zk import BN254_R, felt_to_int

# (name, sizes, lookup decomposition): the tests' small circuit (2^11 rows with the
# small decomposition), and two of bench_zk's reference MLPs at EZKL's default one.
CIRCUITS = [("mlp-8x8x2", (8, 8, 2), (1024, 2)), ("mlp-700", (16, 32, 4), None),
            ("mlp-10k", (64, 128, 12), None)]  # fmt: skip


def _ezkl_verify_evm(address: str, rpc: str, proof_file: Path) -> float:
    async def run() -> Any:
        result = ezkl.verify_evm(address, rpc, str(proof_file), None)
        return await result if hasattr(result, "__await__") else result

    t0 = time.perf_counter()
    assert asyncio.run(run()) is True
    return time.perf_counter() - t0


def _circuit(name: str, sizes: tuple[int, ...], decomp: Any, proofs: int, root: Path,
             chain: Any) -> dict[str, Any]:  # fmt: skip
    data, samples = _models.mlp(sizes, seed=3)
    store = LocalBlobStore(root / name / "blobs")
    index = zk.JsonSetupIndex(root / name / "zk")
    options = {"decomp": decomp} if decomp else {}
    t0 = time.perf_counter()
    setup = zk.setup(data, sha256_digest(data), samples, store, index, dev_srs=True, **options)
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    built = build_verifier(setup, store)
    build_s = time.perf_counter() - t0
    owner = chain.accounts[0]
    w3 = chain.web3
    address = deploy_verifier(w3, owner, built)
    deploy_gas = w3.eth.get_transaction_receipt(w3.eth.get_block("latest")["transactions"][0])[
        "gasUsed"]  # fmt: skip
    settlement = InferenceSettlement.deploy(w3, owner)
    settlement.register(setup, address, sender=owner)
    verifier = w3.eth.contract(address=address, abi=list(built.abi))
    ours, theirs, offline, gas, settle_gas = [], [], [], [], []
    for i in range(proofs):
        x = {k: v * (1 + 0.01 * i) for k, v in samples[0].items()}
        proof = zk.prove(setup, x, store)
        column = [felt_to_int(f) % BN254_R for f in proof.instances]
        fn = verifier.functions.verifyProof(proof.proof, column)
        t0 = time.perf_counter()
        assert fn.call() is True
        ours.append(time.perf_counter() - t0)
        gas.append(fn.estimate_gas())
        proof_file = root / name / f"proof-{i}.json"
        proof_file.write_text(json.dumps({"protocol": None, "instances": [list(proof.instances)],
                                          "proof": list(proof.proof)}))  # fmt: skip
        theirs.append(_ezkl_verify_evm(address, chain.url, proof_file))
        t0 = time.perf_counter()
        zk.verify(setup, proof, store, model_digest=setup.model_digest,
                  output_values=proof.outputs, allow_dev_srs=True)  # fmt: skip
        offline.append(time.perf_counter() - t0)
        claim = ZkClaim(setup.digest(), proof.proof, tuple(column), "sha256:" + "0" * 64)
        settle_gas.append(settlement.settle(claim, sender=owner)["gasUsed"])
    return {"name": name, "logrows": setup.logrows, "setup_s": setup_s, "build_s": build_s,
            "code": len(built.runtime) // 2 - 1, "deploy_gas": deploy_gas,
            "gas": statistics.median(gas), "settle_gas": statistics.median(settle_gas),
            "ours_ms": statistics.median(ours) * 1e3, "ezkl_ms": statistics.median(theirs) * 1e3,
            "offline_ms": statistics.median(offline) * 1e3}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proofs", type=int, default=10)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Anvil() as chain:
        for name, sizes, decomp in CIRCUITS:
            rows.append(_circuit(name, sizes, decomp, args.proofs, Path(tmp), chain))
    print("| circuit | logrows | setup s | verifier build s | code B | deploy gas | verifyProof "
          "gas | settle gas | on-chain verify ms (inferproof) | EZKL verify_evm ms | ratio | "
          "EZKL offline verify ms |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['logrows']} | {r['setup_s']:.1f} | {r['build_s']:.1f} | "
              f"{r['code']} | {r['deploy_gas']} | {r['gas']:.0f} | {r['settle_gas']:.0f} | "
              f"{r['ours_ms']:.1f} | {r['ezkl_ms']:.1f} | {r['ours_ms'] / r['ezkl_ms']:.2f} | "
              f"{r['offline_ms']:.1f} |")  # fmt: skip
    sys.stdout.flush()
    # EZKL's binding crashes the interpreter at shutdown after its async calls
    # (PyGILState_Release); the table is printed, so leave without the shutdown.
    os._exit(0)


if __name__ == "__main__":
    main()
