"""The model registry: names and versions pointing at content digests.

Behind the :class:`Registry` Protocol so PostgreSQL can replace SQLite; the
default keeps one SQLite file in WAL mode under the home folder.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError
from ..runtime import TensorSpec

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
LATEST = "latest"


# Lookups a RecordCache keeps at most (it empties when full): one per name, version
# and digest inferences name, far below this in practice.
_MAX_CACHED = 4096
_Key = tuple[str, str, str | None]


class RecordCache:
    """Registry lookups kept for ``seconds`` in this process.

    Every inference resolves its model, often twice (its request is checked, then
    run), so registries cache lookups: a push through the same registry object empties
    the cache at once; one through another process (a CLI beside a node, another node
    on a shared database) is seen within ``seconds``. A cached record can only be
    stale in what a push may change: where ``latest`` or a bare name points, and a
    signature added to an unsigned version.

    Example::

        cache = RecordCache(1.0)
        record = cache.get(("name", "risk", "1"), lambda: registry_lookup("risk", "1"))
    """

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds
        self._items: dict[_Key, tuple[float, ModelRecord | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: _Key, load: Callable[[], ModelRecord | None]) -> ModelRecord | None:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and now - hit[0] < self.seconds:
                return hit[1]
        record = load()
        with self._lock:
            if len(self._items) >= _MAX_CACHED:
                self._items.clear()
            self._items[key] = (now, record)
        return record

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def check_name(value: str, what: str) -> str:
    if not _NAME_RE.match(value):
        raise InputError(
            f"{what} {value!r:.60} is invalid: use 1-128 letters, digits, '.', '_' or '-'"
        )
    return value


@dataclass(frozen=True)
class ModelRecord:
    """What the hub knows of one model version."""

    digest: str
    name: str
    version: str
    size: int
    format: str
    created_at: float
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    signature_digest: str | None = None
    publisher: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "name": self.name,
            "version": self.version,
            "size": self.size,
            "format": self.format,
            "created_at": self.created_at,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            "signature_digest": self.signature_digest,
            "publisher": self.publisher,
        }


class Registry(Protocol):
    """Names, versions and signatures of models; bytes live in a BlobStore."""

    def add(self, record: ModelRecord) -> ModelRecord: ...
    def by_digest(self, digest: str) -> ModelRecord | None: ...
    def by_name(self, name: str, version: str | None = None) -> ModelRecord | None: ...
    def list(self) -> list[ModelRecord]: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    format TEXT NOT NULL,
    created_at REAL NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    signature_digest TEXT,
    publisher TEXT,
    PRIMARY KEY (name, version)
);
CREATE INDEX IF NOT EXISTS models_digest ON models(digest);
"""


class SQLiteRegistry:
    """The default registry: one SQLite file (WAL), safe across threads and processes;
    lookups cached for ``cache_seconds`` (:class:`RecordCache`)."""

    def __init__(self, path: Path, *, cache_seconds: float = 1.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._cache = RecordCache(cache_seconds)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def _row(row: tuple[Any, ...]) -> ModelRecord:
        name, version, digest, size, fmt, created, inputs, outputs, sig, pub = row
        return ModelRecord(
            digest=digest,
            name=name,
            version=version,
            size=size,
            format=fmt,
            created_at=created,
            inputs=tuple(TensorSpec.from_json(t) for t in json.loads(inputs)),
            outputs=tuple(TensorSpec.from_json(t) for t in json.loads(outputs)),
            signature_digest=sig,
            publisher=pub,
        )

    _COLS = (
        "name, version, digest, size, format, created_at, inputs, outputs, "
        "signature_digest, publisher"
    )

    def add(self, record: ModelRecord) -> ModelRecord:
        """Insert ``record``; the same bytes under the same name:version is a no-op.

        Versions are immutable except ``latest``, which moves to the newest push.
        A signature added to an unsigned version is kept; one already recorded is
        never replaced (review, low: a push could swap the signature of a version).
        """
        check_name(record.name, "model name")
        check_name(record.version, "version")
        try:
            return self._add(record)
        finally:
            self._cache.clear()  # what this push changed is seen here at once

    def _add(self, record: ModelRecord) -> ModelRecord:
        with self._lock, self._db:
            existing = self._by_name(record.name, record.version)
            if existing is not None:
                if existing.digest != record.digest and record.version != LATEST:
                    raise InputError(
                        f"{record.ref} already names {existing.digest}; versions are "
                        "immutable, push under a new --version"
                    )
                if existing.digest == record.digest and (
                    record.signature_digest is None
                    or record.signature_digest == existing.signature_digest
                ):
                    return existing
                if existing.signature_digest is not None and record.version != LATEST:
                    raise InputError(
                        f"{record.ref} is already signed ({existing.signature_digest}); a "
                        "version's signature is immutable, push under a new --version"
                    )
                self._db.execute(
                    "DELETE FROM models WHERE name = ? AND version = ?",
                    (record.name, record.version),
                )
            self._db.execute(
                f"INSERT INTO models ({self._COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    record.name,
                    record.version,
                    record.digest,
                    record.size,
                    record.format,
                    record.created_at or time.time(),
                    json.dumps([t.to_json() for t in record.inputs]),
                    json.dumps([t.to_json() for t in record.outputs]),
                    record.signature_digest,
                    record.publisher,
                ),
            )
        found = self._by_name(record.name, record.version)
        assert found is not None
        return found

    def by_digest(self, digest: str) -> ModelRecord | None:
        return self._cache.get(("digest", digest, None), lambda: self._by_digest(digest))

    def by_name(self, name: str, version: str | None = None) -> ModelRecord | None:
        return self._cache.get(("name", name, version), lambda: self._by_name(name, version))

    def _by_digest(self, digest: str) -> ModelRecord | None:
        row = self._db.execute(
            f"SELECT {self._COLS} FROM models WHERE digest = ? "
            "ORDER BY signature_digest IS NULL, created_at DESC LIMIT 1",
            (digest,),
        ).fetchone()
        return self._row(row) if row else None

    def _by_name(self, name: str, version: str | None) -> ModelRecord | None:
        if version is None:
            row = self._db.execute(
                f"SELECT {self._COLS} FROM models WHERE name = ? ORDER BY created_at DESC LIMIT 1",
                (name,),
            ).fetchone()
        else:
            row = self._db.execute(
                f"SELECT {self._COLS} FROM models WHERE name = ? AND version = ?",
                (name, version),
            ).fetchone()
        return self._row(row) if row else None

    def list(self) -> list[ModelRecord]:
        rows = self._db.execute(
            f"SELECT {self._COLS} FROM models ORDER BY name, created_at"
        ).fetchall()
        return [self._row(r) for r in rows]
