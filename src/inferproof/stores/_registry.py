"""The model registry in SQL: names, versions and signatures on SQLite or PostgreSQL.

The same rules as the embedded :class:`~inferproof.hub.SQLiteRegistry`: versions are
immutable except ``latest``, which moves to the newest push, and a version's
signature, once recorded, is never replaced. With many writers (several node
processes on one PostgreSQL), a push reads the version's row ``FOR UPDATE`` in the
transaction that writes it; two first pushes of one version meet on the primary key,
and the loser applies the rules again to what the winner wrote.

Lookups are cached for ``cache_seconds`` (1 s by default) in each process, as the
embedded registry's are (:class:`~inferproof.hub.RecordCache`).
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..errors import Error, InputError
from ..hub import LATEST, ModelRecord, RecordCache, check_name
from ..runtime import TensorSpec
from ._errors import guarded, open_engine, reading, writing

__all__ = ["SQLRegistry"]

_WHAT = "model registry"

_META = sa.MetaData()
_MODELS = sa.Table(
    "models", _META,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.String(128), primary_key=True),
    sa.Column("digest", sa.String(80), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("outputs", sa.Text, nullable=False),
    sa.Column("signature_digest", sa.String(80)),
    sa.Column("publisher", sa.Text),
)  # fmt: skip
_NEWEST = sa.desc(_MODELS.c.created_at)


def _record(row: Any) -> ModelRecord:
    return ModelRecord(
        digest=row.digest, name=row.name, version=row.version, size=int(row.size),
        format=row.format, created_at=float(row.created_at),
        inputs=tuple(TensorSpec.from_json(t) for t in json.loads(row.inputs)),
        outputs=tuple(TensorSpec.from_json(t) for t in json.loads(row.outputs)),
        signature_digest=row.signature_digest, publisher=row.publisher,
    )  # fmt: skip


class SQLRegistry:
    """A :class:`~inferproof.hub.Registry` on any SQLAlchemy URL (module docs).

    Example::

        registry = SQLRegistry("postgresql+psycopg://inferproof@db/inferproof")
        hub = Hub(S3BlobStore("s3://models/prod"), registry)
    """

    def __init__(
        self, url: str, *, engine: sa.Engine | None = None, cache_seconds: float = 1.0
    ) -> None:
        try:
            self.engine = open_engine(url, engine, _META, _WHAT, synchronous="FULL")
        except Error as exc:
            raise Error(f"model registry {url!r:.80}: {exc}") from None
        self._read = reading(self.engine)
        self._cache = RecordCache(cache_seconds)

    def close(self) -> None:
        self.engine.dispose()

    def add(self, record: ModelRecord) -> ModelRecord:
        """Insert ``record`` under the registry's rules (module docs)."""
        check_name(record.name, "model name")
        check_name(record.version, "version")
        with guarded(_WHAT):
            for _ in range(2):  # the second pass sees what a concurrent first push wrote
                try:
                    with writing(self.engine) as c:
                        self._add(c, record)
                    break
                except IntegrityError:
                    continue
            else:
                raise Error(f"{record.ref}: the registry kept changing under this push")
        self._cache.clear()  # what this push changed is seen here at once
        found = self.by_name(record.name, record.version)
        assert found is not None
        return found

    def _add(self, c: sa.Connection, record: ModelRecord) -> None:
        key = (_MODELS.c.name == record.name) & (_MODELS.c.version == record.version)
        row = c.execute(sa.select(_MODELS).where(key).with_for_update()).first()
        if row is not None:
            existing = _record(row)
            if existing.digest != record.digest and record.version != LATEST:
                raise InputError(f"{record.ref} already names {existing.digest}; versions are "
                                 "immutable, push under a new --version")  # fmt: skip
            if existing.digest == record.digest and record.signature_digest in (
                None, existing.signature_digest
            ):  # fmt: skip
                return
            if existing.signature_digest is not None and record.version != LATEST:
                raise InputError(
                    f"{record.ref} is already signed ({existing.signature_digest}); a "
                    "version's signature is immutable, push under a new --version"
                )
            c.execute(_MODELS.delete().where(key))
        c.execute(_MODELS.insert().values(
            name=record.name, version=record.version, digest=record.digest, size=record.size,
            format=record.format, created_at=record.created_at or time.time(),
            inputs=json.dumps([t.to_json() for t in record.inputs]),
            outputs=json.dumps([t.to_json() for t in record.outputs]),
            signature_digest=record.signature_digest, publisher=record.publisher,
        ))  # fmt: skip

    def by_digest(self, digest: str) -> ModelRecord | None:
        query = (sa.select(_MODELS).where(_MODELS.c.digest == digest)
                 .order_by(_MODELS.c.signature_digest.is_(None), _NEWEST).limit(1))  # fmt: skip
        return self._cache.get(("digest", digest, None), lambda: self._one(query))

    def by_name(self, name: str, version: str | None = None) -> ModelRecord | None:
        query = sa.select(_MODELS).where(_MODELS.c.name == name)
        if version is not None:
            query = query.where(_MODELS.c.version == version)
        query = query.order_by(_NEWEST).limit(1)
        return self._cache.get(("name", name, version), lambda: self._one(query))

    def _one(self, query: sa.Select[Any]) -> ModelRecord | None:
        with guarded(_WHAT), self._read.connect() as c:
            row = c.execute(query).first()
        return _record(row) if row is not None else None

    def list(self) -> list[ModelRecord]:
        with guarded(_WHAT), self._read.connect() as c:
            rows = c.execute(sa.select(_MODELS).order_by(_MODELS.c.name, _MODELS.c.created_at))
            return [_record(r) for r in rows]
