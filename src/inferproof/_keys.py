"""Ed25519 node keys: raw public bytes, key ids, PEM files created 0600 on first use."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._canonical import sha256_digest
from ._files import write_private
from .errors import InputError

__all__ = ["key_id", "load_ed25519_private", "load_or_create_ed25519", "raw_public"]


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_raw: bytes) -> str:
    """A node key's id: ``sha256:<hex>`` of its 32 raw public-key bytes."""
    return sha256_digest(public_raw)


def load_or_create_ed25519(path: Path) -> Ed25519PrivateKey:
    """Load a PEM Ed25519 private key, creating it (0600) on first use."""
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            write_private(path, pem)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            return key
    return load_ed25519_private(path)


def load_ed25519_private(path: Path) -> Ed25519PrivateKey:
    """Read a PEM Ed25519 private key; anything else is an :class:`InputError`."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path} is not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path} is not an Ed25519 private key")
    return key
