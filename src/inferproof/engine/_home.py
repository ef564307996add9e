"""The embedded default's home folder and the node's signing key.

Everything the embedded default keeps lives under ``INFERPROOF_HOME`` (default
``~/.inferproof``): the blob store, the SQLite registry, keys (0600), the log.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .._files import default_home, write_private
from .._keys import load_or_create_ed25519
from ..errors import InputError

__all__ = ["Home"]


@dataclass(frozen=True)
class Home:
    """Paths of the embedded default under one root folder.

    Example::

        home = Home.open()          # $INFERPROOF_HOME or ~/.inferproof
        key = home.node_key()       # created on first use, mode 0600
    """

    root: Path

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None) -> Home:
        path = (Path(root) if root is not None else default_home()).expanduser()
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(path)

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

    @property
    def trust(self) -> Path:
        return self.root / "trust"

    @property
    def identity(self) -> Path:
        return self.root / "identity.json"

    @property
    def zk(self) -> Path:
        return self.root / "zk"

    def node_key(self) -> Ed25519PrivateKey:
        return load_or_create_ed25519(self.keys / "node.key")

    def webhook_key(self) -> Ed25519PrivateKey:
        """The key that signs outgoing webhooks (``keys/webhook.key``, 0600 on first use)."""
        # A key of its own, on purpose: the node key signs receipts, and a key must never
        # sign the bytes of another protocol, where a signed webhook could be passed off
        # as something the node attested (or the reverse).
        return load_or_create_ed25519(self.keys / "webhook.key")

    def ohttp_key(self) -> bytes:
        """The node's X25519 secret for Oblivious HTTP (``keys/ohttp.key``: 32 raw bytes,
        base64, 0600 on first use). A key of its own, as the webhook key is: an HPKE
        key only decrypts, and the node key only signs."""
        path = self.keys / "ohttp.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileExistsError):  # another process made it first
                write_private(path, base64.b64encode(os.urandom(32)) + b"\n")
        try:
            raw = base64.b64decode(path.read_bytes().strip(), validate=True)
        except (ValueError, binascii.Error) as exc:
            raise InputError(f"{path} is not a base64 X25519 key: {exc}") from exc
        if len(raw) != 32:
            raise InputError(f"{path} does not hold a 32-byte X25519 key")
        return raw
