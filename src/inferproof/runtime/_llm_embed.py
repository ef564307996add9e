"""Embeddings with llama.cpp: OpenAI-shaped requests in, exact float32 vectors out.

A receipt for embeddings commits, as a chat receipt does, to a canonical request
(the task, the model digest and the input strings) and to the output: the vectors'
exact float32 bytes and the token count. A verifier re-runs the request with the
recorded settings and requires identical bytes.

What makes the bytes reproducible (measured: see docs/llm.md, "Embeddings"):

- **One input per decode.** llama-cpp-python's ``Llama.embed`` packs several inputs
  into one batch; a vector then depends on which other inputs shared the batch and
  in what order (on SmolLM2 every vector's bytes changed). Here each input is
  decoded alone, from an empty KV cache, so its vector is a function of the input,
  the model and the settings only, and a verifier can re-run it on its own.
- **The whole input in one micro-batch** (``n_batch = n_ubatch = n_ctx``): models
  with non-causal attention (BERT-style embedders) need it, and it fixes how the
  prompt is split into matrix products.
- **Pooling pinned and recorded**: the model's own (GGUF ``<arch>.pooling_type``)
  when it names mean, CLS or last-token pooling, otherwise mean pooling (a chat
  model such as SmolLM2 names none).
- **Normalisation in exact arithmetic**: OpenAI's embeddings have unit length. The
  Euclidean norm is taken with ``math.fsum`` over the float32 values' squares
  (exact in binary64) and a correctly rounded square root and division, so it is
  the same on every IEEE 754 machine; only llama.cpp's own kernels can differ.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import mmap
import os
import platform
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._canonical import canonical_json, check_digest, parse_json, sha256_digest
from .._files import write_private
from ..errors import InputError
from ._llm import (
    ENGINE,
    LlamaSettings,
    engine_versions,
    load_llama,
    materialise,
    release,
    resolve_settings,
    signature_of,
)
from ._llm_gguf import read_gguf_metadata
from ._llm_output import SALT_BYTES, SALT_SCHEME, commit_output

__all__ = [
    "DEFAULT_EMBED_CTX",
    "EMBEDDING_TASK",
    "ENCODING_FORMATS",
    "MAX_EMBED_INPUTS",
    "EmbeddingMode",
    "EmbeddingOpening",
    "EmbeddingOutput",
    "EmbeddingRequest",
    "LlamaEmbedder",
    "ParsedEmbedding",
    "parse_embedding_request",
]

EMBEDDING_TASK = "embedding"
# OpenAI's limits for /v1/embeddings: at most 2048 inputs in one request, none empty.
MAX_EMBED_INPUTS = 2048
# The characters of all inputs together, as for chat (bounds tokenisation work).
MAX_EMBED_CHARS = 1024 * 1024
# Values of all vectors of one answer: 4 Mi float32 (16 MiB, 22 MiB in base64) keeps
# a bundle well under its 64 MiB cap.
MAX_EMBED_VALUES = 4 * 1024 * 1024
# The context of an embedding instance: 512 tokens, the training length of the
# BERT-family embedders (bge, e5, all-MiniLM) and llama-cpp-python's default; the
# whole input is one micro-batch, whose attention scratch grows with its square.
DEFAULT_EMBED_CTX = 512
# OpenAI's encoding_format values; the official Python client asks for base64
# (little-endian float32) unless told otherwise.
ENCODING_FORMATS = ("float", "base64")
# llama.h, enum llama_pooling_type.
_POOLING = {"mean": 1, "cls": 2, "last": 3}
_POOLING_RANK = 4
_REQUEST_KEYS = {"model", "input", "encoding_format", "user"}
_WHAT = "embedding output"


# -- requests -----------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbeddingRequest:
    """The canonical request an embedding receipt commits to: the task, the model digest
    and the input strings. ``encoding_format`` is left out: it changes how the vectors
    travel, not what they are.

    Example::

        parsed = parse_embedding_request({"model": "m", "input": ["a", "b"]})
        print(parsed.request.bind("sha256:...").digest)
    """

    model: str
    inputs: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"task": EMBEDDING_TASK, "model": self.model, "input": list(self.inputs)}

    @property
    def digest(self) -> str:
        """``sha256`` of the request's RFC 8785 bytes: the receipt's input digest."""
        return sha256_digest(canonical_json(self.to_json()))

    def bind(self, model_digest: str) -> EmbeddingRequest:
        return EmbeddingRequest(check_digest(model_digest, "model digest"), self.inputs)

    @classmethod
    def from_json(cls, obj: Any) -> EmbeddingRequest:
        """Read a canonical request back (from a bundle or an opening), strictly."""
        if not isinstance(obj, dict) or set(obj) != {"task", "model", "input"}:
            raise InputError("canonical embedding request must have exactly task, model, input")
        if obj["task"] != EMBEDDING_TASK:
            raise InputError(f"canonical embedding request task must be {EMBEDDING_TASK!r}")
        if not isinstance(obj["input"], list):
            raise InputError("canonical embedding request input must be a list of strings")
        model = check_digest(obj["model"], "canonical embedding request model")
        return cls(model, _inputs(obj["input"]))


@dataclass(frozen=True)
class ParsedEmbedding:
    """A checked ``/v1/embeddings`` body: the model reference, the request (model not
    yet bound) and how the vectors are to be sent."""

    model_ref: str
    request: EmbeddingRequest
    encoding_format: str


def _inputs(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise InputError("input must be a string or a non-empty list of strings")
    if all(isinstance(x, int) and not isinstance(x, bool) for x in items):
        # OpenAI also takes token ids; tokens are the model's business here.
        raise InputError("input: token arrays are not supported (give strings)")
    if len(items) > MAX_EMBED_INPUTS:
        raise InputError(f"input: {len(items)} inputs, over the cap of {MAX_EMBED_INPUTS}")
    total = 0
    for i, item in enumerate(items):
        if isinstance(item, list):
            raise InputError(f"input[{i}]: token arrays are not supported (give strings)")
        if not isinstance(item, str):
            raise InputError(f"input[{i}] must be a string")
        if not item:
            raise InputError(f"input[{i}] is empty (OpenAI refuses empty strings too)")
        total += len(item)
        if total > MAX_EMBED_CHARS:
            raise InputError(f"input is over the cap of {MAX_EMBED_CHARS} characters")
    return tuple(items)


def parse_embedding_request(body: Any) -> ParsedEmbedding:
    """Check an OpenAI-shaped ``/v1/embeddings`` body: ``model``, ``input`` (a string
    or a list of strings), optional ``encoding_format`` and ``user``. Anything else
    (``dimensions``, token arrays) is refused by name. The model is bound later."""
    if not isinstance(body, dict):
        raise InputError("request body must be a JSON object")
    unknown = sorted(set(body) - _REQUEST_KEYS)
    if unknown:
        raise InputError(f"request: unsupported parameter(s) {unknown}")
    model_ref = body.get("model")
    if not isinstance(model_ref, str) or not model_ref:
        raise InputError("model must be a non-empty string")
    if "input" not in body:
        raise InputError("input is required (a string or a list of strings)")
    fmt = body.get("encoding_format", "float")
    if fmt not in ENCODING_FORMATS:
        raise InputError(f"encoding_format must be one of {', '.join(ENCODING_FORMATS)}")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise InputError("user must be a string")
    return ParsedEmbedding(model_ref, EmbeddingRequest("", _inputs(body["input"])), fmt)


# -- outputs ------------------------------------------------------------------------------
def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 31:
        raise InputError(f"{_WHAT} {name} must be a non-negative integer")
    return value


@dataclass(frozen=True, eq=False)
class EmbeddingOutput:
    """The vectors a receipt commits to (float32, one row per input) and the tokens read.

    Its JSON form carries the vectors' little-endian bytes in base64, so the digest
    (over the RFC 8785 bytes of that form) covers exactly the bytes computed.
    """

    vectors: np.ndarray
    prompt_tokens: int

    def to_json(self) -> dict[str, Any]:
        arr = np.ascontiguousarray(self.vectors, dtype="<f4")
        return {
            "embeddings": {
                "dtype": "float32",
                "shape": list(arr.shape),
                "b64": base64.b64encode(arr.tobytes()).decode(),
            },
            "usage": {"prompt_tokens": self.prompt_tokens},
        }

    @property
    def digest(self) -> str:
        return sha256_digest(canonical_json(self.to_json()))

    @classmethod
    def from_json(cls, obj: Any) -> EmbeddingOutput:
        """Read an output back (from a bundle or an opening), strictly."""
        if not isinstance(obj, dict) or set(obj) != {"embeddings", "usage"}:
            raise InputError(f"{_WHAT} must have exactly embeddings and usage")
        usage, emb = obj["usage"], obj["embeddings"]
        if not isinstance(usage, dict) or set(usage) != {"prompt_tokens"}:
            raise InputError(f"{_WHAT} usage must have prompt_tokens only")
        if not isinstance(emb, dict) or set(emb) != {"dtype", "shape", "b64"}:
            raise InputError(f"{_WHAT} embeddings must have dtype, shape, b64")
        shape = emb["shape"]
        if emb["dtype"] != "float32" or not isinstance(shape, list) or len(shape) != 2:
            raise InputError(f"{_WHAT} embeddings must be a float32 matrix")
        rows = _count(shape[0], "rows")
        dim = _count(shape[1], "dimensions")
        if not 0 < rows <= MAX_EMBED_INPUTS or not 0 < rows * dim <= MAX_EMBED_VALUES:
            raise InputError(f"{_WHAT} shape {shape} is out of bounds")
        raw = _b64(emb["b64"], rows * dim * 4)
        vectors = np.frombuffer(raw, dtype="<f4").reshape(rows, dim).astype(np.float32)
        return cls(vectors, _count(usage["prompt_tokens"], "prompt_tokens"))


def _b64(value: Any, size: int) -> bytes:
    """Standard base64 in its one canonical form, of exactly ``size`` bytes."""
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or len(raw) != size or base64.b64encode(raw).decode() != value:
        raise InputError(f"{_WHAT} b64 must be canonical base64 of {size} bytes")
    return raw


@dataclass(frozen=True)
class EmbeddingOpening:
    """What opens a private embedding receipt: the salt, the canonical request, the output.

    The commitments are the chat receipt's: ``sha256("inferproof/input-commitment/v1\\0"
    || salt || request digest)`` and the output prefix's likewise (``_llm_output.py``).
    """

    salt: bytes
    request: EmbeddingRequest
    output: EmbeddingOutput

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": SALT_SCHEME,
            "salt": self.salt.hex(),
            "request": self.request.to_json(),
            "output": self.output.to_json(),
        }

    def opens_output(self, commitment: str) -> bool:
        return hmac.compare_digest(commit_output(self.output.digest, self.salt), commitment)

    @classmethod
    def from_json(cls, obj: Any) -> EmbeddingOpening:
        if not isinstance(obj, dict) or set(obj) != {"scheme", "salt", "request", "output"}:
            raise InputError("not an embedding opening (scheme, salt, request, output)")
        if obj["scheme"] != SALT_SCHEME:
            raise InputError(f"embedding opening scheme must be {SALT_SCHEME}")
        salt = obj["salt"]
        try:
            raw = bytes.fromhex(salt) if isinstance(salt, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != SALT_BYTES or raw.hex() != salt:
            raise InputError(f"embedding opening salt must be {SALT_BYTES} bytes in lowercase hex")
        request = EmbeddingRequest.from_json(obj["request"])
        return cls(raw, request, EmbeddingOutput.from_json(obj["output"]))

    def save(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        """Write the opening to a new 0600 file (it holds the private inputs)."""
        if path.exists():
            path.unlink()
        write_private(path, canonical_json(self.to_json()) + b"\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EmbeddingOpening:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"opening file {path} does not exist")
        return cls.from_json(parse_json(path.read_bytes(), "embedding opening", 64 << 20))


# -- the runtime --------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbeddingMode:
    """How vectors are made, beside the llama.cpp settings: recorded in every receipt
    (``runtime.embedding``) and reproduced by a verifier."""

    pooling: str = "mean"

    def to_json(self) -> dict[str, Any]:
        return {"pooling": self.pooling, "normalize": "l2", "inputs_per_decode": 1}

    @classmethod
    def from_json(cls, obj: Any) -> EmbeddingMode:
        if not isinstance(obj, dict) or set(obj) != set(cls().to_json()):
            raise InputError("embedding mode must have exactly pooling, normalize and "
                             "inputs_per_decode")  # fmt: skip
        if obj["pooling"] not in _POOLING:
            raise InputError(f"embedding pooling must be one of {', '.join(_POOLING)}")
        if obj["normalize"] != "l2" or obj["inputs_per_decode"] != 1:
            raise InputError("embedding normalize must be l2 and inputs_per_decode 1")
        return cls(str(obj["pooling"]))


def model_pooling(path: Path) -> str:
    """The pooling the model names (``<arch>.pooling_type``), or mean when it names none."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        meta = read_gguf_metadata(mapped)[2]
    value = meta.get(f"{meta.get('general.architecture')}.pooling_type")
    if value == _POOLING_RANK:
        raise InputError("this model is a reranker (pooling 'rank'), not an embedding model")
    named = {code: name for name, code in _POOLING.items()}
    # None (no pooling: per-token vectors) or absent: mean pooling.
    return named.get(value, "mean") if isinstance(value, int) else "mean"


def l2_normalise(values: list[float]) -> np.ndarray:
    """Unit length in exact arithmetic (see the module docs), as float32."""
    norm = math.sqrt(math.fsum(x * x for x in values))
    if norm == 0.0 or not math.isfinite(norm):
        raise InputError("the model produced a zero or non-finite embedding")
    return np.array([x / norm for x in values], dtype=np.float32)


class LlamaEmbedder:
    """A GGUF model loaded in llama.cpp's embedding mode with pinned, recorded settings.

    Example::

        embedder = LlamaEmbedder(Path("model.gguf"))
        out = embedder.embed(EmbeddingRequest("sha256:...", ("hello", "world")))
        print(out.vectors.shape, out.prompt_tokens)
    """

    def __init__(
        self,
        model: bytes | Path,
        settings: LlamaSettings | None = None,
        *,
        mode: EmbeddingMode | None = None,
        max_ctx: int = DEFAULT_EMBED_CTX,
    ) -> None:
        path, self._tmp = materialise(model)
        self.signature = signature_of(path)
        # The whole input is one micro-batch (see the module docs).
        given = settings or LlamaSettings(n_batch=max_ctx, n_ubatch=max_ctx)
        self.settings = resolve_settings(given, self.signature, max_ctx)
        if self.settings.n_ubatch != self.settings.n_ctx:
            raise InputError("embedding settings must have n_batch = n_ubatch = n_ctx")
        self.mode = mode or EmbeddingMode(model_pooling(path))
        code = _POOLING[self.mode.pooling]
        # Set as the model's own pooling (a metadata override) rather than as the
        # context's: the same vectors, without llama.cpp's warning on stderr that
        # the context differs from the model's default.
        key = f"{self.signature['architecture']}.pooling_type"
        self._llm = load_llama(path, self.settings, embedding=True, kv_overrides={key: code})
        if self._llm.pooling_type() != code:
            release(self._llm, self._tmp)
            raise InputError(f"llama.cpp did not take {self.mode.pooling} pooling for this model")
        self.dimensions = int(self._llm.n_embd())
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, release, self._llm, self._tmp)

    def close(self) -> None:
        """Free the llama.cpp model now (otherwise at garbage collection)."""
        with self._lock:
            self._finalizer()

    def runtime_info(self) -> dict[str, Any]:
        """The receipt's runtime block: engine, versions, CPU, settings, embedding mode."""
        return {
            "engine": ENGINE,
            **engine_versions(),
            "machine": platform.machine(),
            "settings": self.settings.to_json(),
            "embedding": self.mode.to_json(),
        }

    def check(self, request: EmbeddingRequest) -> list[int]:
        """Each input's token count; refuse what does not fit (before any work)."""
        if len(request.inputs) * self.dimensions > MAX_EMBED_VALUES:
            raise InputError(
                f"input: {len(request.inputs)} inputs of {self.dimensions} dimensions are "
                f"over the cap of {MAX_EMBED_VALUES} values per answer"
            )
        counts = []
        for i, text in enumerate(request.inputs):
            n = len(self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
            if n > self.settings.n_ctx:
                raise InputError(
                    f"context overflow: input[{i}] is {n} tokens, over the model's embedding "
                    f"context of {self.settings.n_ctx} tokens"
                )
            counts.append(n)
        return counts

    def embed(self, request: EmbeddingRequest) -> EmbeddingOutput:
        """The unit-length vectors of ``request``'s inputs, each decoded on its own.

        Control tokens written in an input are read as text (``special=False``)."""
        counts = self.check(request)
        rows = []
        with self._lock:
            for text, n in zip(request.inputs, counts, strict=True):
                values, used = self._llm.embed(text, truncate=False, return_count=True)
                if used != n:  # llama-cpp-python tokenises as check() did
                    raise InputError(f"input tokenised to {used} tokens, expected {n}")
                rows.append(l2_normalise(list(values)))
        return EmbeddingOutput(np.stack(rows), sum(counts))
