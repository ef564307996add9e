"""Offline verification of log proofs, and the verifier's memory of each log's checkpoints.

:func:`verify_tlog_proof` checks a c2sp.org/tlog-proof for given leaf bytes: the
checkpoint's log signature, the inclusion proof, and a k-of-N witness cosignature
quorum. :class:`CheckpointMemory` remembers per log the largest checkpoint seen and
turns a rollback or split view into a failed check.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._checks import Check, failed, not_checked, passed
from ..errors import InputError, VerificationError
from ._checkpoint import SignedCheckpoint, TlogProof, open_checkpoint
from ._merkle import hash_leaf, verify_consistency, verify_inclusion
from ._note import VerifierKey


@dataclass(frozen=True)
class LogProofResult:
    """A verified log inclusion: where the entry is, under which checkpoint, every check made."""

    index: int
    checkpoint: SignedCheckpoint
    cosigners: tuple[str, ...]
    checks: tuple[Check, ...]


def verify_tlog_proof(
    proof_text: str | bytes,
    leaf: bytes,
    log_key: VerifierKey,
    witness_keys: Sequence[VerifierKey] = (),
    quorum: int = 0,
    now: int | None = None,
) -> LogProofResult:
    """Verify that ``leaf`` is in the log, signed by ``log_key``, cosigned by ``quorum`` witnesses.

    Raises VerificationError naming the first failed check (``log.proof_format``,
    ``log.checkpoint_signature``, ``log.inclusion``, ``log.witness_quorum``). ``now``
    (POSIX seconds), when given, rejects cosignatures dated in the future.

    Example::

        result = verify_tlog_proof(text, envelope_bytes, VerifierKey.parse(log_vkey),
                                   [VerifierKey.parse(w) for w in witness_vkeys], quorum=1)
        for check in result.checks:
            print(check.name, check.status.value)
    """
    if quorum < 0 or quorum > len(witness_keys):
        raise InputError(f"quorum {quorum} cannot be met by {len(witness_keys)} witness keys")
    try:
        text = proof_text.decode() if isinstance(proof_text, bytes) else proof_text
        proof = TlogProof.parse(text)
    except (InputError, UnicodeDecodeError) as exc:
        raise VerificationError("log.proof_format", str(exc)) from exc
    try:
        signed = open_checkpoint(proof.checkpoint, log_key, witness_keys)
    except InputError as exc:
        raise VerificationError("log.proof_format", f"checkpoint: {exc}") from exc
    checks = [passed("log.checkpoint_signature", f"checkpoint signed by {log_key.name}")]
    verify_inclusion(hash_leaf(leaf), proof.index, signed.size, proof.path, signed.root_hash)
    checks.append(passed("log.inclusion", f"entry {proof.index} in tree of size {signed.size}"))
    cosigners = tuple(
        c.witness.name for c in signed.cosignatures if now is None or c.timestamp <= now
    )
    if len(set(cosigners)) < quorum:
        raise VerificationError(
            "log.witness_quorum", f"{len(set(cosigners))} of {quorum} required cosignatures"
        )
    if quorum == 0:
        checks.append(not_checked("log.witness_quorum", "policy requires no witness cosignature"))
    else:
        checks.append(
            passed("log.witness_quorum", f"{len(cosigners)} cosignatures: {', '.join(cosigners)}")
        )
    return LogProofResult(proof.index, signed, cosigners, tuple(checks))


class CheckpointMemory:
    """The latest checkpoint seen per log, kept as files in a directory.

    Call :meth:`needs_proof` to learn which consistency proof to fetch for a new
    checkpoint, then :meth:`observe` with it. A same-size checkpoint with another root
    is a split view; a proof that fails is a fork or rollback; both are failed checks.

    Example::

        memory = CheckpointMemory(home / "log-memory", log_key)
        sizes = memory.needs_proof(signed)
        proof = log_client.consistency(*sizes) if sizes else None
        check = memory.observe(signed, proof)
    """

    def __init__(
        self, directory: Path, log_key: VerifierKey, *, flush_interval: float = 0.0
    ) -> None:
        """``flush_interval`` > 0 writes a newer checkpoint to disk at most that often
        (and at :meth:`flush`, and at exit) instead of on every check: a verifier
        checking many receipts then pays one file write per interval. The price is
        that a crash forgets at most that interval's growth of the remembered size."""
        self.directory, self.log_key = directory, log_key
        self.flush_interval = flush_interval
        # The last file read per origin and what it parsed to: re-verifying the same
        # remembered checkpoint's signature for every receipt would double the cost.
        self._parsed: dict[str, tuple[bytes, SignedCheckpoint]] = {}
        self._dirty: dict[str, SignedCheckpoint] = {}
        # None until the first write: the first checkpoint is written at once, whatever
        # the monotonic clock reads (it starts near 0 on a machine booted moments ago).
        self._last_write: float | None = None
        self._lock = threading.Lock()
        if flush_interval > 0:
            # Flush what is pending when this memory is collected or the process exits.
            weakref.finalize(self, _flush_all, directory, self._dirty, self._lock)

    def _path(self, origin: str) -> Path:
        return _checkpoint_path(self.directory, origin)

    def latest(self, origin: str) -> SignedCheckpoint | None:
        """The largest checkpoint remembered for ``origin`` (pending or on disk)."""
        on_disk = self._read(origin)
        pending = self._dirty.get(origin)
        if pending is None or (on_disk is not None and on_disk.size > pending.size):
            return on_disk
        return pending

    def _read(self, origin: str) -> SignedCheckpoint | None:
        try:
            data = self._path(origin).read_bytes()
        except FileNotFoundError:
            return None
        cached = self._parsed.get(origin)
        if cached is not None and cached[0] == data:
            return cached[1]
        signed = open_checkpoint(data, self.log_key, origin=origin)
        self._parsed[origin] = (data, signed)
        return signed

    def needs_proof(self, new: SignedCheckpoint) -> tuple[int, int] | None:
        """The (old, new) sizes of the consistency proof :meth:`observe` needs, if any."""
        known = self.latest(new.origin)
        if known is None or known.size == new.size or 0 in (known.size, new.size):
            return None
        return (min(known.size, new.size), max(known.size, new.size))

    def observe(self, new: SignedCheckpoint, proof: Sequence[bytes] | None = None) -> Check:
        """Compare ``new`` with the remembered checkpoint; remember it if it is larger."""
        name = "log.consistency"
        known = self.latest(new.origin)
        if known is None:
            self._store(new)
            return passed(name, f"first checkpoint seen for {new.origin} (size {new.size})")
        if known.size == new.size:
            if known.root_hash != new.root_hash:
                return failed(name, f"split view: two roots for {new.origin} at size {new.size}")
            return passed(name, f"same checkpoint as remembered (size {new.size})")
        older, newer = (known, new) if known.size < new.size else (new, known)
        if older.size and proof is None:
            return not_checked(name, f"no consistency proof from size {older.size} to {newer.size}")
        try:
            sizes = (older.size, newer.size)
            verify_consistency(*sizes, older.root_hash, newer.root_hash, proof or [])
        except VerificationError as exc:
            what = "rollback or fork" if new is older else "fork (split view)"
            return failed(name, f"{what}: {exc.detail}")
        if new is newer:
            self._store(new)
        return passed(name, f"consistent with the remembered size {known.size}")

    def _store(self, signed: SignedCheckpoint) -> None:
        with self._lock:
            self._dirty[signed.origin] = signed
            last = self._last_write
            due = last is None or time.monotonic() - last >= self.flush_interval
        if due:
            self.flush()

    def flush(self) -> None:
        """Write every pending checkpoint to disk now."""
        with self._lock:
            self._last_write = time.monotonic()
        for signed in _flush_all(self.directory, self._dirty, self._lock):
            self._parsed[signed.origin] = (signed.encode(), signed)


def _checkpoint_path(directory: Path, origin: str) -> Path:
    # File names come from a hash, never from the (hostile) origin string itself.
    return directory / (hashlib.sha256(origin.encode()).hexdigest() + ".checkpoint")


def _flush_all(
    directory: Path, dirty: dict[str, SignedCheckpoint], lock: threading.Lock
) -> list[SignedCheckpoint]:
    with lock:
        pending = list(dirty.values())
        dirty.clear()
    if pending:
        directory.mkdir(parents=True, exist_ok=True)
    for signed in pending:
        # A unique temporary name: threads of one process may store at the same time.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(signed.encode())
        os.replace(tmp, _checkpoint_path(directory, signed.origin))
    return pending
