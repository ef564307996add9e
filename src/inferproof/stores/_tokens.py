"""The node's bearer tokens in SQL, shared by every node process on one database.

The same tokens and rules as the file-based :class:`~inferproof.node.TokenStore`:
``ipt_`` and 256 random bits, only the SHA-256 stored (its module docs say why that
suffices), labels folded to one line of at most 64 characters, revocation by the one
token whose hash starts with at least 8 given hex digits.

A token made by any process (or by the CLI) is accepted by all at once: a check that
misses the cache asks the database. A check that hits it does not, so a token revoked
elsewhere is refused within ``cache_seconds`` (the node checks a token on every
request; the cache keeps that off the database). Refusals are cached too, which
delays no new token: its hash was never checked before it existed (256 random bits),
and a caller repeating a wrong token costs one read per ``cache_seconds``.

Revocation is one ``DELETE ... RETURNING`` whose transaction rolls back unless it
removed exactly one row, so two processes revoking at once cannot remove two tokens,
or one token twice.
"""

from __future__ import annotations

import builtins
import hashlib
import math
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from ..errors import InputError
from ._errors import guarded, open_engine, reading, writing

__all__ = ["TOKEN_BYTES", "TOKEN_PREFIX", "SQLTokenStore", "TokenInfo", "hash_token"]

# The token format and its stored form, as node/_auth.py defines them for TokenStore.
# They are defined again here because stores/ sits below node/ in DESIGN.md's layer
# table and may not import it; tests/stores/test_tokens.py holds the two equal.
TOKEN_PREFIX = "ipt_"
# 32 bytes = 256 bits of entropy (node/_auth.py says why SHA-256 then suffices).
TOKEN_BYTES = 32
_MAX_LABEL = 64
_WHAT = "token store"
_HEX = frozenset("0123456789abcdef")
# Hashes this process checked lately, valid or not; more than this many at once
# empties the cache rather than letting it grow.
_MAX_CACHED = 4096


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """A stored token: its hash (the id shown to operators), creation time and label."""

    hash: str
    created: float
    label: str


_META = sa.MetaData()
_TOKENS = sa.Table(
    "node_tokens", _META,
    # The order tokens were made in, as TokenStore's file keeps them.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created", sa.Double, nullable=False),
    sa.Column("label", sa.String(_MAX_LABEL), nullable=False),
)  # fmt: skip


class SQLTokenStore:
    """Create, list, revoke and check node tokens in SQLite or PostgreSQL (module docs).

    ``url`` is ``postgresql://...`` or ``sqlite:///path``; ``engine`` replaces the one
    made from it. Database failures raise :class:`~inferproof.stores.StoreUnavailable`
    (try again later) or :class:`~inferproof.errors.Error`.

    Example::

        store = SQLTokenStore("postgresql://inferproof@db/inferproof")
        token = store.create("ci")           # shown once, never stored
        assert store.check(token) == hash_token(token)
        store.revoke(store.list()[-1].hash[:12])
    """

    def __init__(
        self, url: str, *, engine: sa.Engine | None = None, cache_seconds: float = 1.0
    ) -> None:
        if not (math.isfinite(cache_seconds) and cache_seconds >= 0):
            raise InputError(f"cache_seconds must be a number >= 0, not {cache_seconds!r}")
        self.cache_seconds = cache_seconds
        self.engine = open_engine(url, engine, _META, _WHAT, synchronous="FULL")
        self._read = reading(self.engine)
        self._lock = threading.Lock()
        # hash -> (valid, time.monotonic() of the read)
        self._seen: dict[str, tuple[bool, float]] = {}

    def close(self) -> None:
        self.engine.dispose()

    def create(self, label: str = "") -> str:
        """Make a new token, store its hash, and return the token (shown only once)."""
        label = " ".join(label.split())[:_MAX_LABEL] or "-"
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        row = {"hash": hash_token(token), "created": time.time(), "label": label}
        with guarded(_WHAT), writing(self.engine) as c:
            c.execute(_TOKENS.insert().values(**row))
        return token

    def revoke(self, prefix: str) -> TokenInfo:
        """Remove the one token whose hash starts with ``prefix`` (at least 8 hex digits)."""
        if len(prefix) < 8:
            raise InputError("give at least 8 hex digits of the token's hash")
        wanted = prefix.lower()
        # Only hex reaches LIKE, so the pattern has no wildcard but the final %.
        if len(wanted) > 64 or not _HEX.issuperset(wanted):
            raise InputError(f"0 tokens match {prefix!r}; need exactly one")
        cols = (_TOKENS.c.hash, _TOKENS.c.created, _TOKENS.c.label)
        delete = _TOKENS.delete().where(_TOKENS.c.hash.like(wanted + "%")).returning(*cols)
        with guarded(_WHAT), writing(self.engine) as c:
            rows = c.execute(delete).all()
            if len(rows) != 1:  # raised inside the transaction: nothing is deleted
                raise InputError(f"{len(rows)} tokens match {prefix!r}; need exactly one")
        with self._lock:
            self._seen.pop(rows[0].hash, None)
        return TokenInfo(rows[0].hash, float(rows[0].created), rows[0].label)

    def check(self, token: str | None) -> str | None:
        """The token's hash if it is a valid token, else None."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        digest = hash_token(token)
        now = time.monotonic()
        seen = self._seen.get(digest)
        if seen is not None and now - seen[1] < self.cache_seconds:
            return digest if seen[0] else None
        query = sa.select(_TOKENS.c.seq).where(_TOKENS.c.hash == digest)
        with guarded(_WHAT), self._read.connect() as c:
            found = c.execute(query).first() is not None
        with self._lock:
            if len(self._seen) >= _MAX_CACHED:
                self._seen.clear()
            self._seen[digest] = (found, now)
        return digest if found else None

    def list(self) -> builtins.list[TokenInfo]:
        """Every stored token, oldest first."""
        cols = (_TOKENS.c.hash, _TOKENS.c.created, _TOKENS.c.label)
        with guarded(_WHAT), self._read.connect() as c:
            rows = c.execute(sa.select(*cols).order_by(_TOKENS.c.seq)).all()
        return [TokenInfo(r.hash, float(r.created), r.label) for r in rows]

    def import_tokens(self, tokens: Iterable[TokenInfo], *, total: int | None = None) -> int:
        """Copy stored tokens (their hashes, times and labels; the tokens themselves
        are never known) in the given order, in one transaction (``inferproof
        migrate``); return how many were new. A token already stored with the same
        time and label is skipped (a re-run after a failure); one stored with others,
        or a store that ends with other than ``total`` tokens, is refused with
        :class:`~inferproof.errors.InputError`, and nothing is kept.

        Example::

            target.import_tokens(TokenStore(home).list())
        """
        cols = (_TOKENS.c.hash, _TOKENS.c.created, _TOKENS.c.label)
        copied = 0
        with guarded(_WHAT), writing(self.engine) as c:
            there = {r.hash: TokenInfo(r.hash, float(r.created), r.label)
                     for r in c.execute(sa.select(*cols))}  # fmt: skip
            for info in tokens:
                if len(info.hash) != 64 or not _HEX.issuperset(info.hash):
                    raise InputError(f"token hash {info.hash!r:.70} is not 64 hex digits")
                if len(info.label) > _MAX_LABEL or not math.isfinite(info.created):
                    raise InputError(f"token {info.hash[:12]}: a label of at most "
                                     f"{_MAX_LABEL} characters and a finite time")  # fmt: skip
                have = there.get(info.hash)
                if have is not None and have != info:
                    raise InputError(f"token {info.hash[:12]} is already stored with "
                                     "another time or label")  # fmt: skip
                if have is None:
                    row = {"hash": info.hash, "created": info.created, "label": info.label}
                    c.execute(_TOKENS.insert().values(**row))
                    there[info.hash] = info
                    copied += 1
            if total is not None and len(there) != total:  # raised inside: rolled back
                raise InputError(f"the target holds {len(there) - total} tokens that are "
                                 "not the source's; import only into an empty store")  # fmt: skip
        return copied
