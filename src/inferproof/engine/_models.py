"""Models the engine runs: hub records and loaded ONNX sessions, cached per process.

A model's bytes are checked against its digest when they are loaded (the hub
re-hashes every blob it reads), once per process per digest; hub records are
immutable per digest, so they are cached too.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from .._files import read_content
from ..errors import InputError
from ..hub import Hub, ModelRecord
from ..runtime import OnnxModel, is_gguf

__all__ = ["ModelRef", "OnnxModels", "model_block", "read_model"]

# A model reference: a ``str`` is always a hub reference (``name``, ``name:version``
# or ``sha256:<hex>``), never a path, because references arrive from the network;
# only a path object (``pathlib.Path``), which a local caller builds on purpose,
# names a file (review finding 11.5: a hub model named "mlp.onnx" ran the file).
ModelRef = str | os.PathLike[str]


def read_model(model: str | os.PathLike[str] | bytes) -> bytes:
    """A model's bytes: ``bytes`` are the content, a path (``str`` or path object) is read."""
    return read_content(model, "model file")


def model_block(
    hub: Hub, record: ModelRecord | None, block: dict[str, Any], fmt: str
) -> tuple[dict[str, Any], bytes | None]:
    """The receipt's model block with its format and publisher signature, and the
    signature bundle's bytes (None for an unsigned model or a file)."""
    signature = hub.signature(record) if record else None
    full = {
        **block,
        "format": fmt,
        "signature": record.signature_digest if record else None,
        "publisher": record.publisher if record else None,
    }
    return full, signature


def not_onnx(what: str, fmt: str, ref: str) -> InputError:
    """The refusal of a model that is not ONNX, naming what to use instead.

    Without it the ONNX parser met the GGUF bytes and said only ``INVALID_PROTOBUF``
    (issue 12); the hub record's format is checked before any byte is parsed."""
    if fmt == "gguf":
        hint = (
            f'chat with it instead: `inferproof chat {ref} "..."`, or a node\'s '
            "POST /v1/chat/completions"
        )
    else:
        hint = "tensor inference runs ONNX models only"
    return InputError(f"model {what} is a {fmt.upper()} model, not ONNX: {hint}")


class OnnxModels:
    """ONNX models by digest, ``name[:version]`` or file path, loaded once.

    Example::

        models = OnnxModels(hub)
        record, block = models.resolve("credit-risk:1")
        session = models.session(block["digest"])
    """

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._sessions: dict[str, OnnxModel] = {}
        self._records: dict[str, ModelRecord] = {}
        self._lock = threading.Lock()

    def resolve(self, ref: ModelRef) -> tuple[ModelRecord | None, dict[str, Any]]:
        """Find a model by digest or ``name[:version]`` (a ``str``), or a file (a path).

        Returns the hub record (None for a file) and the receipt's model block. The
        model's bytes are loaded, and checked against the digest, once per process.
        """
        if not isinstance(ref, str):
            path = Path(ref)
            data = read_model(path)
            if is_gguf(data):
                raise not_onnx(f"file {path.name}", "gguf", str(path))
            model = OnnxModel(data)  # checked before anything is stored
            digest = self.hub.blobs.put(data)
            self.keep(digest, model)
            return None, {"digest": digest, "name": path.stem, "version": None}
        record = self._records.get(ref)
        if record is None:
            record = self.hub.resolve(ref)
            # Records are immutable per digest; caching saves a SQLite query per call.
            # (forget() drops one when this process adds a signature.)
            with self._lock:
                self._records[record.digest] = record
        if record.format != "onnx":
            raise not_onnx(repr(ref), record.format, ref)
        self.session(record.digest)
        return record, {"digest": record.digest, "name": record.name, "version": record.version}

    def session(self, digest: str, data: bytes | None = None) -> OnnxModel:
        """The loaded model ``digest`` (from ``data`` or the hub's checked bytes)."""
        with self._lock:
            model = self._sessions.get(digest)
        if model is None:
            model = OnnxModel(data if data is not None else self.hub.load(digest))
            with self._lock:
                self._sessions[digest] = model
        return model

    def keep(self, digest: str, model: OnnxModel) -> None:
        """Remember a model loaded elsewhere (a push checked it) and drop its stale record."""
        with self._lock:
            self._sessions.setdefault(digest, model)
            self._records.pop(digest, None)

    def forget(self, digest: str) -> None:
        """Drop the cached record of ``digest`` (its signature changed)."""
        with self._lock:
            self._records.pop(digest, None)
