"""Copying a log from one store to another (``inferproof migrate``), checked as it goes.

The copy is not trusted to the source: the tree's tiles are recomputed from the
copied entries, and every checkpoint is copied only after its signature verifies
with the log's key and its root equals the root recomputed at its size. Checkpoints
are copied as they are (with any witness cosignatures), so every inclusion proof and
consistency proof a client holds against the source verifies against the copy.

The whole copy is one transaction of the target store: a failure leaves it empty.
It holds the new tiles in memory until the commit (about 32 bytes per entry, plus
the interior rows: some 40 MB per million entries).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InputError, VerificationError
from ._checkpoint import open_checkpoint
from ._log import AuditResult, Log, _Appender, _TileCache
from ._merkle import root_hash
from ._note import VerifierKey
from ._store import LogStore, StoreWriter
from ._tiles import TILE_WIDTH

__all__ = ["compare_logs", "copy_log"]

# Entries read from the source per step (one step per progress report).
_CHUNK = 16 * TILE_WIDTH


def _check_target(w: StoreWriter, origin: str) -> None:
    there = w.get_meta("origin")
    if there is not None or w.size() != 0:
        raise InputError(
            f"the target already holds a log ({there or 'unnamed'}, size {w.size()}); "
            f"copy {origin} only into an empty database"
        )


def copy_log(
    source: LogStore,
    target: LogStore,
    key: VerifierKey,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Copy every entry and checkpoint of ``source`` into the empty ``target``, as
    described in the module docs; return the copied size. ``progress(done, total)``
    is called after each chunk.

    Example::

        copy_log(SQLiteLogStore(home / "log" / "log.sqlite"), PostgresLogStore(url),
                 log.verifier_key)
    """
    check = "log.copy"
    origin = source.get_meta("origin")
    if origin is None or origin != key.name:
        raise InputError(f"the source log's origin {origin!r} is not the key's {key.name!r}")
    sizes = source.checkpoint_sizes()
    total = sizes[-1] if sizes else 0
    notes = {}
    for size in sizes:
        note = source.checkpoint(size)
        assert note is not None  # listed by checkpoint_sizes
        signed = open_checkpoint(note, key)  # VerificationError on a bad signature
        if signed.size != size:
            raise VerificationError(check, f"the checkpoint stored at {size} is of {signed.size}")
        notes[size] = (note, signed.root_hash)

    def write(w: StoreWriter) -> int:
        _check_target(w, origin)
        w.put_meta("origin", origin)
        w.put_meta("verifier_key", str(key))
        appender = _Appender(w, 0, _TileCache(target))
        pending = sorted(notes)
        for start in range(0, total, _CHUNK):
            entries = source.read_entries(start, min(start + _CHUNK, total))
            w.put_entries(start, entries)
            for entry in entries:
                while pending and pending[0] == appender.size:
                    _put_checkpoint(w, appender, pending.pop(0), notes)
                appender.append([entry])
            if progress is not None:
                progress(appender.size, total)
        while pending:
            _put_checkpoint(w, appender, pending.pop(0), notes)
        w.put_tiles(appender.dirty_tiles())
        return appender.size

    return target.transaction(write)


def _put_checkpoint(
    w: StoreWriter, appender: _Appender, size: int, notes: dict[int, tuple[bytes, bytes]]
) -> None:
    note, root = notes[size]
    if size != appender.size:
        raise VerificationError("log.copy", f"no entries for the checkpoint of size {size}")
    if root_hash(appender.nodes, size) != root:
        raise VerificationError("log.copy", f"the checkpoint of size {size} has the wrong root")
    w.put_checkpoint(size, note)


def compare_logs(source: Log, copy: Log) -> AuditResult:
    """Audit ``copy`` (recompute its tree from its entries) and check it has the same
    checkpoints, byte for byte, and the same roots as ``source``."""
    audit = copy.verify()
    if source.store.checkpoint_sizes() != list(audit.checkpoints):
        raise VerificationError("log.copy", "the copy's checkpoint sizes differ")
    for size in audit.checkpoints:
        if source.store.checkpoint(size) != copy.store.checkpoint(size):
            raise VerificationError("log.copy", f"the checkpoint of size {size} differs")
        if source.root(size) != copy.root(size):
            raise VerificationError("log.copy", f"the root at size {size} differs")
    return audit
