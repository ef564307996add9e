"""Honest and dishonest LLM answers for bench_fingerprint.py.

Every dishonest case is what a node with a signing key could claim: an answer
from another model or quantisation, or under another system prompt, signed for
the request and model the receipt names; or an edited answer (one token, cut
short, extended, greedy claimed for a sampled one) with the fingerprint the
forger recomputes for it by prefilling the edited tokens, the strongest forgery.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from inferproof.runtime import ChatOutput, ChatRequest, Fingerprint, LlamaModel, parse_request
from inferproof.runtime._llm_fingerprint import Recorder

TOPICS = [
    "a robot who learns to paint", "how photosynthesis works", "the ocean", "ancient Rome",
    "baking bread", "why the sky is blue", "the rules of chess", "how a car engine works",
    "a trip to Mars", "honeybees", "how computers store numbers", "the water cycle",
    "a medieval village", "how vaccines work", "the seasons", "learning a language",
    "a dragon afraid of fire", "the French revolution", "how airplanes fly", "exercise",
    "volcanoes", "the internet", "a lighthouse keeper", "recycling", "black holes",
    "the printing press", "coral reefs", "a detective in Paris", "electric cars", "glaciers",
    "the moon landing", "owls", "a city under the sea", "how bridges stay up", "tea",
    "the Silk Road", "earthquakes", "a talking cat", "solar panels", "the human heart",
]  # fmt: skip
STYLES = [
    "Write a short story about {}.", "Explain {} in detail.", "Give me a list of facts about {}.",
    "Write a poem about {}.", "Describe {} to a ten-year-old.",
    "Tell me the history of {}.",
]  # fmt: skip
SYSTEM = "You are a helpful assistant."
PIRATE = "You are a pirate. Answer like a pirate."


def questions(n: int) -> list[str]:
    """``n`` questions, distinct up to len(TOPICS) * len(STYLES) = 240: the style moves
    on by one each time the topics wrap around, so no (style, topic) pair repeats."""
    t, s = len(TOPICS), len(STYLES)
    return [STYLES[(i + i // t) % s].format(TOPICS[i % t]) for i in range(n)]


def request_for(
    digest: str, question: str, *, system: str = SYSTEM, max_tokens: int = 256, **sampling: Any
) -> ChatRequest:
    body: dict[str, Any] = {
        "model": "smollm2",
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
        "max_tokens": max_tokens,
        "temperature": 0,
        **sampling,
    }
    return parse_request(body, "chat").request.bind(digest, max_tokens=max_tokens)


@dataclass(frozen=True)
class Case:
    """One claimed answer: the request the receipt states, the output and fingerprint
    it signs, and whether it is honest (``kind`` names the forgery otherwise)."""

    kind: str
    request: ChatRequest
    output: ChatOutput
    fingerprint: Fingerprint

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "request": self.request.to_json(),
            "output": self.output.to_json(),
            "fingerprint": self.fingerprint.to_json(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Case:
        return cls(
            obj["kind"],
            ChatRequest.from_json(obj["request"]),
            ChatOutput.from_json(obj["output"]),
            Fingerprint.from_json(obj["fingerprint"]),
        )


def generate(llm: LlamaModel, request: ChatRequest, kind: str = "honest") -> Case:
    """What the node (or a node running ``llm`` instead) signs for ``request``."""
    req, prompt = llm.prepare(request, enforce_cap=False)
    gen = llm.generate(req, prompt)
    assert gen.fingerprint is not None
    out = ChatOutput(gen.text, gen.finish_reason, gen.prompt_tokens, gen.completion_tokens)
    return Case(kind, req, out, gen.fingerprint)


def forge(llm: LlamaModel, kind: str, request: ChatRequest, tokens: list[int]) -> Case:
    """A forger's claim for ``tokens``: the answer they spell and the fingerprint one
    prefill of them gives (so the values match the claimed tokens)."""
    _, prompt = llm.prepare(request, enforce_cap=False)
    rec = Recorder()
    llm.prefill(prompt.tokens, tokens, lambda i, row: rec.add(tokens[i], row))
    fp = rec.result()
    assert fp is not None
    gen = llm.replay(request, prompt, tokens)
    out = ChatOutput(gen.text, gen.finish_reason, len(prompt.tokens), gen.completion_tokens)
    return Case(kind, request, out, fp)


def edits(llm: LlamaModel, honest: Case, rng: random.Random) -> Iterator[Case]:
    """One changed token, a truncated and an extended answer, from one honest answer."""
    tokens = list(honest.fingerprint.tokens)
    eos = int(llm._llm.token_eos())
    body = tokens[:-1] if honest.output.finish_reason == "stop" else tokens
    if len(body) < 8:
        return
    changed = list(tokens)
    k = rng.randrange(2, len(body) - 1)
    changed[k] = _other_token(llm, honest, k, rng)
    yield forge(llm, "one changed token", honest.request, changed)
    cut = rng.randrange(4, len(body) - 2)
    yield forge(llm, "truncated", honest.request, [*body[:cut], eos])
    more = list(llm.tokenize(" And that is all there is to say about it."))
    longer = replace(honest.request, max_tokens=len(body) + len(more) + 1)
    yield forge(llm, "extended", longer, [*body, *more, eos])


def _other_token(llm: LlamaModel, honest: Case, k: int, rng: random.Random) -> int:
    """A replacement that is not a near-tie: the edit is meant to change the answer,
    and a swap within the tolerance is accepted by design (docs/llm.md)."""
    vocab = llm._llm.n_vocab()
    while True:
        t = rng.randrange(vocab)
        if t != honest.fingerprint.tokens[k] and llm.token_text(t).strip():
            return t


def greedy_claimed(case: Case) -> Case:
    """A seeded sampled answer presented as greedy (temperature 0)."""
    s = replace(case.request.sampling, temperature=0.0)
    return replace(case, kind="greedy claimed, sampled", request=replace(case.request, sampling=s))


def swap_layers(src: Path, dst: Path, a: int = 14, b: int = 15) -> Path:
    """Another model of the same architecture and size: two transformer blocks
    exchanged (their tensors renamed in the GGUF header, the data untouched)."""
    import gguf

    data = bytearray(src.read_bytes())
    end = gguf.GGUFReader(str(src)).data_offset
    x, y = f"blk.{a}.".encode(), f"blk.{b}.".encode()
    assert len(x) == len(y)
    head = bytes(data[:end])
    mark = b"\x01swap\x01"[: len(x)].ljust(len(x), b"\x01")
    assert mark not in head
    swapped = head.replace(x, mark).replace(y, x).replace(mark, y)
    assert len(swapped) == len(head) and swapped != head
    data[:end] = swapped
    dst.write_bytes(bytes(data))
    return dst


def percentiles(values: np.ndarray[Any, Any]) -> dict[str, float]:
    return {
        "p50": float(np.percentile(values, 50)),
        "p90": float(np.percentile(values, 90)),
        "p99": float(np.percentile(values, 99)),
        "p99.9": float(np.percentile(values, 99.9)),
        "max": float(values.max()),
    }


def decode_n(
    llm: LlamaModel, prompt: tuple[int, ...], n: int, *, paired: bool = False, record: bool = True
) -> list[int]:
    """``n`` greedy tokens as the node decodes them, with the fingerprint recorded
    unless told otherwise, not stopping at the end token (so any length can be timed)."""
    from inferproof.runtime._llm_decode import decode

    raw = llm._llm
    sampler = raw._init_sampler(top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0, temp=0.0)
    rec, tokens = Recorder(), []
    gen = decode(raw, prompt, sampler, paired=paired)
    for token, row in gen:
        if record:
            rec.add(token, row)
        tokens.append(token)
        if len(tokens) >= n:
            break
    gen.close()
    if record:
        rec.result()
    return tokens


def plain_n(llm: LlamaModel, prompt: tuple[int, ...], n: int) -> list[int]:
    """llama-cpp-python's own generate: one-row decoding, no fingerprint (what the node
    ran before fingerprints)."""
    raw = llm._llm
    raw.reset()
    tokens = []
    gen = raw.generate(list(prompt), top_k=0, top_p=1.0, min_p=0.0, temp=0.0, reset=True)
    for token in gen:
        tokens.append(int(token))
        if len(tokens) >= n:
            break
    gen.close()
    return tokens
