"""GGUF models the engine serves: llama.cpp instances, loaded once per digest.

A model is loaded by path (memory-mapped) after its file is hashed against the
digest, or from the hub's checked bytes when the blob store has no local file.
A model asked for embeddings gets a second instance in llama.cpp's embedding mode
(a context made for chat does not return pooled vectors), kept beside the first.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._canonical import sha256_digest
from ..errors import BlobCorruptError, InputError, ModelNotFound
from ..hub import LATEST, Hub, ModelRecord
from ..runtime import (
    DEFAULT_EMBED_CTX,
    DEFAULT_MAX_CTX,
    MAX_TOKENS_CAP,
    LlamaEmbedder,
    LlamaModel,
    LlamaSettings,
    gguf_file_digest,
    gguf_signature,
    is_gguf,
)
from ..runtime import openai_shapes as oai

__all__ = ["ChatConfig", "ChatModels"]

_PATH = re.compile(r"(?<![\w.])/[^\s:'\"]+")


@dataclass(frozen=True)
class ChatConfig:
    """How a node runs GGUF models: llama.cpp settings and the caps on requests.

    ``embed_ctx`` is the context of an embedding instance (the longest input it takes);
    its batch sizes follow it, and its thread counts are those of ``settings``."""

    settings: LlamaSettings = field(default_factory=LlamaSettings)
    max_tokens_cap: int = MAX_TOKENS_CAP
    max_ctx: int = DEFAULT_MAX_CTX
    embed_ctx: int = DEFAULT_EMBED_CTX

    def embed_settings(self) -> LlamaSettings:
        """The whole input in one micro-batch (see runtime/_llm_embed.py)."""
        ctx = self.embed_ctx
        return replace(self.settings, n_ctx=0, n_batch=ctx, n_ubatch=ctx)


class ChatModels:
    """The GGUF models of ``hub``, loaded in llama.cpp on first use.

    Example::

        models = ChatModels(hub)
        record, block, llama = models.resolve("tiny")
    """

    def __init__(self, hub: Hub, config: ChatConfig | None = None) -> None:
        self.hub = hub
        self.config = config or ChatConfig()
        self._loaded: dict[str, LlamaModel] = {}
        self._embedders: dict[str, LlamaEmbedder] = {}
        self._lock = threading.Lock()

    def configure(self, config: ChatConfig) -> None:
        """Run models with ``config`` from now on; models already loaded are unloaded."""
        with self._lock:
            self.config = config
        self.unload()

    def unload(self) -> None:
        """Free every loaded llama.cpp model."""
        with self._lock:
            loaded: list[LlamaModel | LlamaEmbedder] = [*self._loaded.values()]
            loaded += self._embedders.values()
            self._loaded.clear()
            self._embedders.clear()
        for model in loaded:
            model.close()

    def load(self, digest: str, data: bytes | None = None) -> LlamaModel:
        """The model ``digest``, loaded once (its bytes checked against the digest);
        ``data`` are its bytes when the hub does not hold them (yet)."""
        with self._lock:
            model = self._loaded.get(digest)
            if model is not None:
                return model
            cfg = self.config
            source = data if data is not None else self._source(digest)
            try:
                model = LlamaModel(
                    source, cfg.settings, max_tokens_cap=cfg.max_tokens_cap, max_ctx=cfg.max_ctx
                )
            except InputError as exc:
                # llama.cpp names the file it failed on: a server path is not the
                # caller's business (review, low: "the error shows a server path").
                raise InputError(_PATH.sub("<file>", str(exc))) from None
            self._loaded[digest] = model
            return model

    def load_embedder(self, digest: str) -> LlamaEmbedder:
        """The model ``digest`` in embedding mode, loaded once (checked as :meth:`load`)."""
        with self._lock:
            embedder = self._embedders.get(digest)
            if embedder is not None:
                return embedder
            cfg = self.config
            try:
                embedder = LlamaEmbedder(
                    self._source(digest), cfg.embed_settings(), max_ctx=cfg.embed_ctx
                )
            except InputError as exc:
                raise InputError(_PATH.sub("<file>", str(exc))) from None
            self._embedders[digest] = embedder
            return embedder

    def _source(self, digest: str) -> bytes | Path:
        path = self.hub.blobs.path(digest)
        if path is None:
            return self.hub.load(digest)
        # Load by path (memory-mapped), after checking the file's digest.
        actual = gguf_file_digest(path)
        if actual != digest:
            raise BlobCorruptError(f"blob {digest} is corrupt: its bytes hash to {actual}")
        return path

    def check(self, data: bytes) -> str:
        """A well-formed GGUF header, then llama.cpp must load it (it is then warm);
        only then are the bytes stored, so a refused model leaves nothing behind."""
        gguf_signature(data)
        digest = sha256_digest(data)
        self.load(digest, data)
        return self.hub.blobs.put(data)

    def resolve(
        self, ref: str | os.PathLike[str]
    ) -> tuple[ModelRecord | None, dict[str, Any], LlamaModel]:
        """Find a GGUF model by digest or ``name[:version]`` (a ``str``), or a file (a
        path object: a ``str`` is never taken for a path); load it once."""
        record, block = self.locate(ref)
        return record, block, self.load(str(block["digest"]))

    def resolve_embedder(
        self, ref: str | os.PathLike[str]
    ) -> tuple[ModelRecord | None, dict[str, Any], LlamaEmbedder]:
        """As :meth:`resolve`, the model in embedding mode."""
        record, block = self.locate(ref)
        return record, block, self.load_embedder(str(block["digest"]))

    def locate(self, ref: str | os.PathLike[str]) -> tuple[ModelRecord | None, dict[str, Any]]:
        """The hub record (None for a file, which is stored in the blob store) and the
        receipt's model block of a GGUF model."""
        if not isinstance(ref, str):
            path = Path(ref)
            if not path.is_file():
                raise ModelNotFound(f"model file {path} does not exist")
            data = path.read_bytes()
            if not is_gguf(data):
                raise InputError(f"{path} is not a GGUF model")
            digest = self.hub.blobs.put(data)
            return None, {"digest": digest, "name": path.stem, "version": None}
        try:
            record = self.hub.resolve(ref)
        except InputError as exc:
            raise ModelNotFound(str(exc)) from None
        if record.format != "gguf":
            raise InputError(f"model {ref!r} is an {record.format} model, not a GGUF chat model")
        return record, {"digest": record.digest, "name": record.name, "version": record.version}

    def listing(self) -> dict[str, Any]:
        """The hub's GGUF models as OpenAI's ``GET /v1/models`` list."""
        entries = [
            (
                r.name if r.version == LATEST else f"{r.name}:{r.version}",
                int(r.created_at),
                r.publisher or "inferproof",
            )
            for r in self.hub.list()
            if r.format == "gguf"
        ]
        return oai.models_list(entries)
