"""Benchmark the ZK engine on the reference models, against the naive EZKL pipeline.

For each model and parameter visibility (fixed, hashed), in a child process so peak
memory is per configuration: setup time (settings, calibration, compile, keys; the
dev SRS for a logrows is generated once and cached, as in use), warm proving time
through inferproof next to EZKL's own ``prove`` time for the same circuit,
verification time (EZKL's verify plus our binding checks), proof size, peak RSS,
and the naive pipeline run from scratch for one inference (gen_settings, calibrate,
compile, setup, gen_witness, prove) as a ratio to warm proving. Then batching: one
circuit proving 16 inputs of the small MLP against 16 single proofs.

Run: ``.venv/bin/python bench/bench_zk.py [--quick] [--out FILE]``
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _models
from inferproof._canonical import sha256_digest
from inferproof.hub._blobs import LocalBlobStore
from inferproof.proofs import zk

QUICK = ["mlp-700", "mlp-10k"]
FULL = ["mlp-700", "mlp-10k", "mlp-40k", "cnn-28x28", "sklearn-mlp"]
BATCH = 16
# Hashed weights cost a Poseidon hash of every weight inside the circuit (~42 rows a
# weight measured here): mlp-10k hashed needs 2^19 rows and a 5 GiB proving key and
# did not finish proving in 13 minutes on 2 cores, so by default hashed weights are
# measured on the models that stay small; --hashed-all tries every model.
HASHED_MODELS = {"mlp-700", "sklearn-mlp"}


def _naive(model_bytes: bytes, sample: dict[str, np.ndarray], srs: Path, param: str) -> float:
    """EZKL from scratch for one inference, as a user without a setup cache would."""
    import ezkl

    from inferproof.proofs.zk import _ezkl
    from inferproof.proofs.zk._model import write_data

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        w = Path(tmp)
        (w / "m.onnx").write_bytes(model_bytes)
        write_data(w / "d.json", [[np.asarray(v, np.float64) for v in sample.values()]])
        args: Any = ezkl.PyRunArgs()
        args.param_visibility = param
        args.variables = [("batch_size", next(iter(sample.values())).shape[0])]
        p = {k: str(w / k) for k in ("m.onnx", "d.json", "s.json", "c", "vk", "pk", "wit", "pf")}
        _ezkl.call("gen_settings", ezkl.gen_settings, p["m.onnx"], p["s.json"], args)
        _ezkl.call("calibrate_settings", ezkl.calibrate_settings, p["d.json"], p["m.onnx"],
                   p["s.json"], "resources", 2.0, None, [1], None)  # fmt: skip
        _ezkl.call("compile", ezkl.compile_circuit, p["m.onnx"], p["c"], p["s.json"])
        _ezkl.call("setup", ezkl.setup, p["c"], p["vk"], p["pk"], str(srs), None, False)
        _ezkl.call("gen_witness", ezkl.gen_witness, p["d.json"], p["c"], p["wit"], None, None)
        _ezkl.call("prove", ezkl.prove, p["wit"], p["c"], p["pk"], p["pf"], str(srs))
    return time.perf_counter() - start


def measure(name: str, param: str, runs: int, batch: int) -> dict[str, Any]:
    """One configuration, in this (child) process."""
    builder = _models.REFERENCE[name]
    model_bytes, samples = _models.mlp((16, 32, 4), batch=batch) if batch > 1 else builder()
    digest = sha256_digest(model_bytes)
    root = Path(tempfile.mkdtemp(prefix="bench-zk-"))
    store, index = LocalBlobStore(root / "blobs"), zk.JsonSetupIndex(root / "zk")
    # Warm the dev SRS cache first (a one-off per logrows, not per model).
    steps: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    setup = zk.setup(model_bytes, digest, samples, store, index, dev_srs=True,
                     param_visibility=param,  # type: ignore[arg-type]
                     progress=lambda s: steps.append((s, time.perf_counter())))  # fmt: skip
    setup_s = time.perf_counter() - t0
    srs_s = dict(steps).get("keys", 0.0) - dict(steps).get("srs", 0.0)
    zk.prove(setup, samples[0], store)  # first use hashes the key files once
    walls, ezkl_times = [], []
    for i in range(runs):
        t = time.perf_counter()
        proof = zk.prove(setup, samples[i % len(samples)], store)
        walls.append(time.perf_counter() - t)
        ezkl_times.append(proof.timing["prove"])
    t = time.perf_counter()
    checks = zk.verify(setup, proof, store, model_digest=digest, output_values=proof.outputs,
                       input_tensors=samples[(runs - 1) % len(samples)], allow_dev_srs=True)  # fmt: skip
    verify_s = time.perf_counter() - t
    assert all(c.passed for c in checks), checks
    pk_mib = (store.path(setup.pk_digest) or root).stat().st_size / 2**20
    srs_path = store.path(setup.srs_digest)
    assert srs_path is not None
    naive_s = _naive(model_bytes, samples[0], srs_path, param) if batch == 1 else float("nan")
    warm = statistics.mean(walls)
    shutil.rmtree(root, ignore_errors=True)
    return {
        "model": name, "params": _models.parameter_count(model_bytes), "visibility": param,
        "batch": batch, "logrows": setup.logrows, "setup_s": setup_s - srs_s,
        "warm_prove_s": warm, "ezkl_prove_s": statistics.mean(ezkl_times),
        "verify_s": verify_s, "proof_bytes": len(proof.proof),
        "pk_mib": pk_mib,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "naive_s": naive_s,
    }  # fmt: skip


def _child(name: str, param: str, runs: int, batch: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", name, "--param", param, "--runs", str(runs),
           "--batch", str(batch)]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _table(rows: list[dict[str, Any]]) -> list[str]:
    head = ("| model | params | weights | logrows | setup s | warm prove s | EZKL prove s | "
            "overhead | verify s | proof B | pk MiB | peak MiB | naive s | naive / warm |")  # fmt: skip
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params']} | {r['visibility']} | {r['logrows']} | "
            f"{r['setup_s']:.1f} | {r['warm_prove_s']:.2f} | {r['ezkl_prove_s']:.2f} | "
            f"{r['warm_prove_s'] / r['ezkl_prove_s'] - 1:+.1%} | {r['verify_s']:.3f} | "
            f"{r['proof_bytes']} | {r['pk_mib']:.0f} | {r['peak_mib']:.0f} | "
            f"{r['naive_s']:.1f} | {r['naive_s'] / r['warm_prove_s']:.1f}x |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="two small models only")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument("--hashed-all", action="store_true", help="hashed weights on every model")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--param", default="fixed", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.param, args.runs, args.batch)))
        return
    runs = 1 if args.quick else 2
    rows = []
    for name in QUICK if args.quick else FULL:
        for param in ("fixed", "hashed"):
            if param == "hashed" and name not in HASHED_MODELS and not args.hashed_all:
                continue
            rows.append(_child(name, param, runs, 1))
            print(_table(rows[-1:])[-1], flush=True)
    single = next(r for r in rows if r["model"] == "mlp-700" and r["visibility"] == "fixed")
    batch = _child("mlp-700", "fixed", runs, BATCH)
    per_min_single = 60 / single["warm_prove_s"]
    per_min_batch = 60 * BATCH / batch["warm_prove_s"]
    lines = [
        "# ZK proving benchmark (EZKL " + zk.EZKL_VERSION + ")", "",
        "Command: `.venv/bin/python bench/bench_zk.py" + (" --quick" if args.quick else "") + "`"
        f" on {len({r['model'] for r in rows})} reference models; 2 cores, dev SRS (cached per logrows; its "
        "generation is left out of setup). overhead = inferproof warm prove (witness, "
        "artifact checks, files) over EZKL's own prove for the same circuit; naive = "
        "settings, calibration, compile, key setup, witness and prove from scratch for "
        "each inference. Hashed weights on " + ", ".join(sorted(HASHED_MODELS))
        + " only unless --hashed-all (mlp-10k hashed needs 2^19 rows, a 5 GiB proving key, "
        "and did not finish proving in 13 minutes).", "", *_table(rows), "",
        f"Batching (mlp-700, fixed weights): one proof of {BATCH} inputs at logrows "
        f"{batch['logrows']} takes {batch['warm_prove_s']:.2f} s against "
        f"{single['warm_prove_s']:.2f} s for one input at logrows {single['logrows']}: "
        f"{per_min_batch:.0f} inputs proved per minute against {per_min_single:.0f} "
        f"({per_min_batch / per_min_single:.1f}x); peak {batch['peak_mib']:.0f} MiB, "
        f"proof {batch['proof_bytes']} B, verify {batch['verify_s']:.3f} s.",
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
