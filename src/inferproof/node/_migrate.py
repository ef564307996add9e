"""``inferproof migrate``: copy an embedded home into PostgreSQL (and S3), and check the copy.

What is copied, each part checked after it is written:

- the transparency log, first (it is the record, and a source whose log does not
  verify must leave nothing in the target): every entry and every checkpoint
  (:func:`~inferproof.log.copy_log` recomputes the tree from the entries and checks
  each signed root before copying it, in one transaction), then the copy is audited
  and compared with the source: the same checkpoints, byte for byte, the same root
  at every size;
- blobs (models, signatures, ZK artifacts), when the target has an S3 store: each one
  read back and hashed (every S3 read is checked against its digest);
- the model registry: every name and version, with its digest and signature;
- issued bundles (id, receipt digest, log index, time of issue, owner, search fields,
  bytes), then each read back by id; tokens (their hashes, times and labels);
- workflows (definitions, runs, claims).

Running it again after a failure finishes the job: a target that already holds
exactly this log (the same origin, size and checkpoints) is only compared; blobs
already in S3 and registry rows already there are kept; bundles and tokens already
copied with the same values are skipped, each part's rows in one transaction. What
is refused, with :class:`~inferproof.errors.InputError` and before any of that part
is written: a target holding another log (or this one grown since), a bundle or token
stored with other values, or bundles or tokens that are not this home's.

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
from ..log import (
    Log,
    LogStore,
    SignerKey,
    SQLiteLogStore,
    compare_logs,
    copy_log,
    load_or_create_key,
)
from ._auth import TokenStore
from ._bundles import IssuedBundles

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


def _log_key(home: Path) -> SignerKey:
    key_file = home / "keys" / "log.key"
    if not key_file.is_file():
        raise InputError(f"{key_file} is missing: the log cannot be checked without its key")
    return load_or_create_key(key_file, "inferproof.local")


def _holds_the_log(source: LogStore, target: LogStore) -> bool:
    """Whether ``target`` already holds the source's log (a re-run: then it is only
    compared); False when it is empty. Any other log there is refused."""
    origin = target.get_meta("origin")
    if origin is None and target.size() == 0:
        return False
    mine = source.get_meta("origin")
    if (origin, target.size(), target.checkpoint_sizes()) != (
        mine, source.size(), source.checkpoint_sizes()
    ):  # fmt: skip
        raise InputError(
            f"the target already holds a log ({origin or 'unnamed'}, size {target.size()}) "
            f"that is not this home's ({mine}, size {source.size()}); migrate only into an "
            "empty database, or one holding exactly this log"
        )
    return True


def _log(home: Path, storage: Storage, progress: Progress) -> tuple[int, int, str]:
    path = home / "log" / "log.sqlite"
    if not path.is_file():
        return 0, 0, ""
    key = _log_key(home)
    source_store = SQLiteLogStore(path)
    target_store = storage.open_log_store()
    assert target_store is not None  # migrate() requires a database
    try:
        if _holds_the_log(source_store, target_store):
            progress("log", source_store.size(), source_store.size())
        else:
            copy_log(source_store, target_store, key.verifier(),
                     lambda done, total: progress("log", done, total))  # fmt: skip
    except BaseException:
        source_store.close()
        target_store.close()
        raise
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
    size, checkpoints, root = _log(home, storage, report)
    blobs = _blobs(home, storage, report)
    models = _models(home, storage, report)
    bundles = _bundles(home, storage.database, report)
    tokens = _tokens(home, storage.database)
    workflows = _workflows(home, storage)
    return Migrated(blobs, models, size, checkpoints, root, bundles, tokens, workflows)


def _bundles(home: Path, database: str, progress: Progress) -> int:
    """Copy the issued bundles (every column kept), then read each back by id."""
    path = home / "node" / "bundles.sqlite"
    if not path.is_file():
        return 0
    from ..stores import SQLBundleStore

    source, target = IssuedBundles(path), SQLBundleStore(database)
    try:
        total = source.count()
        target.import_rows(source.export(), total=total)
        if target.count() != total:
            raise VerificationError("migrate.bundles", f"{target.count()} of {total} copied")
        for done, (summary, _, data) in enumerate(source.export(), 1):
            if target.by_id(summary.id) != data:
                raise VerificationError("migrate.bundles", f"bundle {summary.id} differs")
            progress("bundles", done, total)
        return total
    finally:
        source.close()
        target.close()


def _tokens(home: Path, database: str) -> int:
    """Copy the tokens' hashes, times and labels, then compare the two lists."""
    from ..stores import SQLTokenStore

    tokens = TokenStore(home).list()
    target = SQLTokenStore(database)
    try:
        target.import_tokens(tokens, total=len(tokens))
        if sorted(target.list(), key=lambda t: t.hash) != sorted(tokens, key=lambda t: t.hash):
            raise VerificationError("migrate.tokens", "the copied tokens differ")
        return len(tokens)
    finally:
        target.close()
