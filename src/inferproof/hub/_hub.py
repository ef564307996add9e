"""The hub: content-addressed model blobs, a registry of names, publisher signatures."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from .._canonical import check_digest, is_digest, sha256_digest
from ..errors import InputError, ModelNotFound, VerificationError
from ..runtime import TensorSpec
from ._blobs import BlobStore, LocalBlobStore
from ._registry import LATEST, ModelRecord, Registry, SQLiteRegistry, check_name
from ._signing import parse_model_signature, verify_model_signature


def _verified_publisher(
    signature: bytes, digest: str, publishers: Mapping[str, ec.EllipticCurvePublicKey]
) -> str | None:
    try:
        return verify_model_signature(signature, digest, dict(publishers))
    except VerificationError:
        return None


class Hub:
    """Models by digest and by ``name[:version]``; bytes always checked on load.

    Example::

        hub = Hub.local(Path("~/.inferproof").expanduser())
        record = hub.add(model_bytes, name="credit-risk", version="1", inputs=..., outputs=...)
        assert hub.load(record.digest) == model_bytes
    """

    def __init__(self, blobs: BlobStore, registry: Registry) -> None:
        self.blobs = blobs
        self.registry = registry

    @classmethod
    def local(cls, root: Path) -> Hub:
        return cls(LocalBlobStore(root / "blobs"), SQLiteRegistry(root / "registry.sqlite"))

    def add(
        self,
        model_bytes: bytes,
        *,
        name: str,
        version: str | None,
        inputs: tuple[TensorSpec, ...],
        outputs: tuple[TensorSpec, ...],
        signature: bytes | None = None,
        fmt: str = "onnx",
        publishers: Mapping[str, ec.EllipticCurvePublicKey] | None = None,
    ) -> ModelRecord:
        """Store the bytes (and signature) and register ``name:version`` (idempotent).

        The record names a publisher only when the signature verifies against one of
        ``publishers`` (the keys this hub trusts): the signature bundle's own key hint
        is unsigned, and naming a publisher from it would let anyone claim to be one.
        """
        check_name(name, "model name")
        version = check_name(version, "version") if version else LATEST
        digest = sha256_digest(model_bytes)
        sig_digest = publisher = None
        if signature is not None:
            parsed = parse_model_signature(signature)
            if parsed.model_digest != digest:
                raise InputError(
                    f"the signature is over {parsed.model_digest}, not this model ({digest})"
                )
            publisher = _verified_publisher(signature, digest, publishers or {})
            sig_digest = self.blobs.put(signature)
        self.blobs.put(model_bytes)
        record = ModelRecord(
            digest=digest,
            name=name,
            version=version,
            size=len(model_bytes),
            format=fmt,
            created_at=time.time(),
            inputs=inputs,
            outputs=outputs,
            signature_digest=sig_digest,
            publisher=publisher,
        )
        stored = self.registry.add(record)
        if version != LATEST and self.registry.by_name(name, LATEST) is None:
            self.registry.add(replace(record, version=LATEST))
        return stored

    def resolve(self, ref: str) -> ModelRecord:
        """Find a model by ``sha256:<hex>``, ``name`` (newest) or ``name:version``."""
        if ref.startswith("sha256:"):
            record = self.registry.by_digest(check_digest(ref, "model digest"))
        else:
            name, _, version = ref.partition(":")
            check_name(name, "model name")
            record = self.registry.by_name(
                name, check_name(version, "version") if version else None
            )
        if record is None:
            raise ModelNotFound(f"no model {ref!r} in the hub (see `inferproof model list`)")
        return record

    def find(self, digest: str) -> ModelRecord | None:
        return self.registry.by_digest(digest) if is_digest(digest) else None

    def load(self, digest: str) -> bytes:
        """The model's bytes, re-hashed: a blob that no longer matches is refused."""
        return self.blobs.get(digest)

    def signature(self, record: ModelRecord) -> bytes | None:
        return self.blobs.get(record.signature_digest) if record.signature_digest else None

    def list(self) -> list[ModelRecord]:
        return self.registry.list()
