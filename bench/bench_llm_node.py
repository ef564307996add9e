"""Verifiable chat through the node over HTTP against llama-cpp-python called directly
(issue 7, the node's OpenAI-compatible endpoints).

One run, one model, the same llama.cpp settings on both sides. The node is its own
process (``python -m inferproof.node``) on loopback; the client is this process,
over httpx (server-sent events parsed by hand, for exact timings) and through the
official ``openai`` client. Every node answer is signed, appended to the durable
transparency log and stored in the node's bundle store before its last event is
sent. The direct side is ``Llama.create_chat_completion`` in this process, its KV
cache reset before every request (the node always starts from an empty cache).

Figures: tokens per second for a 256-token greedy answer (whole and streamed) and
time to first token; the ratio is against the direct whole answer, the fastest
direct path. The receipt's added latency is what a streaming client sees between
the last token and the event that carries the receipt, and the node's fixed cost
per request is a one-token answer over HTTP against one direct.

Run: .venv/bin/python bench/bench_llm_node.py [--rounds N] [--tokens N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

# The library benchmark's model and prompt, so the two tables compare (bench/ is on
# sys.path when this file runs as a script).
from bench_llm import CONFIG, MESSAGES, _direct_stream, _direct_whole  # type: ignore[import-not-found]
from inferproof.cli._node import start_node, stop_node
from inferproof.node import TokenStore
from inferproof.runtime._llm import LlamaSettings
from inferproof.testing import write_tiny_llama


def _body(tokens: int, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "bench",
        "messages": MESSAGES,
        "max_tokens": tokens,
        "temperature": 0,
    }
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def _node_whole(http: httpx.Client, tokens: int) -> tuple[float, str, int]:
    """(seconds, text, completion tokens) of one whole answer over HTTP."""
    t0 = time.perf_counter()
    response = http.post("/v1/chat/completions", json=_body(tokens, False))
    seconds = time.perf_counter() - t0
    response.raise_for_status()
    data = response.json()
    return seconds, data["choices"][0]["message"]["content"], data["usage"]["completion_tokens"]


def _node_stream(http: httpx.Client, tokens: int) -> tuple[float, float, float, int, str]:
    """(seconds to [DONE], to the first content, last content -> receipt event,
    receipt event bytes, text) of one streamed answer over HTTP."""
    text, first, last, receipt_at, receipt_bytes = "", None, 0.0, 0.0, 0
    t0 = time.perf_counter()
    with http.stream("POST", "/v1/chat/completions", json=_body(tokens, True)) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            now = time.perf_counter()
            payload = line.removeprefix("data: ")
            if payload == "[DONE]":
                break
            event = json.loads(payload)
            choices = event.get("choices") or [{}]
            delta = choices[0].get("delta", {}).get("content")
            if delta:
                first = first if first is not None else now - t0
                last, text = now, text + delta
            if "inferproof" in event:
                receipt_at, receipt_bytes = now, len(line)
    total = time.perf_counter() - t0
    return total, first or total, receipt_at - last, receipt_bytes, text


def _openai_stream(client: Any, tokens: int) -> tuple[float, float]:
    """(seconds to the end, to the first content) through the official client."""
    t0 = time.perf_counter()
    first = None
    body = _body(tokens, True)
    for chunk in client.chat.completions.create(**body):
        if chunk.choices and chunk.choices[0].delta.content and first is None:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    return total, first or total


def _direct_one(llm: Any) -> float:
    llm.reset()
    t0 = time.perf_counter()
    llm.create_chat_completion(MESSAGES, max_tokens=1, temperature=0, repeat_penalty=1.0)
    return time.perf_counter() - t0


def _node_one(http: httpx.Client) -> float:
    return _node_whole(http, 1)[0]


def _best(samples: list[tuple[Any, ...]], i: int) -> float:
    # The fastest run: the other processes on a shared machine only ever add time.
    return min(float(x[i]) for x in samples)


def _median(samples: list[tuple[Any, ...]], i: int) -> float:
    return statistics.median(float(x[i]) for x in samples)


def _load_direct(path: Path, settings: LlamaSettings) -> Any:
    from llama_cpp import Llama

    return Llama(
        str(path),
        n_ctx=settings.n_ctx,
        n_batch=settings.n_batch,
        n_ubatch=settings.n_ubatch,
        n_threads=settings.n_threads,
        n_threads_batch=settings.n_threads_batch,
        verbose=False,
    )


def measure(rounds: int, tokens: int, model: Path | None = None) -> dict[str, Any]:
    """Every path, interleaved, on ``model`` (a GGUF file; by default the fixture model
    is written here). bench_smollm2.py runs this on SmolLM2."""
    from openai import OpenAI

    with tempfile.TemporaryDirectory() as tmp:
        path = model or Path(tmp) / "bench.gguf"
        if model is None:
            write_tiny_llama(path, CONFIG)
        home = Path(tmp) / "node-home"
        token = TokenStore(home).create("bench")
        proc, url = start_node(home)
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with httpx.Client(base_url=url, headers=headers, timeout=300) as http:
                pushed = http.post("/v1/models", params={"name": "bench"},
                                   content=path.read_bytes(),
                                   headers={"content-type": "application/octet-stream"})  # fmt: skip
                pushed.raise_for_status()
                warm = http.post("/v1/chat/completions", json=_body(4, False)).json()
                runtime = warm["inferproof"]["bundle"]["dsseEnvelope"]
                settings = _settings_of(runtime)
                llm = _load_direct(path, settings)
                client = OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0, timeout=300)
                _direct_whole(llm, 8)
                dw, ds, nw, ns, no, d1, n1 = [], [], [], [], [], [], []
                for _ in range(rounds):  # interleaved, so drift hits every path alike
                    dw.append(_direct_whole(llm, tokens))
                    nw.append(_node_whole(http, tokens))
                    ds.append(_direct_stream(llm, tokens))
                    ns.append(_node_stream(http, tokens))
                    no.append(_openai_stream(client, tokens))
                    for _ in range(5):
                        d1.append((_direct_one(llm),))
                        n1.append((_node_one(http),))
        finally:
            stop_node(proc)
    return {"settings": settings, "dw": dw, "ds": ds, "nw": nw, "ns": ns, "no": no,
            "d1": d1, "n1": n1}  # fmt: skip


def _settings_of(envelope: dict[str, Any]) -> LlamaSettings:
    """The llama.cpp settings the node recorded in its receipt (the signed statement)."""
    import base64

    statement = json.loads(base64.b64decode(envelope["payload"]))
    return LlamaSettings.from_json(statement["predicate"]["runtime"]["settings"])


def fixture_model_line() -> str:
    return (
        f"fixture llama GGUF, {CONFIG.n_layer} layers x {CONFIG.n_embd} wide, ff {CONFIG.n_ff}, F32"
    )


def table(m: dict[str, Any], rounds: int, model_line: str | None = None) -> str:
    dw, ds, nw, ns, no = m["dw"], m["ds"], m["nw"], m["ns"], m["no"]
    n = dw[0][2]
    # llama-cpp-python decodes invalid UTF-8 with errors="ignore", the node with
    # "replace" (visible U+FFFD): the same bytes agree once those are dropped.
    same = nw[0][1].replace("\ufffd", "") == dw[0][1] and ns[0][4] == nw[0][1]
    ref = n / _best(dw, 0)

    def row(name: str, whole: float | None, stream: float, ttft: float) -> str:
        w = f"{whole:.1f} | {whole / ref:.2f}" if whole is not None else "- | -"
        return f"| {name} | {w} | {stream:.1f} | {stream / ref:.2f} | {ttft:.1f} |"

    s: LlamaSettings = m["settings"]
    lines = [
        f"Model: {model_line or fixture_model_line()}; {platform.machine()}, "
        f"n_threads={s.n_threads}, n_threads_batch="
        f"{s.n_threads_batch}, n_batch={s.n_batch}; {n}-token greedy answer, best of {rounds} "
        "interleaved runs per cell; the node is a separate process on 127.0.0.1 (uvicorn), the "
        "client this one; ratios against the direct whole answer.",
        "",
        "| path | tokens/s, whole | ratio | tokens/s, streamed | ratio | time to first token,"
        " streamed (ms) |",
        "|---|---:|---:|---:|---:|---:|",
        row("llama-cpp-python `create_chat_completion` (direct, in process)", ref,
            n / _best(ds, 0), _best(ds, 1) * 1e3),
        row("node over HTTP, httpx (receipt + durable log + bundle store)", n / _best(nw, 0),
            n / _best(ns, 0), _best(ns, 1) * 1e3),
        row("node over HTTP, official `openai` client", None, n / _best(no, 0),
            _best(no, 1) * 1e3),
        "",
        "| per request | median ms |",
        "|---|---:|",
        f"| receipt's added latency seen by a streaming client (last token -> receipt event) "
        f"| {_median(ns, 2) * 1e3:.2f} |",
        f"| one-token answer, direct | {_median(m['d1'], 0) * 1e3:.2f} |",
        f"| one-token answer, node over HTTP (request checks, template, receipt, log, store, "
        f"HTTP) | {_median(m['n1'], 0) * 1e3:.2f} |",
        "",
        f"Receipt event: {ns[0][3]} bytes (the bundle rides in the last event). Identical answers "
        f"on every path: {'yes' if same else 'NO'}. llama-cpp-python's own streamed path "
        "re-detokenises the whole answer at every token (quadratic), which is why its streamed "
        "tokens/s trail its whole-answer figure; the node streams token deltas.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    text = table(measure(args.rounds, args.tokens), args.rounds)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        title = "# LLM chat through the node over HTTP (bench/bench_llm_node.py)\n\n"
        args.out.write_text(title + text)


if __name__ == "__main__":
    main()
