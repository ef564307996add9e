"""The embedded default log under INFERPROOF_HOME: ``log/log.sqlite`` and ``keys/log.key``."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from ..errors import InputError
from ._log import Log
from ._note import ALG_ED25519, SignerKey
from ._store import LogStore, SQLiteLogStore

# Key files hold a private key: owner read/write only.
_KEY_MODE = 0o600


def load_or_create_key(path: Path, name_prefix: str, alg: int = ALG_ED25519) -> SignerKey:
    """Read a signer key file, or create one (0600) named ``<prefix>/<short key id>``."""
    if path.exists():
        try:
            return SignerKey.parse(path.read_text(encoding="ascii"))
        except (UnicodeDecodeError, InputError) as exc:
            raise InputError(f"{path} is not a signed-note private key: {exc}") from exc
    seed_key = SignerKey.generate("placeholder", alg)
    public = seed_key.verifier().public_key
    # The name must exist before the key ID (which hashes the name), so it carries a
    # short fingerprint of the public key instead.
    name = f"{name_prefix}/{hashlib.sha256(public).hexdigest()[:16]}"
    key = SignerKey(name, alg, seed_key.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a name of its own, then linked into place: link() fails if
    # the key exists, so of workers starting together one key wins, and the others
    # read that one complete (never a half-written file, never their own).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _KEY_MODE)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key.encode() + "\n")
        os.link(tmp, path)
    except FileExistsError:
        return SignerKey.parse(path.read_text(encoding="ascii"))
    finally:
        tmp.unlink(missing_ok=True)
    return key


def open_default_log(
    home: Path,
    *,
    batch_size: int = 1024,
    max_delay: float = 0.005,
    store: LogStore | None = None,
) -> Log:
    """Open or create the node's log: ``<home>/log/log.sqlite`` (or ``store``, such as
    a PostgreSQL one) signed by ``<home>/keys/log.key``.

    The origin (and key name) is ``inferproof.local/<16 hex of SHA-256(public key)>``.

    Example::

        with open_default_log(Path.home() / ".inferproof") as log:
            print(log.origin, log.verifier_key)
    """
    key = load_or_create_key(home / "keys" / "log.key", "inferproof.local")
    if store is None:
        store = SQLiteLogStore(home / "log" / "log.sqlite")
    return Log(store, key, batch_size=batch_size, max_delay=max_delay)
