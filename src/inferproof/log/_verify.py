"""Offline verification of log proofs, and the verifier's memory of each log's checkpoints.

:func:`verify_tlog_proof` checks a c2sp.org/tlog-proof for given leaf bytes: the
checkpoint's log signature, the inclusion proof, and a k-of-N witness cosignature
quorum. :class:`CheckpointMemory` remembers per log the largest checkpoint seen and
turns a rollback or split view into a failed check.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._checks import Check, failed, not_checked, passed
from .._files import locked, write_atomic
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


# c2sp.org/tlog-cosignature: the timestamp "is the time at which the cosignature was
# generated", and "verifiers MAY reject cosignatures with timestamps in the future".
# Witness clocks drift from ours by ordinary skew; a cosignature dated later than the
# verification time by more than this is refused (the same allowance the verifier
# gives receipt times).
COSIGNATURE_CLOCK_SKEW = 300


def verify_tlog_proof(
    proof_text: str | bytes,
    leaf: bytes,
    log_key: VerifierKey,
    witness_keys: Sequence[VerifierKey] = (),
    quorum: int = 0,
    now: int | None = None,
    *,
    clock_skew: int = 0,
) -> LogProofResult:
    """Verify that ``leaf`` is in the log, signed by ``log_key``, cosigned by ``quorum`` witnesses.

    Raises VerificationError naming the first failed check (``log.proof_format``,
    ``log.checkpoint_signature``, ``log.inclusion``, ``log.witness_quorum``). ``now`` is
    the verification time (POSIX seconds): a cosignature dated more than ``clock_skew``
    seconds after it (none by default; a verifier allows
    :data:`COSIGNATURE_CLOCK_SKEW`) does not count toward the quorum, and the check
    says so. Without ``now`` no cosignature time is compared, and the check says so.

    Example::

        result = verify_tlog_proof(text, envelope_bytes, VerifierKey.parse(log_vkey),
                                   [VerifierKey.parse(w) for w in witness_vkeys], quorum=1,
                                   now=now, clock_skew=COSIGNATURE_CLOCK_SKEW)
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
    cosigners, quorum_check = _witness_quorum(signed, quorum, now, clock_skew)
    checks.append(quorum_check)
    return LogProofResult(proof.index, signed, cosigners, tuple(checks))


def _witness_quorum(
    signed: SignedCheckpoint, quorum: int, now: int | None, skew: int
) -> tuple[tuple[str, ...], Check]:
    """The witnesses whose cosignatures count, and the ``log.witness_quorum`` check;
    raises VerificationError when fewer than ``quorum`` count."""
    name = "log.witness_quorum"
    counted: list[str] = []
    refused: list[str] = []
    for c in signed.cosignatures:
        if now is not None and c.timestamp > now + skew:
            refused.append(
                f"{c.witness.name} is dated {c.timestamp - now} s after the verification"
                f" time (more than the {skew} s clock-skew allowance)"
            )
        elif c.witness.name not in counted:
            counted.append(c.witness.name)
    why = f"; not counted: {'; '.join(refused)}" if refused else ""
    if now is None and signed.cosignatures:
        why += "; cosignature times not compared (no verification time given)"
    if len(counted) < quorum:
        raise VerificationError(name, f"{len(counted)} of {quorum} required cosignatures{why}")
    if quorum == 0:
        return tuple(counted), not_checked(name, f"policy requires no witness cosignature{why}")
    listed = ", ".join(counted)
    return tuple(counted), passed(name, f"{len(counted)} cosignatures: {listed}{why}")


# How many times CheckpointMemory.check fetches a proof again because the remembered
# checkpoint moved meanwhile (another thread or process stored a newer one), before
# reporting "not checked" (never "failed": an honest log is never accused).
PROOF_ATTEMPTS = 16

# Given (old size, new size), the RFC 9162 consistency proof between them.
Prove = Callable[[int, int], Sequence[bytes]]


@dataclass
class _State:
    """What one CheckpointMemory keeps between calls, reachable from its exit finalizer.

    ``pending`` holds checkpoints newer than their file, not written yet (write-behind);
    ``base`` the file bytes each pending one was proven against. A pending checkpoint
    is written only while its file still holds ``base``: a successor is never written
    that was not proven consistent with what the file holds.
    """

    directory: Path
    log_key: VerifierKey
    lock: threading.RLock = field(default_factory=threading.RLock)
    pending: dict[str, SignedCheckpoint] = field(default_factory=dict)
    base: dict[str, bytes | None] = field(default_factory=dict)


class CheckpointMemory:
    """The latest checkpoint seen per log, kept as files in a directory that threads
    and processes share.

    :meth:`check` compares a new checkpoint with the remembered one, fetching the
    consistency proof it needs through ``prove(old, new)``; a same-size checkpoint
    with another root is a split view, a proof that fails is a fork or rollback; both
    are failed checks. Sans-IO callers use :meth:`needs_proof` then :meth:`try_observe`
    with the sizes the proof was fetched for, and ask again when it returns None.

    Each compare-and-remember runs under a lock on the log's file (threads and
    processes), and a proof is only compared for the sizes it was fetched for: a
    checkpoint another process stored meanwhile is never compared with a proof for
    other sizes (issue 11, item 11). The file only grows: a smaller checkpoint never
    replaces a larger one.

    Example::

        memory = CheckpointMemory(home / "log-memory", log_key)
        check = memory.check(signed, log_client.consistency)
    """

    def __init__(
        self, directory: Path, log_key: VerifierKey, *, flush_interval: float = 0.0
    ) -> None:
        """``flush_interval`` > 0 writes a newer checkpoint to disk at most that often
        (and at :meth:`flush`, and at exit) instead of on every check: a verifier
        checking many receipts then pays one file write per interval. The price: a
        crash forgets at most that interval's growth, and a pending checkpoint is
        dropped, not written, when another process stored another one meanwhile (it
        was proven against what the file held before)."""
        self.directory, self.log_key = directory, log_key
        self.flush_interval = flush_interval
        self._state = _State(directory, log_key)
        # The last file read per origin and what it parsed to: re-verifying the same
        # remembered checkpoint's signature for every receipt would double the cost.
        self._parsed: dict[str, tuple[bytes, SignedCheckpoint]] = {}
        # None until the first write: the first checkpoint is written at once, whatever
        # the monotonic clock reads (it starts near 0 on a machine booted moments ago).
        self._last_write: float | None = None
        if flush_interval > 0:
            # Write what is pending when this memory is collected or the process exits.
            weakref.finalize(self, _flush_all, self._state)

    # -- reading --------------------------------------------------------------------------
    def latest(self, origin: str) -> SignedCheckpoint | None:
        """The largest checkpoint remembered for ``origin`` (pending or on disk)."""
        with self._state.lock:
            return self._view(origin)[1]

    def _view(self, origin: str) -> tuple[bytes | None, SignedCheckpoint | None]:
        """The file's bytes, and the checkpoint to compare with: ours if still pending
        on top of that file, else the file's."""
        data = _read(self.directory, origin)
        pending = self._state.pending.get(origin)
        if pending is not None and data == self._state.base.get(origin):
            return data, pending
        return data, self._parse(origin, data)

    def _parse(self, origin: str, data: bytes | None) -> SignedCheckpoint | None:
        if data is None:
            return None
        cached = self._parsed.get(origin)
        if cached is not None and cached[0] == data:
            return cached[1]
        signed = open_checkpoint(data, self.log_key, origin=origin)
        self._parsed[origin] = (data, signed)
        return signed

    def needs_proof(self, new: SignedCheckpoint) -> tuple[int, int] | None:
        """The (old, new) sizes of the consistency proof that links ``new`` to the
        remembered checkpoint, if one is needed."""
        return _sizes(self.latest(new.origin), new)

    # -- comparing ------------------------------------------------------------------------
    def check(self, new: SignedCheckpoint, prove: Prove | None) -> Check:
        """Compare ``new`` with the remembered checkpoint and remember it if larger,
        fetching proofs with ``prove(old, new)`` (None: no proof source). Errors raised
        by ``prove`` propagate."""
        for _ in range(PROOF_ATTEMPTS):
            sizes = self.needs_proof(new)
            if sizes is not None and prove is None:
                why = f"no source for a consistency proof from size {sizes[0]} to {sizes[1]}"
                return not_checked(_NAME, why)
            proof = prove(*sizes) if sizes is not None and prove is not None else None
            result = self.try_observe(new, sizes, proof)
            if result is not None:
                return result
        return not_checked(_NAME, "the remembered checkpoint kept moving while proving consistency")

    def try_observe(
        self, new: SignedCheckpoint, sizes: tuple[int, int] | None, proof: Sequence[bytes] | None
    ) -> Check | None:
        """Like :meth:`observe`, for a proof fetched for ``sizes`` (what :meth:`needs_proof`
        returned). None when the remembered checkpoint moved since: ask again."""
        return self._observe(new, proof, sizes, check_sizes=True)

    def observe(self, new: SignedCheckpoint, proof: Sequence[bytes] | None = None) -> Check:
        """Compare ``new`` with the remembered checkpoint; remember it if it is larger.

        ``proof`` must link the sizes :meth:`needs_proof` names *now*: for one caller
        at a time. Concurrent callers use :meth:`check` or :meth:`try_observe`."""
        result = self._observe(new, proof, None, check_sizes=False)
        assert result is not None  # only a size check returns None
        return result

    def _observe(
        self,
        new: SignedCheckpoint,
        proof: Sequence[bytes] | None,
        sizes: tuple[int, int] | None,
        *,
        check_sizes: bool,
    ) -> Check | None:
        origin = new.origin
        with self._state.lock:
            # The common case, many receipts under one checkpoint: it is the remembered
            # one's size, so nothing is written and one read of the file decides.
            fast = self._same_size(new)
            if fast is not None:
                return fast
        with self._state.lock, locked(_lock_path(self.directory, origin)):
            data, known = self._view(origin)
            conflict = self._drop_stale(origin, data, new)
            if conflict is not None:
                return conflict
            if check_sizes and sizes != _sizes(known, new):
                return None
            check, remember = _compare(known, new, proof)
            if remember:
                self._remember(new, data)
            return check

    def _same_size(self, new: SignedCheckpoint) -> Check | None:
        """The check of ``new`` when it has the remembered size (thread lock held), else
        None. Needs no file lock: what one read shows was remembered, so a match is
        consistent and another root is a split view, whatever is written next."""
        data, known = self._view(new.origin)
        pending = self._state.pending.get(new.origin)
        stale = pending is not None and data != self._state.base.get(new.origin)
        if known is None or known.size != new.size or stale:
            return None
        return _compare(known, new, None)[0]

    def _drop_stale(self, origin: str, data: bytes | None, new: SignedCheckpoint) -> Check | None:
        """Forget a pending checkpoint whose file another process moved; a failed check
        if it and the file, or it and ``new``, are two roots for one size."""
        pending = self._state.pending.get(origin)
        if pending is None or data == self._state.base.get(origin):
            return None
        del self._state.pending[origin]
        if any(_two_roots(other, pending) for other in (self._parse(origin, data), new)):
            return failed(_NAME, _split(origin, pending.size))
        return None

    def _remember(self, new: SignedCheckpoint, data: bytes | None) -> None:
        """Make ``new`` the remembered checkpoint (locks held): pending on top of the
        file's ``data``, and written now when due."""
        self._state.pending[new.origin] = new
        self._state.base[new.origin] = data
        last = self._last_write
        if last is None or time.monotonic() - last >= self.flush_interval:
            self._last_write = time.monotonic()
            if _write_pending_locked(self._state, new.origin):
                self._parsed[new.origin] = (new.encode(), new)

    def flush(self) -> None:
        """Write every pending checkpoint to disk now."""
        with self._state.lock:
            self._last_write = time.monotonic()
            _flush_all(self._state)


_NAME = "log.consistency"


def _split(origin: str, size: int) -> str:
    return f"split view: two roots for {origin} at size {size}"


def _two_roots(a: SignedCheckpoint | None, b: SignedCheckpoint) -> bool:
    """Two checkpoints of one size with different roots: a split view."""
    return a is not None and a.size == b.size and a.root_hash != b.root_hash


def _sizes(known: SignedCheckpoint | None, new: SignedCheckpoint) -> tuple[int, int] | None:
    """The (old, new) sizes of the proof linking ``new`` to ``known``, if one is needed
    (none for a first checkpoint, the same size, or the empty tree)."""
    if known is None or known.size == new.size or 0 in (known.size, new.size):
        return None
    return (min(known.size, new.size), max(known.size, new.size))


def _compare(
    known: SignedCheckpoint | None, new: SignedCheckpoint, proof: Sequence[bytes] | None
) -> tuple[Check, bool]:
    """The check of ``new`` against ``known`` with ``proof``, and whether to remember it."""
    if known is None:
        return passed(_NAME, f"first checkpoint seen for {new.origin} (size {new.size})"), True
    if known.size == new.size:
        if _two_roots(known, new):
            return failed(_NAME, _split(new.origin, new.size)), False
        return passed(_NAME, f"same checkpoint as remembered (size {new.size})"), False
    older, newer = (known, new) if known.size < new.size else (new, known)
    if older.size and proof is None:
        return not_checked(
            _NAME, f"no consistency proof from size {older.size} to {newer.size}"
        ), False
    try:
        verify_consistency(older.size, newer.size, older.root_hash, newer.root_hash, proof or [])
    except VerificationError as exc:
        what = "rollback or fork" if new is older else "fork (split view)"
        return failed(_NAME, f"{what}: {exc.detail}"), False
    return passed(_NAME, f"consistent with the remembered size {known.size}"), new is newer


def _checkpoint_path(directory: Path, origin: str) -> Path:
    # File names come from a hash, never from the (hostile) origin string itself.
    return directory / (hashlib.sha256(origin.encode()).hexdigest() + ".checkpoint")


def _lock_path(directory: Path, origin: str) -> Path:
    return _checkpoint_path(directory, origin).with_suffix(".lock")


def _read(directory: Path, origin: str) -> bytes | None:
    # Files are replaced whole (rename), so one read sees one complete checkpoint.
    try:
        return _checkpoint_path(directory, origin).read_bytes()
    except FileNotFoundError:
        return None


def _write_pending_locked(state: _State, origin: str) -> bool:
    """Write ``origin``'s pending checkpoint if its file still holds the bytes it was
    proven against (both locks held). True if written."""
    pending = state.pending.get(origin)
    if pending is None or _read(state.directory, origin) != state.base.get(origin):
        # Moved by another process: the next check compares with what it holds.
        return False
    encoded = pending.encode()
    write_atomic(_checkpoint_path(state.directory, origin), encoded)
    state.base[origin] = encoded
    del state.pending[origin]
    return True


def _flush_all(state: _State) -> None:
    with state.lock:
        for origin in list(state.pending):
            with locked(_lock_path(state.directory, origin)):
                _write_pending_locked(state, origin)
