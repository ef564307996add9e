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

from ._registry import SQLRegistry
from ._s3 import S3BlobStore, parse_s3_url
from ._url import is_postgres, libpq_url, sqlalchemy_url
from ._workflows import Claim, SQLWorkflowStore, StoredRun, StoredWorkflow

__all__ = [
    "Claim",
    "S3BlobStore",
    "SQLRegistry",
    "SQLWorkflowStore",
    "StoredRun",
    "StoredWorkflow",
    "is_postgres",
    "libpq_url",
    "parse_s3_url",
    "sqlalchemy_url",
]
