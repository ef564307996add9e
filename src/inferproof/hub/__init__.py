"""The model hub: content-addressed blobs, a registry of names, publisher signatures.

The hub never runs models. Every load re-hashes the bytes and refuses a blob
that no longer matches its digest.
"""

from __future__ import annotations

from ..errors import BlobCorruptError
from ._blobs import BlobStore, LocalBlobStore, MemoryBlobStore
from ._hub import Hub
from ._registry import (
    LATEST,
    ModelRecord,
    RecordCache,
    Registry,
    SQLiteRegistry,
    check_name,
)
from ._signing import (
    ModelSignature,
    check_signing_key,
    load_publisher_key,
    parse_model_signature,
    publisher_hash,
    publisher_id,
    sign_model,
    verify_model_signature,
)

__all__ = [
    "LATEST",
    "BlobCorruptError",
    "BlobStore",
    "Hub",
    "LocalBlobStore",
    "MemoryBlobStore",
    "ModelRecord",
    "ModelSignature",
    "RecordCache",
    "Registry",
    "SQLiteRegistry",
    "check_name",
    "check_signing_key",
    "load_publisher_key",
    "parse_model_signature",
    "publisher_hash",
    "publisher_id",
    "sign_model",
    "verify_model_signature",
]
