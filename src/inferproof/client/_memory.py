"""The client's memory of each log: checkpoints seen, all proven to be prefixes of
the latest (RFC 9162 consistency), and the latest kept on disk between runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .._checks import Check, failed, passed
from ..errors import VerificationError
from ..log import CheckpointMemory, SignedCheckpoint, VerifierKey, verify_consistency

__all__ = ["PERSIST_EVERY", "LogMemory"]

# How often the in-memory checkpoint memory is written to disk (seconds).
PERSIST_EVERY = 5.0


class LogMemory:
    """The checkpoints this client saw per log, all proven to be prefixes of the latest.

    A new checkpoint is proven consistent with the latest one (RFC 9162 consistency
    proof from the node) before it is accepted; the latest is also kept on disk in the
    shared checkpoint memory (``INFERPROOF_HOME/checkpoints``, as ``inferproof verify``
    does), written at most every ``PERSIST_EVERY`` seconds and when the client closes.
    """

    def __init__(self, directory: Path | None) -> None:
        self.dir = directory
        self._latest: dict[str, SignedCheckpoint] = {}
        self._known: dict[tuple[str, int], bytes] = {}
        self._saved = time.monotonic()
        self._lock = threading.Lock()

    def latest_size(self, origin: str, key: VerifierKey) -> int | None:
        """The size of the latest checkpoint held for ``origin`` (None: none yet)."""
        with self._lock:
            self._load(origin, key)
            latest = self._latest.get(origin)
            return latest.size if latest is not None else None

    def _load(self, origin: str, key: VerifierKey) -> None:
        if origin not in self._latest and self.dir is not None:
            stored = CheckpointMemory(self.dir, key).latest(origin)
            if stored is not None:
                self._adopt(stored)

    def needed(self, cp: SignedCheckpoint, key: VerifierKey) -> tuple[int, int] | None:
        """The (old, new) sizes of the proof that links ``cp`` to the latest, if one is needed."""
        with self._lock:
            self._load(cp.origin, key)
            latest = self._latest.get(cp.origin)
            if latest is None or (cp.origin, cp.size) in self._known or 0 in (cp.size, latest.size):
                return None
            return (min(cp.size, latest.size), max(cp.size, latest.size))

    def _adopt(self, cp: SignedCheckpoint) -> None:
        self._latest[cp.origin] = cp
        self._known[(cp.origin, cp.size)] = cp.root_hash

    def observe(
        self, cp: SignedCheckpoint, proof: Sequence[bytes] | None, sizes: tuple[int, int] | None
    ) -> Check | None:
        """Accept ``cp`` or fail; None when the latest moved since :meth:`needed` (ask again)."""
        name, key = "log.consistency", (cp.origin, cp.size)
        with self._lock:
            latest = self._latest.get(cp.origin)
            if key in self._known:
                if self._known[key] != cp.root_hash:
                    return failed(name, f"split view: two roots for {cp.origin} at size {cp.size}")
                return passed(name, f"checkpoint of size {cp.size} already proven consistent")
            if latest is None or latest.size == 0 or cp.size == 0:
                if latest is None or cp.size > latest.size:
                    self._adopt(cp)
                return passed(name, f"first checkpoint seen for {cp.origin} (size {cp.size})")
            if sizes != (min(cp.size, latest.size), max(cp.size, latest.size)):
                return None
            older, newer = (cp, latest) if cp.size < latest.size else (latest, cp)
            try:
                verify_consistency(
                    older.size, newer.size, older.root_hash, newer.root_hash, proof or []
                )
            except VerificationError as exc:
                what = "rollback or fork" if cp is older else "fork (split view)"
                return failed(name, f"{what}: {exc.detail}")
            if len(self._known) > 4096:  # bounded: an old size is proven again if seen again
                self._known = {k: v for k, v in self._known.items() if k[1] == latest.size}
            self._known[key] = cp.root_hash
            if cp is newer:
                self._latest[cp.origin] = cp
            return passed(name, f"consistent with size {latest.size} seen before (RFC 9162)")

    def due(self) -> list[SignedCheckpoint]:
        """The latest checkpoints, when it is time to write them to disk."""
        with self._lock:
            if self.dir is None or time.monotonic() - self._saved < PERSIST_EVERY:
                return []
            self._saved = time.monotonic()
            return list(self._latest.values())

    def flush(self) -> list[SignedCheckpoint]:
        with self._lock:
            self._saved = 0.0
        return self.due()
