"""GGUF detection and a capped reader of its metadata (never the tensors).

Format: ggml-org/ggml docs/gguf.md. A file starts with the magic ``GGUF``, a
version, the tensor count and the key/value count, then the key/value pairs.
Only that header is read here, from bytes or a memory map, so a multi-gigabyte
model is never copied to learn its architecture and chat template. Everything
is hostile until checked: counts and lengths are capped, strings must be UTF-8,
booleans 0 or 1, keys unique, and the reader never reads past the buffer.
"""

from __future__ import annotations

import hashlib
import mmap
import struct
from typing import Any

from .._canonical import sha256_digest
from ..errors import InputError

GGUF_MAGIC = b"GGUF"
# gguf.md: version 3 is current; version 2 has the same layout (64-bit counts) and
# llama.cpp still loads it. Version 1 (32-bit counts) is long obsolete.
_VERSIONS = (2, 3)
# Caps. A real chat model has a few dozen keys, a vocabulary array of up to a few
# hundred thousand strings and a chat template of tens of KiB.
MAX_KV = 4096
MAX_TENSORS = 1 << 20
MAX_ARRAY = 1 << 24
MAX_STRING = 16 * 1024 * 1024

_SCALARS: dict[int, str] = {
    0: "<B",  # UINT8
    1: "<b",  # INT8
    2: "<H",  # UINT16
    3: "<h",  # INT16
    4: "<I",  # UINT32
    5: "<i",  # INT32
    6: "<f",  # FLOAT32
    7: "<B",  # BOOL (one byte, 0 or 1)
    10: "<Q",  # UINT64
    11: "<q",  # INT64
    12: "<d",  # FLOAT64
}
_BOOL, _STRING, _ARRAY = 7, 8, 9

# What the reader accepts: bytes in memory or a memory-mapped file.
Buffer = bytes | bytearray | memoryview | mmap.mmap


def is_gguf(data: Buffer) -> bool:
    """True when ``data`` starts with the GGUF magic.

    Example::

        fmt = "gguf" if is_gguf(model_bytes) else "onnx"
    """
    return bytes(memoryview(data)[:4]) == GGUF_MAGIC


class _Reader:
    def __init__(self, data: Buffer) -> None:
        self.view = memoryview(data).cast("B")
        self.pos = 0

    def take(self, n: int) -> memoryview:
        end = self.pos + n
        if n < 0 or end > len(self.view):
            raise InputError("GGUF file is truncated (metadata runs past the end)")
        out = self.view[self.pos : end]
        self.pos = end
        return out

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self, what: str) -> str:
        n = self.scalar("<Q")
        if n > MAX_STRING:
            raise InputError(f"GGUF {what} is {n} bytes, over the {MAX_STRING}-byte cap")
        try:
            return bytes(self.take(n)).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"GGUF {what} is not UTF-8") from None

    def value(self, vtype: int, key: str, *, in_array: bool = False) -> Any:
        if vtype in _SCALARS:
            value = self.scalar(_SCALARS[vtype])
            if vtype == _BOOL:
                if value not in (0, 1):
                    raise InputError(f"GGUF key {key!r}: a boolean must be 0 or 1")
                return bool(value)
            return value
        if vtype == _STRING:
            return self.string(f"value of {key!r}")
        if vtype == _ARRAY and not in_array:
            return self.array(key)
        raise InputError(f"GGUF key {key!r} has unknown value type {vtype}")

    def array(self, key: str) -> _Array:
        etype = self.scalar("<I")
        n = self.scalar("<Q")
        if n > MAX_ARRAY:
            raise InputError(f"GGUF array {key!r} has {n} items, over the cap of {MAX_ARRAY}")
        if etype in _SCALARS:
            # Scalars are skipped in one step (and bools are not checked one by one:
            # arrays are counted, never interpreted, here).
            self.take(n * struct.calcsize(_SCALARS[etype]))
        else:
            for _ in range(n):
                self.value(etype, key, in_array=True)
        return _Array(etype, n)


class _Array:
    """An array's element type and length (its items are skipped, not kept)."""

    def __init__(self, etype: int, length: int) -> None:
        self.etype = etype
        self.length = length


def read_gguf_metadata(data: Buffer) -> tuple[int, int, dict[str, Any]]:
    """Parse the header: ``(version, tensor_count, {key: value})``; arrays become lengths."""
    r = _Reader(data)
    if bytes(r.take(4)) != GGUF_MAGIC:
        raise InputError("not a GGUF file (missing the GGUF magic)")
    version = r.scalar("<I")
    if version not in _VERSIONS:
        raise InputError(f"GGUF version {version} is not supported (only 2 and 3)")
    n_tensors, n_kv = r.scalar("<Q"), r.scalar("<Q")
    if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
        raise InputError(f"GGUF header claims {n_tensors} tensors and {n_kv} keys: over the caps")
    out: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string("key")
        if not key or len(key) > 65535:
            raise InputError("GGUF key must be 1 to 65535 bytes")
        if key in out:
            raise InputError(f"GGUF key {key!r} appears twice")
        value = r.value(r.scalar("<I"), key)
        out[key] = value.length if isinstance(value, _Array) else value
    return version, n_tensors, out


def gguf_signature(data: Buffer) -> dict[str, Any]:
    """What the hub records of a GGUF model, read from its header.

    Returns architecture, context length, vocabulary size, tokenizer, the digest
    of the chat template (``None`` when the file has none), name and tensor count.
    Raises :class:`InputError` for anything that is not a well-formed GGUF file.

    Example::

        info = gguf_signature(Path("model.gguf").read_bytes())
        print(info["architecture"], info["context_length"], info["chat_template"])
    """
    version, n_tensors, meta = read_gguf_metadata(data)
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise InputError("GGUF file has no general.architecture")
    ctx = meta.get(f"{arch}.context_length")
    if not isinstance(ctx, int) or isinstance(ctx, bool) or ctx <= 0:
        raise InputError(f"GGUF file has no valid {arch}.context_length")
    template = meta.get("tokenizer.chat_template")
    if template is not None and not isinstance(template, str):
        raise InputError("GGUF tokenizer.chat_template must be a string")
    tokens = meta.get("tokenizer.ggml.tokens")
    name = meta.get("general.name")
    return {
        "format": "gguf",
        "gguf_version": version,
        "architecture": arch,
        "name": name if isinstance(name, str) else None,
        "context_length": ctx,
        "tensor_count": n_tensors,
        "tokenizer": meta.get("tokenizer.ggml.model"),
        "vocab_size": tokens if isinstance(tokens, int) else None,
        "chat_template": sha256_digest(template.encode()) if template else None,
    }


def file_digest(path: Any, chunk: int = 1 << 20) -> str:
    """``sha256:<hex>`` of a file, read in chunks (models can be gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return "sha256:" + h.hexdigest()
