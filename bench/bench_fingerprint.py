"""LLM answer fingerprints (issue 13): false rejections, detection, and cost.

On SmolLM2-135M-Instruct Q4_1 (the model the README installs):

1. Honest answers (greedy and seeded-sampled, up to 256 tokens) verified under
   every setting one machine allows: thread counts, batch and micro-batch sizes,
   context size, and with ``--other-python`` a second llama.cpp build with other
   CPU features (a venv whose llama-cpp-python was compiled with AVX-512 off).
   Counted: false rejections, and the distribution of differences per position.
2. Dishonest answers: another model of the same architecture (two blocks swapped),
   re-quantisations (Q8_0, Q5_1, Q4_0), a changed system prompt, one changed token,
   truncated, extended, greedy claimed for a sampled answer. Counted: detection
   rate under the same-build bounds, the general bounds (what a node that misreports
   its build gets) and on the other build.
3. Cost: fingerprint bytes per 32 tokens and share of the bundle; verification CPU
   and wall time against generation and against exact regeneration, at
   64/256/1024 tokens and for larger files. The generation-time overhead of
   recording is bench/bench_fingerprint_overhead.py's.

Run: .venv/bin/python bench/bench_fingerprint.py [--answers 60] [--dishonest 12] [--cases FILE]
         [--other-python /path/to/venv/bin/python] [--out docs/benchmarks-fingerprint.md]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

# bench/ is on sys.path when this file runs as a script.
from _fingerprint_cases import (  # type: ignore[import-not-found]
    PIRATE,
    STYLES,
    TOPICS,
    Case,
    decode_n,
    edits,
    generate,
    greedy_claimed,
    percentiles,
    questions,
    request_for,
    swap_layers,
)
from inferproof.proofs.llm_fingerprint import Tolerance, assess
from inferproof.runtime import LlamaModel, LlamaSettings, gguf_file_digest
from inferproof.runtime._llm_fingerprint import top_values
from inferproof.testing import requantise_gguf as requantise
from inferproof.testing import smollm2_gguf

SETTINGS = {
    "threads 1/2, batch 512": LlamaSettings(n_threads=1, n_threads_batch=2),
    "threads 2/1, batch 64, ubatch 32": LlamaSettings(
        n_threads=2, n_threads_batch=1, n_batch=64, n_ubatch=32
    ),
    "threads 1/1, batch 7": LlamaSettings(n_threads=1, n_threads_batch=1, n_batch=7, n_ubatch=7),
    "context 1024, batch 256": LlamaSettings(n_ctx=1024, n_batch=256, n_ubatch=256),
}
TOL = Tolerance()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def honest_cases(node: LlamaModel, digest: str, n: int) -> list[Case]:
    """``n`` distinct answers of 64 to 256 tokens (the issue's range): a question whose
    answer comes out shorter is passed over for the next one."""
    out: list[Case] = []
    for i, q in enumerate(questions(len(TOPICS) * len(STYLES))):
        if len(out) == n:
            break
        if i % 3 == 2:
            req = request_for(digest, q, temperature=0.8, seed=100 + i, top_p=0.95)
        else:
            req = request_for(digest, q)
        case = generate(node, req)
        kept = case.output.completion_tokens >= 64
        out += [case] if kept else []
        log(
            f"  honest {len(out)}/{n}: {case.output.completion_tokens} tokens{'' if kept else ', too short'}"
        )
    return out


def dishonest_cases(
    node: LlamaModel, digest: str, honest: list[Case], n: int, work: Path
) -> list[Case]:
    """Each claimed by a node that says it decoded in pairs on the verifier's build (the
    strictest bounds), and generated that way: so the "same build" column is a fair
    test, and the "general bounds" one is what a node claiming another build gets."""
    model = smollm2_gguf()
    variants = {
        "other model (blocks 14/15 swapped)": swap_layers(model, work / "swap.gguf"),
        "re-quantised Q8_0": requantise(model, work / "q8_0.gguf", "Q8_0"),
        "re-quantised Q5_1": requantise(model, work / "q5_1.gguf", "Q5_1"),
        "re-quantised Q4_0": requantise(model, work / "q4_0.gguf", "Q4_0"),
    }
    qs = questions(n)
    cases: list[Case] = []
    for kind, path in variants.items():
        other = LlamaModel(path, LlamaSettings(decode="paired"))
        try:
            for q in qs:
                cases.append(replace_kind(generate(other, request_for(digest, q)), kind))
        finally:
            other.close()
        log(f"  {kind}: {n} answers")
    for q in qs:
        pirate = generate(node, request_for(digest, q, system=PIRATE))
        claimed = request_for(digest, q)
        _, prompt = node.prepare(claimed, enforce_cap=False)
        out = pirate.output.__class__(
            pirate.output.text,
            pirate.output.finish_reason,
            len(prompt.tokens),
            pirate.output.completion_tokens,
        )
        cases.append(Case("changed system prompt", claimed, out, pirate.fingerprint))
    rng = random.Random(13)
    greedy = [c for c in honest if c.request.sampling.temperature == 0][:n]
    for c in greedy:
        cases.extend(edits(node, c, rng))
    sampled = [c for c in honest if c.request.sampling.temperature > 0][:n]
    cases.extend(greedy_claimed(generate(node, c.request)) for c in sampled)
    log(f"  {len(cases)} dishonest answers")
    return cases


def _regen(llm: LlamaModel, case: Case) -> tuple[Any, Any]:
    again = generate(llm, case.request)
    return again.output, again.fingerprint


def replace_kind(case: Case, kind: str) -> Case:
    return Case(kind, case.request, case.output, case.fingerprint)


def verify_all(llm: LlamaModel, cases: list[Case], setting: str, same: bool) -> list[dict]:
    """``same``: this verifier runs the node's build. The strict bounds then apply to
    every claim but the honest one-row node's (as ``same_build`` decides in the library:
    only a paired node gets them)."""
    rows = []
    for case in cases:
        strict = same and case.kind != "honest"
        found, why = assess(llm, case.request, case.output, case.fingerprint, TOL, strict)
        general = found.verdict(TOL, False) if found is not None else why
        rows.append(
            {
                "kind": case.kind,
                "setting": setting,
                "tokens": case.output.completion_tokens,
                "fail": why,
                "fail_general": general,
                "max_abs": [] if found is None else [float(x) for x in found.max_abs],
                "mean": None if found is None else float(found.mean_abs.mean()),
                "near_ties": 0 if found is None else len(found.near_ties),
                "greedy": case.request.sampling.temperature == 0,
                "seconds": 0.0 if found is None else found.seconds,
            }
        )
    return rows


def other_build(python: str, cases: list[Case], work: Path) -> list[dict]:
    src, dst = work / "cases.json", work / "results.json"
    src.write_text(json.dumps([c.to_json() for c in cases]))
    cmd = [python, __file__, "--verify-cases", str(src), "--results", str(dst)]
    subprocess.run(cmd, check=True)
    return list(json.loads(dst.read_text()))


def verify_cases_main(src: Path, dst: Path) -> None:
    """The other build's half: verify every case with the general bounds."""
    import llama_cpp

    cases = [Case.from_json(obj) for obj in json.loads(src.read_text())]
    llm = LlamaModel(smollm2_gguf())
    cpu = llama_cpp.llama_print_system_info().decode().split("|")
    label = "other build: " + " ".join(p.strip().split(" ")[0] for p in cpu if "= 1" in p)
    rows = verify_all(llm, cases, label, same=False)
    dst.write_text(json.dumps(rows))


# -- cost ---------------------------------------------------------------------------


def _row_work(i: int, row: np.ndarray[Any, Any]) -> None:
    """What the verifier does with each prefill row: its top values and argmax."""
    top_values(row)
    row.argmax()


def _timed(fn: Any) -> tuple[float, float, Any]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def cost(rounds: int, work: Path) -> dict[str, Any]:
    model = smollm2_gguf()
    digest = gguf_file_digest(model)
    files = {"Q4_1 (98 MB)": model}
    files["Q8_0 (145 MB)"] = requantise(model, work / "c-q8_0.gguf", "Q8_0")
    files["F16 (271 MB)"] = requantise(model, work / "c-f16.gguf", "F16")
    out: dict[str, Any] = {"ratio": []}
    req = request_for(digest, "Write a long story about the sea.")
    for name, path in files.items():
        llm = LlamaModel(path)
        _, prompt = llm.prepare(req, enforce_cap=False)
        for n in (64, 256, 1024) if name.startswith("Q4_1") else (256,):
            gens, pres, exacts = [], [], []
            for _ in range(rounds):
                gw, gc, tokens = _timed(partial(decode_n, llm, prompt.tokens, n))
                pw, pc, _ = _timed(partial(llm.prefill, prompt.tokens, tokens, _row_work))
                ew, ec, _ = _timed(partial(decode_n, llm, prompt.tokens, n))
                gens.append((gw, gc))
                pres.append((pw, pc))
                exacts.append((ew, ec))
            med = [np.median(np.array(x), axis=0) for x in (gens, pres, exacts)]
            out["ratio"].append((name, n, len(prompt.tokens), *[tuple(map(float, m)) for m in med]))
            log(f"  cost {name} {n} tokens")
        llm.close()
    return out


def bundle_share() -> tuple[int, int, int]:
    from inferproof import LocalNode

    with tempfile.TemporaryDirectory() as home:
        node = LocalNode(home)
        node.push(smollm2_gguf(), name="smollm2")
        body = {
            "messages": [{"role": "user", "content": "Write a long story about the sea."}],
            "temperature": 0,
            "max_tokens": 256,
        }
        result = node.chat("smollm2", body)
        node.close()
    whole = len(result.bundle.dumps())
    obj = result.bundle.to_json()
    fp = len(json.dumps(obj["proofs"]["fingerprint"], indent=2, sort_keys=True))
    return whole, fp, result.output.completion_tokens


# -- tables -------------------------------------------------------------------------


def honest_table(rows: list[dict]) -> str:
    lines = [
        "| verifier | answers | false rejections | near-ties | |Δ| per position p50 / p99 / p99.9 / max | answer mean max |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for setting in dict.fromkeys(r["setting"] for r in rows):
        sel = [r for r in rows if r["setting"] == setting]
        d = percentiles(np.concatenate([np.array(r["max_abs"]) for r in sel]))
        bad = sum(r["fail"] is not None for r in sel)
        ties = sum(r["near_ties"] for r in sel)
        means = max(r["mean"] for r in sel)
        lines.append(
            f"| {setting} | {len(sel)} | {bad} | {ties} | {d['p50']:.3f} / {d['p99']:.3f} / "
            f"{d['p99.9']:.3f} / {d['max']:.3f} | {means:.3f} |"
        )
    return "\n".join(lines)


def dishonest_table(same: list[dict], other: list[dict]) -> str:
    lines = [
        "| dishonest answer | n | detected, same build | detected, general bounds | detected, other build | answer mean |Δ| (min) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in dict.fromkeys(r["kind"] for r in same):
        a = [r for r in same if r["kind"] == kind]
        b = [r for r in other if r["kind"] == kind]
        means = [r["mean"] for r in a if r["mean"] is not None]
        rate_o = f"{sum(r['fail'] is not None for r in b)}/{len(b)}" if b else "-"
        lines.append(
            f"| {kind} | {len(a)} | {sum(r['fail'] is not None for r in a)}/{len(a)} | "
            f"{sum(r['fail_general'] is not None for r in a)}/{len(a)} | {rate_o} | "
            f"{min(means):.3f} |"
            if means
            else f"| {kind} | {len(a)} | {sum(r['fail'] is not None for r in a)}/{len(a)} | "
            f"{sum(r['fail_general'] is not None for r in a)}/{len(a)} | {rate_o} | - |"
        )
    return "\n".join(lines)


def cost_table(c: dict[str, Any], share: tuple[int, int, int]) -> str:
    whole, fp, tokens = share
    lines = [
        f"Fingerprint: 256 bytes of values per 32 tokens (4 x int16 per position) plus the "
        f"token ids; in a real {tokens}-token bundle its JSON is {fp} of {whole} bytes "
        f"({100 * fp / whole:.0f}%).",
        "",
        "| model file | answer tokens | prompt | generate wall / CPU s | prefill wall / CPU s | prefill / generate (wall, CPU) | exact regeneration / generate (wall) |",
        "|---|---:|---:|---|---|---|---:|",
    ]
    for name, n, p, gen, pre, exact in c["ratio"]:
        lines.append(
            f"| {name} | {n} | {p} | {gen[0]:.2f} / {gen[1]:.2f} | {pre[0]:.2f} / {pre[1]:.2f} | "
            f"{pre[0] / gen[0]:.2f}, {pre[1] / gen[1]:.2f} | {exact[0] / gen[0]:.2f} |"
        )
    return "\n".join(lines)


def make_cases(args: Any, work: Path) -> tuple[list[Case], list[Case], list[Case]]:
    """The honest, paired-node and dishonest answers: generated, or read back from
    ``--cases FILE`` when it exists (written there otherwise), so that a change to the
    verifier can be measured again on the same answers."""
    if args.cases is not None and args.cases.exists():
        saved = json.loads(args.cases.read_text())
        return tuple([Case.from_json(o) for o in saved[k]]  # type: ignore[return-value]
                     for k in ("honest", "paired", "dishonest"))  # fmt: skip
    model = smollm2_gguf()
    digest = gguf_file_digest(model)
    node = LlamaModel(model)
    log("generating honest answers")
    honest = honest_cases(node, digest, args.answers)
    node.close()
    paired_node = LlamaModel(model, LlamaSettings(decode="paired"))
    paired = [
        Case("honest, paired node", c.request, *_regen(paired_node, c))
        for c in honest[: args.dishonest]
    ]
    dishonest: list[Case] = []
    if not args.honest_only:
        log("generating dishonest answers")
        dishonest = dishonest_cases(paired_node, digest, honest, args.dishonest, work)
    paired_node.close()
    if args.cases is not None:
        out = {"honest": honest, "paired": paired, "dishonest": dishonest}
        args.cases.write_text(json.dumps({k: [c.to_json() for c in v] for k, v in out.items()}))
    return honest, paired, dishonest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=60)
    parser.add_argument("--dishonest", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--other-python", default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--verify-cases", type=Path, default=None)
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--cost-only", action="store_true", help="Only the cost tables.")
    parser.add_argument("--no-cost", action="store_true", help="Skip the cost tables.")
    parser.add_argument("--honest-only", action="store_true", help="No dishonest answers.")
    parser.add_argument("--cases", type=Path, default=None, help="Answers, kept or reused.")
    parser.add_argument("--settings", default=None, help="SETTINGS keys, separated by ;")
    args = parser.parse_args()
    if args.verify_cases is not None:
        verify_cases_main(args.verify_cases, args.results)
        return
    if args.cost_only:
        with tempfile.TemporaryDirectory(prefix="bench-fp-") as tmp:
            print(cost_table(cost(args.rounds, Path(tmp)), bundle_share()))
        return
    model = smollm2_gguf()
    with tempfile.TemporaryDirectory(prefix="bench-fp-") as tmp:
        work = Path(tmp)
        honest, paired, dishonest = make_cases(args, work)
        rows: list[dict] = []
        same_rows: list[dict] = []
        chosen = args.settings.split(";") if args.settings else list(SETTINGS)
        for name, settings in ((k, SETTINGS[k]) for k in chosen):
            llm = LlamaModel(model, settings)
            rows += verify_all(llm, honest, f"same build, {name}", same=True)
            rows += verify_all(llm, paired, f"same build, {name}, paired node", same=True)
            if not same_rows and dishonest:
                same_rows = verify_all(llm, dishonest, name, same=True)
            llm.close()
            log(f"  verified: {name}")
        other: list[dict] = []
        if args.other_python:
            log("verifying on the other build")
            both = other_build(args.other_python, honest + paired + dishonest, work)
            for r in both:
                if r["kind"].startswith("honest"):
                    r["setting"] += ", paired node" if "paired" in r["kind"] else ""
                    rows.append(r)
            other = [r for r in both if not r["kind"].startswith("honest")]
        c = None
        if not args.no_cost:
            log("measuring cost")
            c = cost(args.rounds, work)
    text = "\n\n".join(
        [
            f"Honest answers: {len(honest)} ({sum(h.output.completion_tokens >= 64 for h in honest)} "
            f"of 64+ tokens; {sum(h.request.sampling.temperature > 0 for h in honest)} seeded "
            "samples at temperature 0.8, top-p 0.95, the rest greedy), each verified under "
            "every setting below.",
            honest_table(rows),
        ]
        + ([dishonest_table(same_rows, other)] if dishonest else [])
        + ([] if c is None else [cost_table(c, bundle_share())])
    )
    print(text)
    if args.out is not None:
        args.out.write_text("# LLM fingerprints (bench/bench_fingerprint.py)\n\n" + text + "\n")
        raw = {"honest": rows, "dishonest_same": same_rows, "dishonest_other": other}
        args.out.with_suffix(".json").write_text(json.dumps(raw))


if __name__ == "__main__":
    main()
