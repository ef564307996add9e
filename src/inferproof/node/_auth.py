"""Bearer tokens for the node's write endpoints, stored hashed under INFERPROOF_HOME.

A token is ``ipt_`` followed by 32 random bytes in base64url (256 bits from
:func:`secrets.token_urlsafe`). Only its SHA-256 is stored, in ``node/tokens``
(mode 0600), one ``<hex> <created> <label>`` line per token. A fast hash is
enough here: slow password hashes (scrypt, Argon2) exist to make guessing
low-entropy passwords expensive, and guessing a 256-bit random value is
infeasible however fast each guess is (NIST SP 800-63B section 5.1.1.2 asks for
salted, costly hashing of memorised secrets, not of random authenticators).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path
from typing import Protocol

from .._files import locked, write_atomic
from ..errors import InputError
from ..stores import TOKEN_BYTES, TOKEN_PREFIX, TokenInfo, hash_token

__all__ = ["TOKEN_BYTES", "TOKEN_PREFIX", "TokenInfo", "TokenStore", "Tokens", "hash_token"]

_MAX_LABEL = 64


class Tokens(Protocol):
    """What the node asks of a token store: :class:`TokenStore` (a file under the home
    folder) or :class:`~inferproof.stores.SQLTokenStore` (one database shared by
    every node process on it).

    Example::

        def admitted(tokens: Tokens, bearer: str | None) -> bool:
            return tokens.check(bearer) is not None
    """

    def create(self, label: str = "") -> str: ...

    def revoke(self, prefix: str) -> TokenInfo: ...

    def check(self, token: str | None) -> str | None: ...

    def list(self) -> list[TokenInfo]: ...


class TokenStore:
    """Create, list, revoke and check tokens in ``<home>/node/tokens``.

    The file is re-read when it changes, so ``inferproof token create`` takes effect
    on a running server.

    Example::

        store = TokenStore(Path("~/.inferproof").expanduser())
        token = store.create("ci")          # shown once, never stored
        assert store.check(token)
    """

    def __init__(self, home: str | os.PathLike[str]) -> None:
        home = Path(home)
        self.path = home / "node" / "tokens"
        # Create and revoke read, change and rewrite the file: other processes
        # (`inferproof token create` beside a running node) take the same file lock.
        self._lockfile = home / "node" / "tokens.lock"
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._hashes: frozenset[str] = frozenset()

    def _read(self) -> list[TokenInfo]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            parts = line.split(" ", 2)
            if len(parts) != 3 or len(parts[0]) != 64:
                raise InputError(f"{self.path}: malformed token line")
            out.append(TokenInfo(parts[0], float(parts[1]), parts[2]))
        return out

    def _write(self, tokens: list[TokenInfo]) -> None:
        text = "".join(f"{t.hash} {t.created:.0f} {t.label}\n" for t in tokens)
        write_atomic(self.path, text.encode())

    def create(self, label: str = "") -> str:
        """Make a new token, store its hash, and return the token (shown only once)."""
        label = " ".join(label.split())[:_MAX_LABEL] or "-"
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        with self._lock, locked(self._lockfile):
            tokens = self._read()
            tokens.append(TokenInfo(hash_token(token), time.time(), label))
            self._write(tokens)
        return token

    def list(self) -> list[TokenInfo]:
        return self._read()

    def revoke(self, prefix: str) -> TokenInfo:
        """Remove the one token whose hash starts with ``prefix`` (at least 8 hex digits)."""
        if len(prefix) < 8:
            raise InputError("give at least 8 hex digits of the token's hash")
        with self._lock, locked(self._lockfile):
            tokens = self._read()
            hits = [t for t in tokens if t.hash.startswith(prefix.lower())]
            if len(hits) != 1:
                raise InputError(f"{len(hits)} tokens match {prefix!r}; need exactly one")
            self._write([t for t in tokens if t is not hits[0]])
        return hits[0]

    def _current(self) -> frozenset[str]:
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            with self._lock:
                self._hashes = frozenset(t.hash for t in self._read()) if stamp else frozenset()
                self._stamp = stamp
        return self._hashes

    def check(self, token: str | None) -> str | None:
        """The token's hash if it is a valid token, else None."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        digest = hash_token(token)
        # A set lookup on the hash leaks no useful timing: the caller cannot choose
        # the bytes of the hash it probes with (SHA-256 preimage resistance).
        return digest if digest in self._current() else None
