"""Checkpoints (c2sp.org/tlog-checkpoint), cosignatures and the tlog-proof text format.

A checkpoint's note text is the origin line, the tree size in decimal (no leading
zeroes), the base64 root hash, then optional non-empty extension lines. A checkpoint is
opened against the log's verifier key; witness cosignatures (c2sp.org/tlog-cosignature,
type 0x04) are verified against the witness keys the caller trusts.

A tlog-proof (c2sp.org/tlog-proof) is ``c2sp.org/tlog-proof@v1``, an optional
``extra <base64>`` line, ``index <N>``, the audit path one base64 hash a line, a blank
line, and the checkpoint note verbatim.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError, VerificationError
from ._merkle import HASH_SIZE, MAX_PROOF_HASHES, MAX_TREE_SIZE
from ._note import (
    ALG_COSIGNATURE_V1,
    Note,
    NoteSignature,
    VerifierKey,
    b64decode,
    b64encode,
    verify_signatures,
)

PROOF_HEADER = "c2sp.org/tlog-proof@v1"
# A proof text holds at most a checkpoint note (capped by _note) plus 64 hash lines and
# a small header; 2 MiB is far above any valid one.
MAX_PROOF_TEXT = 2 << 20
# Opaque "extra" data is unauthenticated; cap it like an entry (64 KiB).
MAX_EXTRA_BYTES = 1 << 16


def parse_decimal(text: str, what: str, maximum: int = MAX_TREE_SIZE) -> int:
    """ASCII decimal with no leading zeroes (unless ``0``), at most ``maximum``."""
    if not text or not text.isascii() or not text.isdigit() or (text[0] == "0" and text != "0"):
        raise InputError(f"{what} {text!r:.40} is not a canonical decimal")
    value = int(text)
    if value > maximum:
        raise InputError(f"{what} {value} is too large")
    return value


def parse_hash(text: str, what: str) -> bytes:
    raw = b64decode(text, what)
    if len(raw) != HASH_SIZE:
        raise InputError(f"{what} is {len(raw)} bytes, not {HASH_SIZE}")
    return raw


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed tree head body: origin, tree size, root hash, extension lines.

    Example::

        cp = Checkpoint("example.com/log", 3, root)
        note = sign_note(cp.body(), [log_signer])
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text (tlog-checkpoint "Note text")."""
        if not text.endswith("\n"):
            raise InputError("checkpoint text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise InputError("checkpoint needs origin, size and root lines, none empty")
        origin, size, root = lines[0], lines[1], lines[2]
        tree_size = parse_decimal(size, "tree size")
        return cls(origin, tree_size, parse_hash(root, "root hash"), tuple(lines[3:]))


@dataclass(frozen=True)
class Cosignature:
    """A verified witness cosignature: who, when, and the note signature line."""

    witness: VerifierKey
    timestamp: int
    signature: NoteSignature


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose log signature verified, with the cosignatures that verified."""

    checkpoint: Checkpoint
    note: Note
    cosignatures: tuple[Cosignature, ...] = ()

    @property
    def origin(self) -> str:
        return self.checkpoint.origin

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        return self.checkpoint.root_hash

    def encode(self) -> bytes:
        return self.note.encode()


def open_checkpoint(
    data: bytes,
    log_key: VerifierKey,
    witness_keys: Sequence[VerifierKey] = (),
    origin: str | None = None,
) -> SignedCheckpoint:
    """Parse a checkpoint note and verify the log's signature and any trusted cosignatures.

    Results are memoised on all four arguments (the same checkpoint arrives with every
    receipt of a batch), failures are not: a bad note is re-checked and re-rejected.

    The origin must equal ``origin`` when given, else the log key's name (tlog-checkpoint:
    the key name SHOULD match the origin). Signatures by unknown keys are ignored.

    Example::

        signed = open_checkpoint(note_bytes, VerifierKey.parse(log_vkey))
        print(signed.size, signed.root_hash.hex())
    """
    return _open_checkpoint_cached(data, log_key, tuple(witness_keys), origin)


@functools.lru_cache(maxsize=1024)
def _open_checkpoint_cached(
    data: bytes,
    log_key: VerifierKey,
    witness_keys: tuple[VerifierKey, ...],
    origin: str | None,
) -> SignedCheckpoint:
    note = Note.parse(data)
    cp = Checkpoint.parse(note.text)
    expected = log_key.name if origin is None else origin
    if cp.origin != expected:
        raise VerificationError("log.origin", f"checkpoint origin {cp.origin!r} != {expected!r}")
    log_sigs = verify_signatures(note, [log_key], "log.checkpoint_signature")
    if not log_sigs:
        raise VerificationError("log.checkpoint_signature", f"no signature by {log_key.name}")
    cosigners = [k for k in witness_keys if k.alg == ALG_COSIGNATURE_V1]
    cosigs = verify_signatures(note, cosigners, "log.cosignature")
    return SignedCheckpoint(cp, note, tuple(Cosignature(k, s.timestamp, s) for k, s in cosigs))


@dataclass(frozen=True)
class TlogProof:
    """A c2sp.org/tlog-proof: entry index, audit path, checkpoint note, optional extra data.

    Example::

        proof = TlogProof.parse(text)
        signed = open_checkpoint(proof.checkpoint, log_key)
    """

    index: int
    path: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None

    def encode(self) -> str:
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append("extra " + b64encode(self.extra))
        lines.append(f"index {self.index}")
        lines.extend(b64encode(h) for h in self.path)
        return "".join(line + "\n" for line in lines) + "\n" + self.checkpoint.decode()

    @classmethod
    def parse(cls, text: str) -> TlogProof:
        if len(text) > MAX_PROOF_TEXT:
            raise InputError(f"tlog-proof is over {MAX_PROOF_TEXT} characters")
        # The header has no blank line; the first blank line starts the checkpoint.
        head, sep, checkpoint = text.partition("\n\n")
        if not sep or not checkpoint:
            raise InputError("tlog-proof has no blank line followed by a checkpoint")
        lines = head.split("\n")
        if lines[0] != PROOF_HEADER:
            raise InputError(f"tlog-proof does not start with {PROOF_HEADER}")
        pos, extra = 1, None
        if pos < len(lines) and lines[pos].startswith("extra "):
            extra = b64decode(lines[pos][len("extra ") :], "tlog-proof extra data")
            if len(extra) > MAX_EXTRA_BYTES:
                raise InputError("tlog-proof extra data is too large")
            pos += 1
        if pos >= len(lines) or not lines[pos].startswith("index "):
            raise InputError("tlog-proof has no index line")
        index = parse_decimal(lines[pos][len("index ") :], "tlog-proof index")
        hashes = lines[pos + 1 :]
        if len(hashes) > MAX_PROOF_HASHES:
            raise InputError(f"tlog-proof has {len(hashes)} hashes, over {MAX_PROOF_HASHES}")
        path = tuple(parse_hash(h, "tlog-proof hash") for h in hashes)
        try:
            note = checkpoint.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: not text a note can hold
            raise InputError("tlog-proof checkpoint is not valid UTF-8 text") from None
        return cls(index, path, note, extra)
