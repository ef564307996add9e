"""The storage options (``--database``, ``--blobs``, ``--s3-endpoint``, ``--config``)
shared by ``serve``, ``token`` and ``migrate``; see :class:`inferproof.engine.Storage`
for the order they are read in (command line, environment, config file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from .._files import default_home
from ..engine import Storage
from ..log import Log, open_default_log
from ..node import Tokens, TokenStore
from ._common import console, err_console, handle_errors, is_tty

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


def home_log() -> Log:
    """This node's log: in its database when the environment or the config file names
    one (a node serving with --database), else ``log/log.sqlite`` in the home."""
    return open_default_log(default_home(), store=resolve_storage().open_log_store())


def token_store(storage: Storage) -> Tokens:
    """The node's tokens: in the database when there is one, else the home's file."""
    if storage.database is None:
        return TokenStore(default_home())
    from ..stores import SQLTokenStore

    return SQLTokenStore(storage.database)


@handle_errors
def migrate(
    database: DatabaseOpt = None,
    blobs: BlobsOpt = None,
    s3_endpoint: S3EndpointOpt = None,
    config_file: ConfigOpt = None,
) -> None:
    """Copy this home (registry, log, bundles, tokens, workflows; blobs with --blobs)
    into PostgreSQL and S3, then check the copy: every log entry, the same roots.

    Stop the node first. Afterwards serve with the same --database and --blobs."""
    from ..node import migrate as run

    storage = resolve_storage(database, blobs, s3_endpoint, config_file)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err_console, disable=not is_tty()) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        done = run(default_home(), storage, progress)
    console.print(
        f"ok: {done.blobs} blobs, {done.models} model versions, {done.log_size} log entries "
        f"({done.checkpoints} checkpoints, root {done.root or '-'}), {done.bundles} bundles, "
        f"{done.tokens} tokens, {done.workflows} workflow rows copied and checked",
        markup=False,
    )
