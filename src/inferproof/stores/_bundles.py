"""The bundles a node issued, in SQL, shared by every node process on one database.

The same store as the embedded :class:`~inferproof.node._bundles.IssuedBundles`
(SQLite under the home folder): a bundle's JSON bytes under a 96-bit random id (a
capability), its receipt digest (unique: one log leaf), log index, time of issue,
the token that asked for it (``owner``, the token's hash) and, for searches, the
receipt's model and nonce. Listings are one owner's, newest first, a page at a time;
the integer ``seq`` (the embedded store's rowid) is the order and the cursor. On
PostgreSQL ``seq`` comes from a sequence, so two transactions may commit out of
``seq`` order: a listing paged while bundles are issued can miss one issued in the
meantime, never show one twice.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .._canonical import is_digest
from ..errors import InputError
from ..receipts import Bundle
from ._errors import guarded, open_engine, reading, writing

__all__ = ["MAX_PAGE", "BundleQuery", "BundleSummary", "SQLBundleStore", "is_id", "new_id"]

_WHAT = "bundle store"
# A page is at most this many summaries: node/_bundleroutes.py's MAX_PAGE (a test
# holds the two equal; stores/ may not import node/).
MAX_PAGE = 200
_MAX_CURSOR = 2**63 - 1  # seq is a BIGINT on PostgreSQL
_META = sa.MetaData()
_BUNDLES = sa.Table(
    "node_bundles", _META,
    # INTEGER PRIMARY KEY on SQLite is the rowid; a BIGSERIAL on PostgreSQL.
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("id", sa.String(24), nullable=False, unique=True),
    sa.Column("receipt_digest", sa.String(80), nullable=False, unique=True),
    sa.Column("log_index", sa.BigInteger),
    sa.Column("created", sa.Double, nullable=False),
    sa.Column("bundle", sa.LargeBinary, nullable=False),
    sa.Column("owner", sa.String(64)),
    sa.Column("model_digest", sa.String(80)),
    sa.Column("model_name", sa.Text),
    sa.Column("model_version", sa.Text),
    sa.Column("nonce", sa.Text),
)  # fmt: skip
# Every search is one owner's; each index ends in seq so a page is one index walk
# in the order bundles were issued, as the embedded store's indexes walk its rowid.
_C = _BUNDLES.c
sa.Index("node_bundles_owner", _C.owner, _C.seq)
sa.Index("node_bundles_owner_model", _C.owner, _C.model_digest, _C.seq)
sa.Index("node_bundles_owner_name", _C.owner, _C.model_name, _C.model_version, _C.seq)
sa.Index("node_bundles_owner_nonce", _C.owner, _C.nonce, _C.seq)
# One batch of an import is checked and written at a time (a bounded IN list).
_IMPORT_BATCH = 256
_SUMMARY = (_C.seq, _C.id, _C.receipt_digest, _C.log_index, _C.created, _C.model_digest,
            _C.model_name, _C.model_version, _C.nonce)  # fmt: skip


def new_id() -> str:
    """A bundle or job id: 96 random bits in hex (unguessable, so ids are capabilities)."""
    return secrets.token_hex(12)


def is_id(text: str) -> bool:
    """Whether ``text`` has the form of a :func:`new_id` id (24 lowercase hex digits)."""
    return len(text) == 24 and all(c in "0123456789abcdef" for c in text)


@dataclass(frozen=True)
class BundleQuery:
    """One caller's search: every field set narrows it (``model`` is a digest, a name
    (every version) or ``name:version``; ``since`` inclusive, ``until`` exclusive, in
    Unix seconds of issue); ``before`` is the cursor of the previous page."""

    owner: str
    model: str | None = None
    nonce: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    before: int | None = None


@dataclass(frozen=True)
class BundleSummary:
    """What a listing shows of one bundle (the bundle itself is read by id)."""

    id: str
    receipt_digest: str
    log_index: int | None
    created: float
    model_digest: str | None
    model_name: str | None
    model_version: str | None
    nonce: str | None

    def to_json(self) -> dict[str, Any]:
        model = {"digest": self.model_digest, "name": self.model_name,
                 "version": self.model_version}  # fmt: skip
        return {"id": self.id, "receipt_digest": self.receipt_digest,
                "log_index": self.log_index, "created": self.created, "model": model,
                "nonce": self.nonce}  # fmt: skip


def _indexed(data: bytes) -> dict[str, str | None]:
    """The model (digest, name, version) and nonce a search looks for, from the
    bundle's signed statement (parsed by the library's one bundle parser)."""
    receipt = Bundle.loads(data).receipt
    name, version = receipt.model.get("name"), receipt.model.get("version")
    return {
        "model_digest": receipt.model_digest,
        "model_name": name if isinstance(name, str) else None,
        "model_version": version if isinstance(version, str) else None,
        "nonce": receipt.nonce,
    }


def _conditions(query: BundleQuery) -> list[sa.ColumnElement[bool]]:
    """The WHERE of a query: node/_bundles.py's ``_where`` in SQLAlchemy's terms."""
    out = [_C.owner == query.owner]
    if query.model is not None:
        if is_digest(query.model):
            out.append(_C.model_digest == query.model)
        else:
            name, sep, version = query.model.partition(":")
            out.append(_C.model_name == name)
            if sep:
                out.append(_C.model_version == version)
    if query.nonce is not None:
        out.append(_C.nonce == query.nonce)
    if query.since is not None:
        out.append(_C.created >= query.since)
    if query.until is not None:
        out.append(_C.created < query.until)
    if query.before is not None:
        out.append(_C.seq < query.before)
    return out


class SQLBundleStore:
    """Issued bundles in SQLite or PostgreSQL (module docs).

    ``url`` is ``postgresql://...`` or ``sqlite:///path``; ``engine`` replaces the one
    made from it. Database failures raise :class:`~inferproof.stores.StoreUnavailable`
    (try again later) or :class:`~inferproof.errors.Error`.

    Example::

        store = SQLBundleStore("postgresql://inferproof@db/inferproof")
        bundle_id = store.add("sha256:...", 7, bundle_bytes, owner=token_hash)
        assert store.by_id(bundle_id) == bundle_bytes
        page, cursor = store.find(BundleQuery(owner=token_hash, model="risk:1"))
    """

    def __init__(self, url: str, *, engine: sa.Engine | None = None) -> None:
        # synchronous=NORMAL on SQLite, as the embedded store: a copy the log backs.
        self.engine = open_engine(url, engine, _META, _WHAT, synchronous="NORMAL")
        self._read = reading(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def add(
        self,
        receipt_digest: str,
        log_index: int | None,
        data: bytes,
        bundle_id: str | None = None,
        *,
        owner: str | None = None,
    ) -> str:
        """Store a bundle's JSON bytes; return its id (``bundle_id`` when the caller
        drew one with :func:`new_id` in advance, as a chat stream does for its header).
        ``owner`` is the hash of the token that asked for it (None: nobody lists it)."""
        rows = [(receipt_digest, log_index, data)]
        return self.add_many(rows, [bundle_id or new_id()], owners=[owner])[0]

    def add_many(
        self,
        rows: list[tuple[str, int | None, bytes]],
        ids: list[str] | None = None,
        *,
        owners: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Store several bundles in one transaction (all or none); return their ids."""
        ids = ids or [new_id() for _ in rows]
        owners = owners or [None] * len(rows)
        if not len(ids) == len(owners) == len(rows):
            raise InputError(f"{len(rows)} bundles need as many ids and owners, "
                             f"not {len(ids)} and {len(owners)}")  # fmt: skip
        for bundle_id, (digest, _, _) in zip(ids, rows, strict=True):
            if not is_id(bundle_id):
                raise InputError(f"bundle id {bundle_id!r:.40} is not 24 hex digits")
            if not is_digest(digest):
                raise InputError(f"receipt digest {digest!r:.80} is not sha256:<64 hex>")
        now = time.time()
        values = [
            {"id": i, "receipt_digest": d, "log_index": x, "created": now, "bundle": b,
             "owner": o, **_indexed(b)}
            for i, (d, x, b), o in zip(ids, rows, owners, strict=True)
        ]  # fmt: skip
        if not values:
            return []
        with guarded(_WHAT):
            try:
                with writing(self.engine) as c:
                    if c.dialect.name == "postgresql":
                        # The embedded store's guarantee (synchronous=NORMAL): a commit
                        # survives a killed node, maybe not a server crash or power cut,
                        # which loses only this copy of bundles whose receipts the log
                        # holds durably; in exchange no request waits for a WAL flush
                        # here ("Asynchronous Commit", PostgreSQL docs, section 28.4).
                        c.exec_driver_sql("SET LOCAL synchronous_commit = off")
                    c.execute(_BUNDLES.insert(), values)
            except IntegrityError:  # the transaction rolled back: none of the batch is kept
                raise InputError(self._taken(ids, [d for d, _, _ in rows])) from None
        return ids

    def _taken(self, ids: list[str], digests: list[str]) -> str:
        """Which of a refused batch's keys was taken (by the batch itself or the store)."""
        if len(set(digests)) < len(digests):
            return "a batch of bundles holds one receipt digest twice"
        with guarded(_WHAT), self._read.connect() as c:
            found = c.execute(sa.select(_C.receipt_digest).where(_C.receipt_digest.in_(digests))
                              .limit(1)).scalar()  # fmt: skip
        if found is not None:
            return f"the bundle of receipt {found} is already stored"
        return "a bundle id in this batch is already taken; draw ids with new_id()"

    def by_id(self, bundle_id: str) -> bytes | None:
        """A bundle's bytes by its id (None for an unknown or malformed id)."""
        if not is_id(bundle_id):
            return None
        return self._one(_C.id == bundle_id)

    def by_digest(self, receipt_digest: str, owner: str) -> bytes | None:
        """The bundle of a receipt, for the token it was issued under only: receipt
        digests are public (the log's entries), so the digest is no capability."""
        if not is_digest(receipt_digest):
            return None
        return self._one((_C.receipt_digest == receipt_digest) & (_C.owner == owner))

    def _one(self, where: sa.ColumnElement[bool]) -> bytes | None:
        with guarded(_WHAT), self._read.connect() as c:
            data = c.execute(sa.select(_C.bundle).where(where)).scalar()
        return bytes(data) if data is not None else None

    def find(self, query: BundleQuery) -> tuple[list[BundleSummary], int | None]:
        """One page of the owner's bundles, newest first, and the cursor of the next
        page (None on the last). Only ``query.owner``'s bundles are ever read."""
        if not 1 <= query.limit <= MAX_PAGE:
            raise InputError(f"a page is 1 to {MAX_PAGE} bundles, not {query.limit}")
        if query.before is not None and not 1 <= query.before <= _MAX_CURSOR:
            raise InputError(f"cursor {query.before} is out of range")
        select = (sa.select(*_SUMMARY).where(*_conditions(query))
                  .order_by(_C.seq.desc()).limit(query.limit + 1))  # fmt: skip
        with guarded(_WHAT), self._read.connect() as c:
            rows = c.execute(select).all()
        page = [BundleSummary(*row[1:]) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return page, (int(rows[query.limit - 1][0]) if more else None)

    def import_rows(
        self, rows: Iterable[tuple[BundleSummary, str | None, bytes]], *, total: int | None = None
    ) -> tuple[int, int]:
        """Copy bundles as another store holds them, each ``(summary, owner, bytes)``,
        keeping its id, receipt digest, log index, time of issue, owner and search
        fields (``inferproof migrate``); return (copied, already there).

        All in one transaction, in the given order (which becomes ``seq``'s, so a
        listing stays newest first). A row already stored with the same values is
        skipped (a re-run after a failure); one whose id or receipt digest is taken by
        another row is refused with :class:`~inferproof.errors.InputError`, and so is
        a store that ends with other than ``total`` bundles: nothing is kept.

        Example::

            copied, skipped = target.import_rows(source.export())
        """
        copied = skipped = 0
        with guarded(_WHAT), writing(self.engine) as c:
            batch: list[tuple[BundleSummary, str | None, bytes]] = []
            for row in rows:
                batch.append(row)
                if len(batch) == _IMPORT_BATCH:
                    done = _import_batch(c, batch)
                    copied, skipped, batch = copied + done, skipped + len(batch) - done, []
            done = _import_batch(c, batch)
            copied, skipped = copied + done, skipped + len(batch) - done
            there = int(c.execute(sa.select(sa.func.count()).select_from(_BUNDLES)).scalar_one())
            if total is not None and there != total:  # raised inside: rolled back
                other = there - copied - skipped
                raise InputError(f"the target holds {other} bundles that are not the "
                                 "source's; import only into an empty store")  # fmt: skip
        return copied, skipped

    def count(self) -> int:
        """How many bundles are stored."""
        with guarded(_WHAT), self._read.connect() as c:
            return int(c.execute(sa.select(sa.func.count()).select_from(_BUNDLES)).scalar_one())


def _import_row(summary: BundleSummary, owner: str | None, data: bytes) -> dict[str, Any]:
    if not is_id(summary.id):
        raise InputError(f"bundle id {summary.id!r:.40} is not 24 hex digits")
    if not is_digest(summary.receipt_digest):
        raise InputError(f"receipt digest {summary.receipt_digest!r:.80} is not sha256:<64 hex>")
    return {"id": summary.id, "receipt_digest": summary.receipt_digest,
            "log_index": summary.log_index, "created": summary.created, "bundle": data,
            "owner": owner, "model_digest": summary.model_digest,
            "model_name": summary.model_name, "model_version": summary.model_version,
            "nonce": summary.nonce}  # fmt: skip


def _import_batch(c: sa.Connection, batch: list[tuple[BundleSummary, str | None, bytes]]) -> int:
    """Write the rows of ``batch`` the store lacks; return how many. A row whose id or
    receipt digest is stored with other values raises InputError."""
    values = [_import_row(*row) for row in batch]
    if not values:
        return 0
    ids, digests = [v["id"] for v in values], [v["receipt_digest"] for v in values]
    found = c.execute(sa.select(*[col for col in _C if col.name != "seq"])
                      .where(_C.id.in_(ids) | _C.receipt_digest.in_(digests))).all()  # fmt: skip
    there = {row.id: {**row._asdict(), "bundle": bytes(row.bundle)} for row in found}
    fresh = []
    for value in values:
        have = there.get(value["id"])
        if have is None:
            if any(r.receipt_digest == value["receipt_digest"] for r in found):
                raise InputError(f"the bundle of receipt {value['receipt_digest']} is already "
                                 "stored under another id")  # fmt: skip
            fresh.append(value)
        elif have != value:
            raise InputError(f"bundle {value['id']} is already stored with other contents")
    if fresh:
        c.execute(_BUNDLES.insert(), fresh)
    return len(fresh)
