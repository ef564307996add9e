"""The storage options (``--database``, ``--blobs``, ``--s3-endpoint``, ``--config``)
shared by ``serve``, ``token`` and ``migrate``; see :class:`inferproof.engine.Storage`
for the order they are read in (command line, environment, config file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._files import default_home
from ..engine import Storage
from ..node import TokenStore

# No envvar= here: Storage.resolve reads the environment itself, so the command line,
# the library and the node's worker processes agree on one order.
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Keep the registry, log, tokens, bundles and jobs in PostgreSQL: "
        "postgresql://user@host/db (env INFERPROOF_DATABASE).",
    ),
]
BlobsOpt = Annotated[
    str | None,
    typer.Option(
        "--blobs",
        help="Keep model and ZK blobs in S3: s3://bucket/prefix (env INFERPROOF_BLOBS).",
    ),
]
S3EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint",
        help="An S3-compatible server (MinIO, Ceph RGW); AWS by default "
        "(env INFERPROOF_S3_ENDPOINT).",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="A TOML file with a [storage] table (default: INFERPROOF_HOME/config.toml).",
        dir_okay=False,
    ),
]


def resolve_storage(
    database: str | None = None,
    blobs: str | None = None,
    s3_endpoint: str | None = None,
    config: Path | None = None,
) -> Storage:
    """The storage these options, the environment and the config file name."""
    return Storage.resolve(default_home(), config=config, database=database, blobs=blobs,
                           s3_endpoint=s3_endpoint)  # fmt: skip


def token_store(storage: Storage) -> TokenStore:
    """The node's tokens: in the database when there is one, else the home's file."""
    if storage.database is None:
        return TokenStore(default_home())
    from ..stores import SQLTokenStore

    return SQLTokenStore(storage.database)  # type: ignore[no-any-return]
