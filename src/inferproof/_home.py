"""The embedded default's home folder and the node's signing key.

Everything the embedded default keeps lives under ``INFERPROOF_HOME`` (default
``~/.inferproof``): the blob store, the SQLite registry, keys (0600), the log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._canonical import sha256_digest
from .errors import InputError


def default_home() -> Path:
    """``$INFERPROOF_HOME`` or ``~/.inferproof``."""
    env = os.environ.get("INFERPROOF_HOME")
    return Path(env).expanduser() if env else Path.home() / ".inferproof"


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


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
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path} is not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path} is not an Ed25519 private key")
    return key


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_raw: bytes) -> str:
    """A node key's id: ``sha256:<hex>`` of its 32 raw public-key bytes."""
    return sha256_digest(public_raw)


@dataclass(frozen=True)
class Home:
    """Paths of the embedded default under one root folder.

    Example::

        home = Home.open()          # $INFERPROOF_HOME or ~/.inferproof
        key = home.node_key()       # created on first use, mode 0600
    """

    root: Path

    @classmethod
    def open(cls, root: Path | None = None) -> Home:
        root = (root or default_home()).expanduser()
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(root)

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def registry(self) -> Path:
        return self.root / "registry.sqlite"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def node_key(self) -> Ed25519PrivateKey:
        return load_or_create_ed25519(self.keys / "node.key")
