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


def _chunks(n: int, n_batch: int, n_ubatch: int) -> list[tuple[int, int, bool]]:
    """``(start, size, pad)`` for evaluating ``n`` tokens in batches of ``n_batch``.

    llama_decode splits a batch into micro-batches of ``n_ubatch`` rows, and a
    micro-batch of one row goes through the one-row kernels (module docs): its logits
    differ from the same row's in a larger micro-batch. So a chunk whose last
    micro-batch would be one row is either padded with a throw-away row (``pad``: the
    caller adds it without logits and removes its cache cell at once; a row's result
    does not depend on the others of its batch) or, when it is already ``n_batch``
    long, cut one row short. With ``n_ubatch`` 1 every row is alone, and nothing helps."""
    out, start = [], 0
    while start < n:
        size = min(n_batch, n - start)
        lone = n_ubatch > 1 and size % n_ubatch == 1
        if lone and size == n_batch and size > 2:
            size -= 1
            lone = size % n_ubatch == 1
        pad = lone and size < n_batch
        out.append((start, size, pad))
        start += size
    return out


def _eval(
    llm: Any, tokens: Sequence[int], start: int, pad: bool, want: Callable[[int], bool]
) -> int:
    """Decode ``tokens`` at ``start``..., plus a throw-away copy of the last one when
    ``pad`` (its cache cell removed); the number of rows with logits."""
    rows = list(tokens) + ([tokens[-1]] if pad else [])
    end = start + len(tokens)
    n_out = _fill(llm, rows, start, lambda p: p < end and want(p))
    llm._ctx.decode(llm._batch)
    if pad:
        llm._ctx.kv_cache_seq_rm(0, end, -1)
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
    last = len(prompt) - 1
    for i, size, pad in _chunks(len(prompt), int(llm.n_batch), _n_ubatch(llm)):
        _eval(llm, prompt[i : i + size], i, pad, last.__eq__)
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
    first = len(prompt) - 1
    for i, size, pad in _chunks(len(tokens), int(llm.n_batch), _n_ubatch(llm)):
        n_out = _eval(llm, tokens[i : i + size], i, pad, first.__le__)
        # Output rows are numbered by batch row; only rows with logits have them.
        for j in range(size - n_out, size):
            each(i + j - first, _logits(llm, j))
    _clear(llm)


def _n_ubatch(llm: Any) -> int:
    return int(llm.context_params.n_ubatch)


__all__ = ["decode", "prefill"]
