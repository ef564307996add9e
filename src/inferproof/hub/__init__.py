"""The model hub: content-addressed blobs, a registry of names, publisher signatures.

The hub never runs models. Every load re-hashes the bytes and refuses a blob
that no longer matches its digest.
"""

from __future__ import annotations

from ._blobs import BlobCorruptError, BlobStore, LocalBlobStore
from ._hub import Hub
from ._registry import ModelRecord, Registry, SQLiteRegistry
from ._signing import (
    ModelSignature,
    load_publisher_key,
    parse_model_signature,
    publisher_id,
    sign_model,
    verify_model_signature,
)

__all__ = [
    "BlobCorruptError",
    "BlobStore",
    "Hub",
    "LocalBlobStore",
    "ModelRecord",
    "ModelSignature",
    "Registry",
    "SQLiteRegistry",
    "load_publisher_key",
    "parse_model_signature",
    "publisher_id",
    "sign_model",
    "verify_model_signature",
]
