"""Implementations of the storage Protocols the stages define.

The embedded default is SQLite under the home folder. :class:`SQLWorkflowStore` is
written against SQLAlchemy Core, so the same code serves SQLite and PostgreSQL.
:class:`S3BlobStore` keeps content-addressed blobs in any S3-compatible bucket, and
:class:`SQLRegistry` the model registry in SQLite or PostgreSQL.

Example::

    from inferproof.stores import SQLWorkflowStore
    store = SQLWorkflowStore("sqlite:///" + str(home / "workflows.sqlite"))
"""

from __future__ import annotations

from ._bundles import BundleQuery, BundleSummary, SQLBundleStore, is_id, new_id
from ._errors import create_tables, sqlite_outage
from ._jobs import (
    CANCELLED_ERROR,
    LOST_ERROR,
    MAX_LINE_CHARS,
    MAX_PROGRESS_LINES,
    SHUTDOWN_ERROR,
    JobRecord,
    SQLJobStore,
)
from ._pglog import PostgresLogStore, StoreUnavailable
from ._registry import SQLRegistry
from ._replays import SQLReplayStore
from ._s3 import S3BlobStore, parse_s3_url
from ._tokens import TOKEN_BYTES, TOKEN_PREFIX, SQLTokenStore, TokenInfo, hash_token
from ._url import is_postgres, libpq_url, sqlalchemy_url
from ._workflows import Claim, SQLWorkflowStore, StoredRun, StoredWorkflow, copy_workflows

__all__ = [
    "CANCELLED_ERROR",
    "LOST_ERROR",
    "MAX_LINE_CHARS",
    "MAX_PROGRESS_LINES",
    "SHUTDOWN_ERROR",
    "TOKEN_BYTES",
    "TOKEN_PREFIX",
    "BundleQuery",
    "BundleSummary",
    "Claim",
    "JobRecord",
    "PostgresLogStore",
    "S3BlobStore",
    "SQLBundleStore",
    "SQLJobStore",
    "SQLRegistry",
    "SQLReplayStore",
    "SQLTokenStore",
    "SQLWorkflowStore",
    "StoreUnavailable",
    "StoredRun",
    "StoredWorkflow",
    "TokenInfo",
    "copy_workflows",
    "create_tables",
    "hash_token",
    "is_id",
    "is_postgres",
    "libpq_url",
    "new_id",
    "parse_s3_url",
    "sqlalchemy_url",
    "sqlite_outage",
]
