"""Token-by-token decoding with the logits of every step, and the verifier's prefill.

llama.cpp computes a batch of one token with different kernels from a batch of
several: with quantised weights a single row goes through matrix-vector
products, several rows through tiled matrix-matrix products (llamafile's sgemm,
the repacked AVX-512 kernels). The two sum in different orders, so a verifier's
prefill of prompt + answer (many rows at once) and the node's token-by-token
decoding disagree in the logits by up to about 2 (SmolLM2-135M Q4_1, measured:
docs/llm.md), and their argmax at about 1% of positions. The fingerprint's
tolerance covers that, as it covers another machine's kernels.

A node may instead decode ``paired``: every token as a batch of two rows, the
token itself and a copy one position further on whose logits are not needed and
whose cache cell is removed at once. A row's result does not depend on the other
rows of its batch (causal attention; each row's products are independent), so
the token's logits come out of the batched kernels and are bit-identical to the
same position of a prefill on the same build, and a verifier on that build can
use bounds a few fixed-point steps wide. The price is the second row: about 50%
more decoding time at equal threads on SmolLM2 here (bench/bench_fingerprint.py),
which is why ``single`` is the default.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np

# The answer positions a prefill hands to its callback: (position in the answer,
# the logits row that predicted that answer token, as float32, valid only
# during the call).
RowCallback = Callable[[int, "np.ndarray[Any, np.dtype[np.float32]]"], None]


def _logits(llm: Any, row: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, row)
    if not ptr:
        raise RuntimeError("llama.cpp returned no logits for the row")
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),))


def _fill(llm: Any, tokens: Sequence[int], start: int, want: Callable[[int], bool]) -> int:
    """Put ``tokens`` at positions ``start``... in the batch; rows ``want`` keep logits."""
    b = llm._batch.batch
    n_out = 0
    for j, token in enumerate(tokens):
        b.token[j] = token
        b.pos[j] = start + j
        b.seq_id[j][0] = 0
        b.n_seq_id[j] = 1
        keep = want(start + j)
        b.logits[j] = keep
        n_out += keep
    b.n_tokens = len(tokens)
    return n_out


def _clear(llm: Any) -> None:
    llm.reset()
    llm._ctx.kv_cache_clear()


def decode(
    llm: Any, prompt: Sequence[int], sampler: Any, *, paired: bool = False
) -> Generator[tuple[int, np.ndarray[Any, np.dtype[np.float32]]], None, None]:
    """Yield ``(token, logits)`` for each new token, one row a step or in pairs
    (module docs).

    The prompt is evaluated in ``n_batch`` chunks from an empty cache; ``sampler``
    is llama-cpp-python's sampler chain, which accepts each token it samples (so
    its penalties see the answer so far). ``logits`` is llama.cpp's buffer for the
    row the token was sampled from, valid until the generator resumes. The caller
    stops the generator; it never decodes past the context."""
    _clear(llm)
    n_batch, last = int(llm.n_batch), len(prompt) - 1
    for i in range(0, len(prompt), n_batch):
        chunk = prompt[i : i + n_batch]
        _fill(llm, chunk, i, lambda p: p == last)
        llm._ctx.decode(llm._batch)
    pos = len(prompt)
    while True:
        # Row -1 is the batch's last row with logits: the prompt's last token, then
        # the token of each step (the first row of a pair).
        row = _logits(llm, -1)
        token = int(sampler.sample(llm._ctx, -1))
        yield token, row
        if pos + 1 >= llm.n_ctx():
            return
        _fill(llm, (token, token) if paired else (token,), pos, (pos).__eq__)
        llm._ctx.decode(llm._batch)
        if paired:
            llm._ctx.kv_cache_seq_rm(0, pos + 1, -1)
        pos += 1


def prefill(llm: Any, prompt: Sequence[int], answer: Sequence[int], each: RowCallback) -> None:
    """One batched pass over ``prompt + answer``; ``each(i, logits)`` for the row
    that predicts ``answer[i]`` (the prompt's last row for ``i = 0``).

    Rows come chunk by chunk (``n_batch`` tokens), so memory stays at one chunk of
    logits whatever the answer's length."""
    _clear(llm)
    tokens = list(prompt) + list(answer)[:-1]
    first, n_batch = len(prompt) - 1, int(llm.n_batch)
    for i in range(0, len(tokens), n_batch):
        chunk = tokens[i : i + n_batch]
        n_out = _fill(llm, chunk, i, lambda p: p >= first)
        llm._ctx.decode(llm._batch)
        # Output rows are numbered by batch row; only rows with logits have them.
        for j in range(len(chunk) - n_out, len(chunk)):
            each(i + j - first, _logits(llm, j))
    _clear(llm)


__all__ = ["decode", "prefill"]
