"""Where a node keeps its state: the embedded default, or PostgreSQL and S3.

A :class:`Storage` names a database (``postgresql://...``: the model registry, the
transparency log, tokens, bundles, jobs and workflows) and a blob store
(``s3://bucket/prefix``: models and ZK artifacts). Left unset, each is the embedded
default under ``INFERPROOF_HOME``: SQLite files and a folder.

Each setting comes from the first of: the command line, the environment
(``INFERPROOF_DATABASE``, ``INFERPROOF_BLOBS``, ``INFERPROOF_S3_ENDPOINT``), the
config file (``--config FILE``, else ``INFERPROOF_HOME/config.toml`` when it exists)::

    [storage]
    database = "postgresql://inferproof@db.internal/inferproof"
    blobs = "s3://models/prod"
    s3_endpoint = "https://minio.internal:9000"

What a node signs with stays in the home folder on every node (``keys/``): nodes that
share one log need the same ``keys/log.key`` (its public key is recorded in the
database, and a node with another key is refused), and each node has its own
``keys/node.key``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from ..hub import BlobStore, Registry
    from ..log import LogStore

__all__ = ["CONFIG_FILE", "Storage"]

# The config file's name in the home folder, read when no --config is given.
CONFIG_FILE = "config.toml"
# A config file is a few lines; anything larger is not one.
_MAX_CONFIG_BYTES = 64 * 1024
# What stores.is_postgres accepts (checked here without importing the drivers).
_POSTGRES = ("postgresql://", "postgres://", "postgresql+psycopg://")
_KEYS = ("database", "blobs", "s3_endpoint")
_ENV = {"database": "INFERPROOF_DATABASE", "blobs": "INFERPROOF_BLOBS",
        "s3_endpoint": "INFERPROOF_S3_ENDPOINT"}  # fmt: skip


def _read_config(path: Path) -> dict[str, str]:
    """The ``[storage]`` table of a config file; every key checked."""
    try:
        if path.stat().st_size > _MAX_CONFIG_BYTES:
            raise InputError(f"{path}: a config file is at most {_MAX_CONFIG_BYTES} bytes")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read the config file {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path} is not a TOML config file: {exc}") from None
    unknown = set(data) - {"storage"}
    if unknown:
        raise InputError(f"{path}: unknown section(s) {sorted(unknown)}; only [storage]")
    table = data.get("storage", {})
    if not isinstance(table, dict):
        raise InputError(f"{path}: storage must be a table")
    bad = set(table) - set(_KEYS)
    if bad:
        raise InputError(f"{path}: unknown storage key(s) {sorted(bad)}; known: {list(_KEYS)}")
    for key, value in table.items():
        if not isinstance(value, str) or not value:
            raise InputError(f"{path}: storage.{key} must be a non-empty string")
    return dict(table)


@dataclass(frozen=True)
class Storage:
    """A node's database and blob store (None: the embedded default for that part).

    Example::

        storage = Storage.resolve(home, database="postgresql://db/inferproof")
        node = LocalNode(home, storage=storage)
    """

    database: str | None = None
    blobs: str | None = None
    s3_endpoint: str | None = None

    def __post_init__(self) -> None:
        # stores/ is imported only when a setting names it: the embedded default
        # needs none of its drivers (the scale extra).
        if self.database is not None and not self.database.startswith(_POSTGRES):
            raise InputError(
                f"the database must be a postgresql:// URL, not {self.database[:40]!r} "
                "(leave it unset for the embedded SQLite files)"
            )
        if self.blobs is not None:
            from ..stores import parse_s3_url

            parse_s3_url(self.blobs)
        if self.s3_endpoint is not None and self.blobs is None:
            raise InputError("an S3 endpoint needs blobs in S3 (--blobs s3://bucket/prefix)")
        if self.s3_endpoint is not None and not self.s3_endpoint.startswith(
            ("http://", "https://")
        ):
            raise InputError("the S3 endpoint is an http:// or https:// URL")

    @property
    def embedded(self) -> bool:
        """Whether everything is the embedded default (SQLite files and a folder)."""
        return self.database is None and self.blobs is None

    @classmethod
    def resolve(
        cls,
        home: Path,
        *,
        config: Path | None = None,
        environ: dict[str, str] | None = None,
        **given: str | None,
    ) -> Storage:
        """The storage from ``given`` (command-line values), else the environment,
        else the config file (``config``, or ``home/config.toml`` if present)."""
        unknown = set(given) - set(_KEYS)
        if unknown:  # a misspelt setting must not silently mean the embedded default
            raise InputError(f"unknown storage setting(s) {sorted(unknown)}; known: {list(_KEYS)}")
        env = os.environ if environ is None else environ
        path = config if config is not None else home / CONFIG_FILE
        from_file = _read_config(path) if config is not None or path.is_file() else {}
        values: dict[str, Any] = {}
        for key in _KEYS:
            values[key] = given.get(key) or env.get(_ENV[key]) or from_file.get(key)
        return cls(**values)

    def environ(self) -> dict[str, str]:
        """The environment variables that give a child process this storage."""
        values = {"database": self.database, "blobs": self.blobs,
                  "s3_endpoint": self.s3_endpoint}  # fmt: skip
        return {_ENV[k]: v for k, v in values.items() if v}

    # -- opening the stores ---------------------------------------------------------------
    def open_blobs(self) -> BlobStore | None:
        """The S3 blob store, or None for the home's folder."""
        if self.blobs is None:
            return None
        from ..stores import S3BlobStore

        return S3BlobStore(self.blobs, endpoint_url=self.s3_endpoint)

    def open_registry(self) -> Registry | None:
        """The registry in the database, or None for the home's SQLite file."""
        if self.database is None:
            return None
        from ..stores import SQLRegistry, sqlalchemy_url

        return SQLRegistry(sqlalchemy_url(self.database))

    def open_log_store(self) -> LogStore | None:
        """The log's store in the database, or None for the home's SQLite file."""
        if self.database is None:
            return None
        from ..stores import PostgresLogStore

        return PostgresLogStore(self.database)
