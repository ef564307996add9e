"""A tiny llama-architecture GGUF written locally, for tests, the demo and benchmarks.

Nothing is downloaded: the vocabulary is a byte-level BPE (GPT-2 byte alphabet)
whose merges are learnt here from a short built-in text, the weights come from a
seeded generator, and the file is written with the ``gguf`` package's writer
(the reference writer of the llama.cpp project). The chat template is ChatML.
The model is random, so its answers are gibberish, but they are real llama.cpp
output: deterministic, tokenised and detokenised like any GGUF chat model's.

Example::

    from inferproof.testing import tiny_llama_gguf, write_tiny_llama
    data = tiny_llama_gguf()                 # about 0.5 MB, loads in llama-cpp-python
    write_tiny_llama("tiny.gguf")
"""

from __future__ import annotations

__all__ = [
    "CHATML_TEMPLATE",
    "SPECIAL_TOKENS",
    "TinyLlamaConfig",
    "tiny_llama_gguf",
    "write_tiny_llama",
]

import collections
import itertools
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# ChatML, as Qwen and others ship it in tokenizer.chat_template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# llama.cpp token types (llama.h, enum llama_token_type): NORMAL = 1, CONTROL = 3.
_NORMAL, _CONTROL = 1, 3

_CORPUS = (
    "You are a helpful assistant. The user asks a question and the assistant answers it. "
    "A receipt says which model ran, in what environment, and whether the output was "
    "computed the right way. Anyone can check the answer again by running the same model "
    "on the same request with the same settings. The system message sets the tone; the "
    "user message asks; the assistant message answers. What is the capital of France? "
    "The capital of France is Paris. How many legs does a spider have? A spider has eight "
    "legs. Tell me a short story about a robot who learns to paint. Once upon a time there "
    "was a small robot that loved the colour of the morning sky, and every day it tried "
    "again. Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 2024. Hello, world! Thank you, goodbye."
)
# GPT-2's pre-tokeniser pattern (openai/gpt-2 encoder.py), with letter and digit classes
# spelt for Python's re module; the corpus is ASCII so the two agree on it.
_PRETOKENIZE = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+")


@dataclass(frozen=True)
class TinyLlamaConfig:
    """Shape of the generated model; the defaults give a fast two-layer test model."""

    n_embd: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_head_kv: int = 2
    n_ff: int = 128
    n_ctx: int = 512
    n_merges: int = 200
    seed: int = 0
    weight_scale: float = 0.08
    chat_template: str | None = CHATML_TEMPLATE
    # ``llama.pooling_type`` (llama.h, enum llama_pooling_type: 1 mean, 2 CLS, 3 last,
    # 4 rank), as embedding models declare it; None writes no key, as chat models.
    pooling_type: int | None = None


def _byte_alphabet() -> list[str]:
    """GPT-2's reversible byte-to-unicode map (openai/gpt-2 encoder.py, bytes_to_unicode),
    as a list indexed by byte value."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    out: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in out:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


def _learn_merges(n_merges: int) -> list[tuple[str, str]]:
    """Byte-pair merges learnt greedily from the corpus (ties broken by the pair's text)."""
    alphabet = _byte_alphabet()
    words = collections.Counter(
        tuple(alphabet[b] for b in piece.encode()) for piece in _PRETOKENIZE.findall(_CORPUS)
    )
    merges: list[tuple[str, str]] = []
    for _ in range(n_merges):
        pairs: collections.Counter[tuple[str, str]] = collections.Counter()
        for word, count in words.items():
            for pair in itertools.pairwise(word):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged: collections.Counter[tuple[str, ...]] = collections.Counter()
        for word, count in words.items():
            out: list[str] = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += count
        words = merged
    return merges


def _vocabulary(n_merges: int) -> tuple[list[str], list[int], list[str]]:
    """Tokens (bytes, then merges, then specials), their types, and the merge rules."""
    tokens = _byte_alphabet()
    merges = _learn_merges(n_merges)
    seen = set(tokens)
    for left, right in merges:
        if left + right not in seen:
            tokens.append(left + right)
            seen.add(left + right)
    types = [_NORMAL] * len(tokens) + [_CONTROL] * len(SPECIAL_TOKENS)
    tokens.extend(SPECIAL_TOKENS)
    return tokens, types, [f"{a} {b}" for a, b in merges]


def write_tiny_llama(path: str | os.PathLike[str], config: TinyLlamaConfig | None = None) -> None:
    """Write the GGUF file to ``path``.

    Example::

        write_tiny_llama("tiny.gguf")   # then: inferproof chat tiny.gguf "Hello"
    """
    import gguf

    cfg = config or TinyLlamaConfig()
    tokens, types, merges = _vocabulary(cfg.n_merges)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("inferproof-tiny-llama")
    writer.add_context_length(cfg.n_ctx)
    writer.add_embedding_length(cfg.n_embd)
    writer.add_block_count(cfg.n_layer)
    writer.add_feed_forward_length(cfg.n_ff)
    writer.add_head_count(cfg.n_head)
    writer.add_head_count_kv(cfg.n_head_kv)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(cfg.n_embd // cfg.n_head)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(0)  # LLAMA_FTYPE_ALL_F32
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_pad_token_id(tokens.index("<|endoftext|>"))
    writer.add_add_bos_token(False)
    if cfg.pooling_type is not None:
        writer.add_uint32("llama.pooling_type", cfg.pooling_type)
    if cfg.chat_template is not None:
        writer.add_chat_template(cfg.chat_template)
    for name, array in _weights(cfg, len(tokens)):
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _weights(cfg: TinyLlamaConfig, n_vocab: int) -> list[tuple[str, np.ndarray]]:
    """Seeded F32 tensors under the names llama.cpp's llama loader expects
    (gguf constants.py MODEL_TENSOR names); numpy shapes are GGML's ``ne`` reversed."""
    rng = np.random.default_rng(cfg.seed)
    head_dim = cfg.n_embd // cfg.n_head
    kv = cfg.n_head_kv * head_dim

    def dense(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * cfg.weight_scale).astype(np.float32)

    def norm() -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(cfg.n_embd)).astype(np.float32)

    out = [("token_embd.weight", dense(n_vocab, cfg.n_embd))]
    for i in range(cfg.n_layer):
        out += [
            (f"blk.{i}.attn_norm.weight", norm()),
            (f"blk.{i}.attn_q.weight", dense(cfg.n_embd, cfg.n_embd)),
            (f"blk.{i}.attn_k.weight", dense(kv, cfg.n_embd)),
            (f"blk.{i}.attn_v.weight", dense(kv, cfg.n_embd)),
            (f"blk.{i}.attn_output.weight", dense(cfg.n_embd, cfg.n_embd)),
            (f"blk.{i}.ffn_norm.weight", norm()),
            (f"blk.{i}.ffn_gate.weight", dense(cfg.n_ff, cfg.n_embd)),
            (f"blk.{i}.ffn_up.weight", dense(cfg.n_ff, cfg.n_embd)),
            (f"blk.{i}.ffn_down.weight", dense(cfg.n_embd, cfg.n_ff)),
        ]
    out += [("output_norm.weight", norm()), ("output.weight", dense(n_vocab, cfg.n_embd) * 4)]
    return out


def tiny_llama_gguf(config: TinyLlamaConfig | None = None) -> bytes:
    """The GGUF file's bytes (written to a temporary file, read back)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tiny.gguf"
        write_tiny_llama(path, config)
        return path.read_bytes()
