"""What recording the fingerprint costs the node while it generates (issue 13).

On SmolLM2-135M-Instruct Q4_1, greedy, against llama-cpp-python's own generate
(what the node ran before fingerprints):

1. Wall time of whole generations at the node's default threads, the variants
   interleaved round by round and compared within each round (the median of the
   per-round ratios), since this machine's speed drifts from minute to minute.
2. The recording alone: ``Recorder.add`` over real logits rows, timed on its own
   (the least of many repeats), as a share of one decode step.
3. With ``--callgrind PYTHON``: instructions counted by valgrind's callgrind, which
   do not depend on what else the machine runs. One thread; per token as the
   difference between two lengths, so loading and the prompt cancel out. PYTHON
   must run a llama.cpp build valgrind can execute (no AVX-512: valgrind 3.19 has
   no AVX-512 decoder), such as the AVX2 venv of bench_fingerprint.py's
   ``--other-python``.

Run: .venv/bin/python bench/bench_fingerprint_overhead.py [--tokens 256] [--rounds 9]
         [--callgrind /path/to/avx2-venv/bin/python]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

import numpy as np

# bench/ is on sys.path when this file runs as a script.
from _fingerprint_cases import decode_n, plain_n, request_for  # type: ignore[import-not-found]
from inferproof.runtime import LlamaModel, LlamaSettings, gguf_file_digest
from inferproof.runtime._llm_decode import decode
from inferproof.runtime._llm_fingerprint import Recorder
from inferproof.testing import smollm2_gguf

QUESTION = "Write a long story about the sea."
VARIANTS = {
    "plain": "llama-cpp-python generate, no fingerprint",
    "record": "node decoding, fingerprint recorded",
    "bare": "node decoding, nothing recorded",
    "paired": "paired decoding, fingerprint recorded",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _prompt(llm: LlamaModel) -> tuple[int, ...]:
    digest = gguf_file_digest(smollm2_gguf())
    _, prompt = llm.prepare(request_for(digest, QUESTION))
    return tuple(prompt.tokens)


def run(llm: LlamaModel, prompt: tuple[int, ...], variant: str, n: int) -> list[int]:
    if variant == "plain":
        return plain_n(llm, prompt, n)
    return decode_n(llm, prompt, n, paired=variant == "paired", record=variant != "bare")


def wall(tokens: int, rounds: int) -> dict[str, Any]:
    llm = LlamaModel(smollm2_gguf())
    prompt = _prompt(llm)
    names = list(VARIANTS)
    seconds: dict[str, list[float]] = {v: [] for v in names}
    run(llm, prompt, "plain", 16)  # warm the caches before the first timed round
    for r in range(rounds):
        for v in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            got = run(llm, prompt, v, tokens)
            seconds[v].append(time.perf_counter() - start)
            assert len(got) == tokens
        log(f"  round {r + 1}/{rounds}")
    out: dict[str, Any] = {"tokens": tokens, "rounds": rounds, "rows": []}
    plain = np.array(seconds["plain"])
    for v in names:
        ratio = np.array(seconds[v]) / plain
        out["rows"].append(
            (v, float(np.median(seconds[v])), *map(float, np.percentile(ratio, [50, 0, 100])))
        )
    out["record_us"], out["step_us"] = (
        _recording(llm, prompt),
        float(np.median(plain)) / tokens * 1e6,
    )
    llm.close()
    return out


def _recording(llm: LlamaModel, prompt: tuple[int, ...], n: int = 64) -> float:
    """Microseconds per token of ``Recorder.add`` (and the final encoding) on real rows."""
    raw = llm._llm
    sampler = raw._init_sampler(top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0, temp=0.0)
    rows: list[tuple[int, np.ndarray[Any, Any]]] = []
    gen = decode(raw, prompt, sampler)
    for token, row in gen:
        rows.append((token, row.copy()))
        if len(rows) >= n:
            break
    gen.close()

    def once() -> None:
        rec = Recorder()
        for token, row in rows:
            rec.add(token, row)
        rec.result()

    return min(timeit.repeat(once, number=5, repeat=9)) / 5 / n * 1e6


# -- instruction counts -------------------------------------------------------------


def worker(variant: str, n: int) -> None:
    """One counted run (under valgrind): load, prefill the prompt, ``n`` tokens."""
    llm = LlamaModel(smollm2_gguf(), LlamaSettings(n_threads=1, n_threads_batch=1))
    got = run(llm, _prompt(llm), variant, n)
    assert len(got) == n
    llm.close()


def _count(python: str, variant: str, n: int, work: Path) -> int:
    out = work / f"cg.{variant}.{n}"
    cmd = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python, __file__,
        "--worker", variant, str(n),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({variant}, {n}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def counted(python: str, short: int, long: int) -> dict[str, float]:
    per_token: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fp-cg-") as tmp:
        for v in ("plain", "record", "bare"):
            a, b = _count(python, v, short, Path(tmp)), _count(python, v, long, Path(tmp))
            per_token[v] = (b - a) / (long - short)
            log(f"  counted {v}: {per_token[v]:,.0f} instructions per token")
    return per_token


def tables(w: dict[str, Any] | None, c: dict[str, float] | None, short: int, long: int) -> str:
    return "\n\n".join(
        ([] if w is None else [_wall_table(w)])
        + ([] if c is None else [_count_table(c, short, long)])
    )


def _wall_table(w: dict[str, Any]) -> str:
    lines = [
        f"Generation of {w['tokens']} greedy tokens at the node's default threads, "
        f"{w['rounds']} interleaved rounds; ratio = this variant's time over plain "
        "generate's in the same round.",
        "",
        "| variant | median s | ratio median | ratio min / max |",
        "|---|---:|---:|---|",
    ]
    for v, sec, med, lo, hi in w["rows"]:
        lines.append(f"| {VARIANTS[v]} | {sec:.2f} | {med:.3f} | {lo:.3f} / {hi:.3f} |")
    share = w["record_us"] / w["step_us"]
    lines += [
        "",
        f"Recording alone: {w['record_us']:.1f} us per token against a decode step of "
        f"{w['step_us']:.0f} us ({100 * share:.2f}%).",
    ]
    return "\n".join(lines)


def _count_table(c: dict[str, float], short: int, long: int) -> str:
    p = c["plain"]
    lines = [
        f"Instructions per token (callgrind, 1 thread, tokens {short + 1} to {long}):",
        "",
        "| variant | instructions per token | over plain generate |",
        "|---|---:|---:|",
    ]
    for v in ("plain", "record", "bare"):
        lines.append(f"| {VARIANTS[v]} | {c[v]:,.0f} | {100 * (c[v] / p - 1):+.2f}% |")
    rec = c["record"] - c["bare"]
    lines += [
        "",
        f"The recording's own instructions: {rec:,.0f} per token, {100 * rec / p:.2f}% of "
        "a step; on T threads the step's work is shared and the recording's is not, "
        f"so its share of the wall time is at most about T times that "
        f"({200 * rec / p:.2f}% on 2).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=9, help="0: no wall-time part")
    parser.add_argument("--callgrind", default=None, metavar="PYTHON")
    parser.add_argument("--counted-tokens", type=int, nargs=2, default=(16, 80))
    parser.add_argument("--worker", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker[0], int(args.worker[1]))
        return
    w = None
    if args.rounds > 0:
        log("timing generations")
        w = wall(args.tokens, args.rounds)
    short, long = args.counted_tokens
    c = None
    if args.callgrind:
        log("counting instructions")
        c = counted(args.callgrind, short, long)
    print(tables(w, c, short, long))


if __name__ == "__main__":
    main()
