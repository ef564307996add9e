"""The GGUF metadata reader (ggml-org/ggml docs/gguf.md) on hostile headers.

Seeds: the header of the real tiny llama GGUF (cut where its key/value section
ends: the reader never looks further, and shorter seeds fuzz faster) and a
hand-made header with one key of every value type, arrays included.
"""

from __future__ import annotations

import struct

from inferproof.runtime import gguf_signature, read_gguf_metadata

from .._harness import Target, parse
from .._material import Material

TOKENS = (
    b"GGUF",
    b"general.architecture",
    b"llama.context_length",
    b"tokenizer.chat_template",
    b"tokenizer.ggml.tokens",
    b"\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\x00\x00\x00\x01\x00\x00\x00\x00",
)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def every_type() -> bytes:
    """A version 3 header with zero tensors and a key of each GGUF value type."""
    scalars = [(0, "<B", 7), (1, "<b", -7), (2, "<H", 7), (3, "<h", -7), (4, "<I", 7)]
    scalars += [(5, "<i", -7), (6, "<f", 0.5), (7, "<B", 1), (10, "<Q", 7), (11, "<q", -7)]
    scalars += [(12, "<d", 0.25)]
    kvs = [_string("general.architecture") + struct.pack("<I", 8) + _string("llama")]
    kvs.append(_string("llama.context_length") + struct.pack("<II", 4, 64))
    kvs += [_string(f"t.{t}") + struct.pack("<I", t) + struct.pack(f, v) for t, f, v in scalars]
    kvs.append(_string("tokenizer.chat_template") + struct.pack("<I", 8) + _string("{{ x }}"))
    strings = struct.pack("<IQ", 8, 2) + _string("a") + _string("b")
    kvs.append(_string("tokenizer.ggml.tokens") + struct.pack("<I", 9) + strings)
    kvs.append(_string("t.floats") + struct.pack("<I", 9) + struct.pack("<IQff", 6, 2, 1.0, 2.0))
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs)


def header(gguf: bytes) -> bytes:
    """The shortest prefix of ``gguf`` whose metadata still reads (a binary search)."""
    lo, hi = 0, len(gguf)
    while lo < hi:
        mid = (lo + hi) // 2
        if parse(read_gguf_metadata, gguf[:mid]) is None:
            lo = mid + 1
        else:
            hi = mid
    return gguf[:lo]


def target(m: Material) -> Target:
    def run(data: bytes) -> None:
        parse(read_gguf_metadata, data)
        parse(gguf_signature, data)

    def accepts(data: bytes) -> bool:
        return parse(gguf_signature, data) is not None

    return Target("gguf", run, (header(m.gguf), every_type()), TOKENS, accepts)
