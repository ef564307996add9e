"""The keys an Oblivious HTTP gateway has seen, in SQL, shared by every node process on
one database.

A gateway refuses a sealed request it saw before (RFC 9458 section 6.5.1). Each sealed
request starts with a fresh ephemeral public key, so the key identifies the request;
the gateway records it here and refuses it when it is already recorded. The record
must outlive the process and be the same for every worker, or a replay sent to
another worker, or after a restart, would pass.

Recording is one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` on the key's primary key: the
database lets exactly one of any number of concurrent inserts of one key through
(PostgreSQL's unique index makes the others wait for it and then do nothing; SQLite
takes one writer at a time), so two workers given the same request at once cannot
both accept it. Only the key's SHA-256 is stored, a fixed 32 bytes whatever the KEM.

Rows older than the caller's horizon are pruned now and then (every
:data:`PRUNE_EVERY` recordings by this store, or when ``now`` moved
:data:`PRUNE_SECONDS` past the last prune), at most :data:`PRUNE_BATCH` rows at a
time, in the recording's transaction: a prune that fails fails the recording with it.
"""

from __future__ import annotations

import hashlib
import math
import threading

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..errors import InputError
from ._errors import guarded, open_engine, reading, writing

__all__ = ["PRUNE_BATCH", "PRUNE_EVERY", "PRUNE_SECONDS", "SQLReplayStore"]

# Pruning: often enough that the table holds little more than the horizon's rows, and
# each prune removes up to 8 times the rows recorded since the last, so it keeps up.
PRUNE_EVERY = 256
PRUNE_SECONDS = 60.0
PRUNE_BATCH = 2048
_WHAT = "replay store"

_META = sa.MetaData()
_SEEN = sa.Table(
    "ohttp_seen", _META,
    sa.Column("digest", sa.LargeBinary(32), primary_key=True),  # SHA-256 of the key
    sa.Column("seen", sa.Double, nullable=False),  # the recorder's time.time()
    sa.Index("ohttp_seen_by_time", "seen"),  # what pruning looks rows up by
)  # fmt: skip


class SQLReplayStore:
    """Record the keys of sealed requests, once each, in SQLite or PostgreSQL (module
    docs).

    ``url`` is ``postgresql://...`` or ``sqlite:///path``; ``engine`` replaces the one
    made from it. Database failures raise :class:`~inferproof.stores.StoreUnavailable`
    (try again later) or :class:`~inferproof.errors.Error`; neither records anything.

    Example::

        store = SQLReplayStore("postgresql://inferproof@db/inferproof")
        assert store.first_seen(enc, time.time(), horizon=600.0)
        assert not store.first_seen(enc, time.time(), horizon=600.0)  # a replay
    """

    def __init__(self, url: str, *, engine: sa.Engine | None = None) -> None:
        # FULL: a recording the node acknowledged must survive a power loss, or the
        # restarted node would accept that request again.
        self.engine = open_engine(url, engine, _META, _WHAT, synchronous="FULL")
        self._read = reading(self.engine)
        self._lock = threading.Lock()
        self._since_prune = 0
        self._pruned_at = -math.inf

    def close(self) -> None:
        self.engine.dispose()

    def first_seen(self, key: bytes, now: float, horizon: float) -> bool:
        """Record ``key`` at ``now``; False when it was recorded before (a replay).

        Rows recorded before ``now - horizon`` may be removed by this call or a later
        one; until its row is removed, a key counts as seen however old it is."""
        if not (math.isfinite(now) and math.isfinite(horizon) and horizon >= 0):
            raise InputError(f"now and horizon must be finite, horizon >= 0: {now!r}, {horizon!r}")
        row = {"digest": hashlib.sha256(key).digest(), "seen": now}
        prune = self._prune_due(now)
        with guarded(_WHAT), writing(self.engine) as c:
            recorded = c.execute(self._insert().values(**row)).first() is not None
            if prune:
                self._prune(c, now - horizon)
        with self._lock:  # counted once committed: a failed call prunes at the next
            self._since_prune = 0 if prune else self._since_prune + 1
            self._pruned_at = now if prune else self._pruned_at
        return recorded

    def count(self) -> int:
        """How many keys are recorded now (for operators and tests)."""
        with guarded(_WHAT), self._read.connect() as c:
            return int(c.execute(sa.select(sa.func.count()).select_from(_SEEN)).scalar_one())

    def seen_at(self, key: bytes) -> float | None:
        """When ``key`` was recorded, or None if it is not (or no longer) recorded."""
        query = sa.select(_SEEN.c.seen).where(_SEEN.c.digest == hashlib.sha256(key).digest())
        with guarded(_WHAT), self._read.connect() as c:
            found = c.execute(query).scalar_one_or_none()
        return None if found is None else float(found)

    def prune(self, now: float, horizon: float) -> int:
        """Remove up to :data:`PRUNE_BATCH` rows recorded before ``now - horizon`` at
        once; return how many went."""
        with guarded(_WHAT), writing(self.engine) as c:
            return self._prune(c, now - horizon)

    def _insert(self) -> sa.Insert:
        # INSERT ... ON CONFLICT DO NOTHING RETURNING returns the row written, or none
        # when the key was there: the uniqueness check is the database's own. (The
        # statement's rowcount is not it: SQLAlchemy reports -1 for it on psycopg.)
        if self.engine.dialect.name == "postgresql":
            pg = postgresql.insert(_SEEN).on_conflict_do_nothing(index_elements=["digest"])
            return pg.returning(_SEEN.c.digest)
        lite = sqlite.insert(_SEEN).on_conflict_do_nothing(index_elements=["digest"])
        return lite.returning(_SEEN.c.digest)

    def _prune_due(self, now: float) -> bool:
        # Two threads may both find a prune due; the second then removes less or nothing.
        with self._lock:
            return self._since_prune + 1 >= PRUNE_EVERY or now - self._pruned_at >= PRUNE_SECONDS

    def _prune(self, c: sa.Connection, cutoff: float) -> int:
        oldest = (
            sa.select(_SEEN.c.digest).where(_SEEN.c.seen < cutoff)
            .order_by(_SEEN.c.seen).limit(PRUNE_BATCH)
        )  # fmt: skip
        if c.dialect.name == "postgresql":
            # Rows another worker is pruning at this moment are left to it: two
            # DELETEs locking the same rows in different orders could deadlock.
            oldest = oldest.with_for_update(skip_locked=True)
        done = c.execute(_SEEN.delete().where(_SEEN.c.digest.in_(oldest)))
        return int(done.rowcount)
