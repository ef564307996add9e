"""The transparency log: batched durable appends, proofs, checkpoints, tiles export.

Appends are queued and written by one sequencer thread in batches: each batch is one
storage transaction that stores the entries, updates the hash tiles and stores a newly
signed checkpoint covering them, committed durably before any caller is answered. A
caller therefore gets its index, inclusion proof and checkpoint only once they can no
longer be lost. Several processes may append to the same SQLite file: each batch reads
the tree's right edge inside its exclusive transaction.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from .._files import write_atomic
from ..errors import InputError, VerificationError
from ._checkpoint import Checkpoint, SignedCheckpoint, TlogProof, open_checkpoint
from ._merkle import (
    EMPTY_ROOT,
    consistency_proof,
    hash_children,
    hash_leaf,
    inclusion_proof,
    root_hash,
)
from ._note import SignerKey, VerifierKey, sign_note
from ._store import LogStore, SQLiteLogStore, StoreWriter
from ._tiles import (
    MAX_ENTRY_BYTES,
    TILE_WIDTH,
    Tile,
    TileNodes,
    bundle_path,
    encode_bundle,
    served_tiles,
    tile_path,
    tile_widths,
)

# Full tiles are immutable and cached; 2048 tiles of 16 KiB is 32 MiB at most.
_TILE_CACHE = 2048


@dataclass(frozen=True)
class AppendResult:
    """An acknowledged append: index, audit path and the checkpoint it is proven against.

    Example::

        result = log.append(b"entry")
        text = result.tlog_proof().encode()
    """

    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes

    def tlog_proof(self) -> TlogProof:
        return TlogProof(self.index, self.proof, self.checkpoint)


@dataclass(frozen=True)
class BatchResult:
    """Indexes ``first .. first + count - 1`` were written under checkpoint ``checkpoint``."""

    first: int
    count: int
    size: int
    checkpoint: bytes


@dataclass(frozen=True)
class AuditResult:
    """What :meth:`Log.verify` recomputed: tree size and every checkpoint size checked."""

    size: int
    root_hash: bytes
    checkpoints: tuple[int, ...]


class _TileCache:
    def __init__(self, store: LogStore) -> None:
        self._store = store
        self._tiles: OrderedDict[tuple[int, int], Tile] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, level: int, index: int, needed: int) -> Tile:
        key = (level, index)
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None and tile.width >= needed:
                self._tiles.move_to_end(key)
                return tile
        row = self._store.read_tile(level, index)
        if row is None or row[0] < needed:
            raise InputError(f"tile {level}/{index} is missing from the log store")
        tile = Tile.from_blob(*row)
        self.put(level, index, tile)
        return tile

    def put(self, level: int, index: int, tile: Tile) -> None:
        """Keep a committed tile (the widest seen: tiles only grow)."""
        key = (level, index)
        with self._lock:
            old = self._tiles.get(key)
            if old is None or old.width < tile.width:
                self._tiles[key] = tile
            self._tiles.move_to_end(key)
            while len(self._tiles) > _TILE_CACHE:
                self._tiles.popitem(last=False)


class _Appender:
    """Extends the tree inside one write transaction, reading its right edge fresh."""

    def __init__(self, writer: StoreWriter, size: int, cache: _TileCache) -> None:
        self._writer, self._cache = writer, cache
        self.size = size
        self._edge: dict[int, tuple[int, Tile]] = {}
        self._dirty: dict[tuple[int, int], Tile] = {}
        self.nodes = TileNodes(self._get)

    def _rightmost(self, level: int) -> tuple[int, Tile]:
        if level not in self._edge:
            full, partial = tile_widths(self.size, level)
            tile = Tile()
            if partial:
                row = self._writer.read_tile(level, full)
                if row is None or row[0] != partial:
                    raise InputError(f"log store lacks partial tile {level}/{full}")
                tile = Tile.from_blob(*row)
            self._edge[level] = (full, tile)
        return self._edge[level]

    def _push(self, level: int, h: bytes) -> None:
        index, tile = self._rightmost(level)
        self._dirty[(level, index)] = tile
        root = tile.append(h)
        if root is not None:
            self._edge[level] = (index + 1, Tile())
            self._push(level + 1, root)

    def append(self, entries: Sequence[bytes]) -> None:
        for entry in entries:
            self._push(0, hash_leaf(entry))
        self.size += len(entries)

    def _get(self, level: int, index: int, needed: int) -> Tile:
        edge = self._edge.get(level)
        if edge is not None and edge[0] == index:
            return edge[1]
        tile = self._dirty.get((level, index))
        return tile if tile is not None else self._cache.get(level, index, needed)

    def dirty_tiles(self) -> list[tuple[int, int, int, bytes]]:
        return [(lv, ix, t.width, t.blob()) for (lv, ix), t in self._dirty.items() if t.width]

    def committed(self) -> None:
        """After the commit: the tiles written are the tree's new edge; caching them lets
        every waiter build its inclusion proof without reading the store again (on
        PostgreSQL each read is a round trip, and a batch has hundreds of waiters)."""
        for (level, index), tile in self._dirty.items():
            if tile.width:
                self._cache.put(level, index, tile)


class _Pending:
    __slots__ = ("data", "future")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.future: Future[tuple[int, BatchResult]] = Future()


class PendingAppend:
    """An append in flight; :meth:`result` waits for its checkpoint and builds the proof."""

    def __init__(self, log: Log, future: Future[tuple[int, BatchResult]]) -> None:
        self._log, self._future = log, future

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None) -> AppendResult:
        index, batch = self._future.result(timeout)
        proof = tuple(inclusion_proof(self._log.nodes, index, batch.size))
        return AppendResult(index, proof, batch.checkpoint)


class Log:
    """An append-only RFC 9162 log of byte strings with C2SP checkpoints.

    ``batch_size`` caps the entries per checkpoint; ``max_delay`` (seconds) is how long
    the sequencer waits for more entries after the first one of a batch arrives.

    Example::

        with Log.open(Path("log.sqlite"), SignerKey.generate("example.com/log")) as log:
            result = log.append(b"hello")
            print(result.index, result.tlog_proof().encode())
    """

    def __init__(
        self,
        store: LogStore,
        signer: SignerKey,
        *,
        batch_size: int = 1024,
        max_delay: float = 0.005,
    ) -> None:
        if batch_size < 1 or max_delay < 0:
            raise InputError("batch_size must be >= 1 and max_delay >= 0")
        self.store, self.signer = store, signer
        self.origin = signer.name
        self.verifier_key: VerifierKey = signer.verifier()
        self.batch_size, self.max_delay = batch_size, max_delay
        self._cache = _TileCache(store)
        self.nodes = TileNodes(self._cache.get)
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        store.transaction(self._initialise)

    @classmethod
    def open(
        cls, path: Path, signer: SignerKey, *, batch_size: int = 1024, max_delay: float = 0.005
    ) -> Log:
        """Open (or create) a log in the SQLite file ``path``."""
        return cls(SQLiteLogStore(path), signer, batch_size=batch_size, max_delay=max_delay)

    def _initialise(self, w: StoreWriter) -> None:
        origin = w.get_meta("origin")
        if origin is None:  # a new store: record who owns it and sign the empty tree
            w.put_meta("origin", self.origin)
            w.put_meta("verifier_key", str(self.verifier_key))
            w.put_checkpoint(0, self._sign(0, EMPTY_ROOT))
        elif origin != self.origin:
            raise InputError(f"log store belongs to {origin!r}, not {self.origin!r}")
        elif w.get_meta("verifier_key") != str(self.verifier_key):
            raise InputError("log store was signed by a different key")

    def _sign(self, size: int, root: bytes) -> bytes:
        return sign_note(Checkpoint(self.origin, size, root).body(), [self.signer]).encode()

    # ---- appends -------------------------------------------------------------------

    def append(self, data: bytes, timeout: float | None = None) -> AppendResult:
        """Append ``data``; return once a checkpoint covering it is durably stored."""
        return self.submit(data).result(timeout)

    def submit(self, data: bytes) -> PendingAppend:
        """Queue ``data`` without waiting; ``.result()`` blocks until it is acknowledged.

        Lets one thread keep many appends in flight, so batches fill up.
        """
        _check_entry(data)
        pending = _Pending(data)
        self._ensure_sequencer()
        self._queue.put(pending)
        return PendingAppend(self, pending.future)

    def append_many(self, entries: Sequence[bytes]) -> BatchResult:
        """Append ``entries`` in this thread, in one durable transaction and checkpoint."""
        for data in entries:
            _check_entry(data)
        if self._closed:
            raise InputError("log is closed")
        return self._commit(list(entries))

    def _commit(self, entries: list[bytes]) -> BatchResult:
        appenders: list[_Appender] = []

        def write(w: StoreWriter) -> BatchResult:
            first = w.size()
            appender = _Appender(w, first, self._cache)
            appenders[:] = [appender]  # a store may retry the transaction: keep the last
            appender.append(entries)
            w.put_entries(first, entries)
            w.put_tiles(appender.dirty_tiles())
            note = self._sign(appender.size, root_hash(appender.nodes, appender.size))
            w.put_checkpoint(appender.size, note)
            return BatchResult(first, len(entries), appender.size, note)

        result = self.store.transaction(write)
        appenders[0].committed()
        return result

    def _ensure_sequencer(self) -> None:
        with self._start_lock:
            if self._closed:
                raise InputError("log is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="log-sequencer", daemon=True)
                self._thread.start()

    def _collect(self, first: _Pending) -> tuple[list[_Pending], bool]:
        batch, stop = [first], False
        deadline = time.monotonic() + self.max_delay
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                wait = remaining > 0
                item = self._queue.get(wait, remaining if wait else None)
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch, stop = self._collect(first)
            try:
                result = self._commit([p.data for p in batch])
            except BaseException as exc:  # every waiter learns of the failure
                for p in batch:
                    p.future.set_exception(exc)
                continue
            for i, p in enumerate(batch):
                p.future.set_result((result.first + i, result))

    def close(self) -> None:
        """Finish queued appends, stop the sequencer and close the store."""
        with self._start_lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join()
        self.store.close()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- reads and proofs ----------------------------------------------------------

    @property
    def size(self) -> int:
        return self.store.size()

    def checkpoint(self, size: int | None = None) -> SignedCheckpoint:
        """The latest checkpoint, or the one issued at ``size``; verified with our key."""
        note = self.store.checkpoint(size)
        if note is None:
            raise InputError(f"the log issued no checkpoint of size {size}")
        return open_checkpoint(note, self.verifier_key)

    def entry(self, index: int) -> bytes:
        return self.store.read_entries(index, index + 1)[0]

    def root(self, size: int | None = None) -> bytes:
        return root_hash(self.nodes, self.size if size is None else size)

    def _check_size(self, size: int | None) -> int:
        latest = self.size
        if size is None:
            return latest
        if not 0 <= size <= latest:
            raise InputError(f"tree size {size} is outside 0..{latest}")
        return size

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self._check_size(size)
        if not 0 <= index < size:
            raise InputError(f"index {index} is not in the tree of size {size}")
        return inclusion_proof(self.nodes, index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise InputError(f"old size {old_size} is outside 0..{new_size}")
        return consistency_proof(self.nodes, old_size, new_size)

    def tlog_proof(self, index: int, size: int | None = None) -> TlogProof:
        """A c2sp.org/tlog-proof for entry ``index`` against the checkpoint at ``size``."""
        size = self._check_size(size)
        note = self.store.checkpoint(size)
        if note is None:
            raise InputError(f"the log issued no checkpoint of size {size}")
        return TlogProof(index, tuple(self.inclusion_proof(index, size)), note)

    def attach_cosignatures(self, note: bytes) -> SignedCheckpoint:
        """Store a copy of an issued checkpoint that carries extra (witness) signatures."""
        signed = open_checkpoint(note, self.verifier_key)
        stored = self.checkpoint(signed.size)
        if stored.note.text != signed.note.text:
            raise VerificationError("log.checkpoint", "note text differs from the issued one")
        merged = stored.note.with_signatures(signed.note.signatures)
        self.store.replace_checkpoint(signed.size, merged.encode())
        return open_checkpoint(merged.encode(), self.verifier_key)

    def verify(self, progress: Callable[[int], None] | None = None) -> AuditResult:
        """Recompute the tree from the stored entries; check tiles and every checkpoint."""
        return _audit(self, progress)

    def export_tiles(self, directory: Path) -> int:
        """Write the log as static tlog-tiles files under ``directory``; return file count."""
        return _export(self, directory)


def _check_entry(data: bytes) -> None:
    if not isinstance(data, bytes):
        raise InputError("log entries are bytes")
    if len(data) > MAX_ENTRY_BYTES:
        raise InputError(f"entry of {len(data)} bytes is over the {MAX_ENTRY_BYTES}-byte cap")


def _fold(stack: list[tuple[int, bytes]]) -> bytes:
    if not stack:
        return EMPTY_ROOT
    root = stack[-1][1]
    for _, h in reversed(stack[:-1]):
        root = hash_children(h, root)
    return root


def _audit(log: Log, progress: Callable[[int], None] | None) -> AuditResult:
    check = "log.audit"
    sizes = log.store.checkpoint_sizes()
    size = sizes[-1] if sizes else 0
    pending = list(sizes)
    stack: list[tuple[int, bytes]] = []  # compact range of complete subtrees (level, hash)
    roots: dict[int, bytes] = {}
    count = 0
    while pending and pending[0] == 0:
        roots[pending.pop(0)] = EMPTY_ROOT
    for start in range(0, size, TILE_WIDTH):
        entries = log.store.read_entries(start, min(start + TILE_WIDTH, size))
        leaves = [hash_leaf(e) for e in entries]
        tile = log.store.read_tile(0, start // TILE_WIDTH)
        if tile is None or Tile.from_blob(*tile).rows[0][: len(leaves)] != leaves:
            raise VerificationError(check, f"tile 0/{start // TILE_WIDTH} does not match entries")
        for h in leaves:
            level = 0
            while stack and stack[-1][0] == level:
                h, level = hash_children(stack.pop()[1], h), level + 1
            stack.append((level, h))
            count += 1
            while pending and pending[0] == count:
                roots[pending.pop(0)] = _fold(stack)
        if progress is not None:
            progress(count)
    for cp_size in sizes:
        signed = log.checkpoint(cp_size)
        if signed.root_hash != roots[cp_size] or log.root(cp_size) != roots[cp_size]:
            raise VerificationError(check, f"checkpoint at size {cp_size} has the wrong root")
    return AuditResult(size, roots.get(size, EMPTY_ROOT), tuple(sizes))


def _write_file(path: Path, data: bytes, *, unchanged_if_present: bool = False) -> None:
    """Write an exported file atomically (a web server may be serving the folder),
    world-readable: tiles are public. An immutable file already there with the same
    bytes is left alone (re-exports rewrite only what grew)."""
    if unchanged_if_present and path.is_file() and path.read_bytes() == data:
        return
    write_atomic(path, data, mode=0o644)


def _export(log: Log, directory: Path) -> int:
    """Every full tile and bundle, and the partial ones of each checkpointed size still
    needed (see :func:`served_tiles`), then the checkpoint."""
    signed = log.checkpoint()
    files = 0
    for level, index, width in sorted(served_tiles(signed.size, log.store.checkpoint_sizes())):
        row = log.store.read_tile(level, index)
        if row is None or row[0] < width:
            raise InputError(f"tile {level}/{index} is missing from the log store")
        immutable = width == TILE_WIDTH
        path = directory / tile_path(level, index, width)
        _write_file(path, row[1][: width * 32], unchanged_if_present=immutable)
        files += 1
        if level == 0:
            entries = log.store.read_entries(index * TILE_WIDTH, index * TILE_WIDTH + width)
            path = directory / bundle_path(index, width)
            _write_file(path, encode_bundle(entries), unchanged_if_present=immutable)
            files += 1
    # The checkpoint goes last, so a reader never sees it before the tiles it needs.
    _write_file(directory / "checkpoint", signed.encode())
    return files + 1
