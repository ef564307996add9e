"""C2SP signed notes (c2sp.org/signed-note), Ed25519 and timestamped cosignature keys.

A note is a UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> base64(key ID || signature)``. Keys are identified by (name, key ID) with
``key ID = SHA-256(name || 0x0A || type || public key)[:4]`` (signed-note, "Signatures").
Verifier keys are written ``name+hex(key ID)+base64(type || public key)`` and signer keys
``PRIVATE+KEY+name+hex(key ID)+base64(type || seed)``, as golang.org/x/mod/sumdb/note does.

Two signature types are supported: ``0x01`` Ed25519 over the note text, and ``0x04``
timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature), whose signature bytes are
an 8-byte big-endian timestamp followed by an Ed25519 signature over
``"cosignature/v1\\ntime <T>\\n" || note text``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import InputError, VerificationError

# Signature type bytes, c2sp.org/signed-note "Signature types".
ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
_ALGS = {ALG_ED25519: "Ed25519", ALG_COSIGNATURE_V1: "cosignature/v1"}
# Verifiers MUST accept at least 16 signatures (signed-note "Format"); 100 is the limit
# golang.org/x/mod/sumdb/note applies. 1 MiB leaves room for 100 post-quantum signatures.
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 1 << 20
# tlog-cosignature "Format": the timestamp MUST NOT exceed 2^63 - 1.
MAX_TIMESTAMP = (1 << 63) - 1
_SIG_PREFIX = "\u2014 "  # em dash, space
_ED25519_SIG = 64
_KEY_BYTES = 32


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 section 4)."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, what: str) -> bytes:
    """Strict standard base64: valid alphabet, padding, and canonical trailing bits."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise InputError(f"{what} is not valid base64") from exc
    if b64encode(raw) != text:
        raise InputError(f"{what} is not canonical base64")
    return raw


# Every C0 control character but newline is forbidden in a note (signed-note "Format").
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")


def check_key_name(name: str) -> str:
    """Key names MUST be non-empty and contain no Unicode spaces nor '+' (signed-note)."""
    if not name or "+" in name or any(c.isspace() for c in name) or not name.isprintable():
        raise InputError(f"invalid signed-note key name {name!r:.80}")
    return name


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """``SHA-256(name || 0x0A || alg || public key)[:4]`` as a big-endian uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def cosignature_message(text: str, timestamp: int) -> bytes:
    """The message a cosignature/v1 signs (tlog-cosignature "Ed25519 signed message")."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


def _parse_key_id(text: str) -> int:
    # Eight lowercase hex digits, as written by %08x; anything else is non-canonical.
    if len(text) != 8 or any(c not in "0123456789abcdef" for c in text):
        raise InputError(f"key ID {text!r:.20} is not 8 lowercase hex digits")
    return int(text, 16)


def _split_typed_key(blob: bytes, what: str) -> tuple[int, bytes]:
    if len(blob) != 1 + _KEY_BYTES:
        raise InputError(f"{what} is {len(blob)} bytes, not 33 (type byte and 32-byte key)")
    if blob[0] not in _ALGS:
        raise InputError(f"{what} has unknown signature type 0x{blob[0]:02x}")
    return blob[0], blob[1:]


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note: key name, key ID, and the signature bytes after the ID."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        raw = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIG_PREFIX}{self.name} {b64encode(raw)}\n"

    @property
    def timestamp(self) -> int:
        """The cosignature timestamp (only meaningful for type 0x04 signatures)."""
        return int.from_bytes(self.signature[:8], "big")


@dataclass(frozen=True)
class VerifierKey:
    """A public note key: ``name+hex(key ID)+base64(type || key)``.

    Example::

        key = VerifierKey.parse("example.com/log+c74f20a3+ARpc2QcUPDhMQ...")
        verified = open_note(note_bytes, [key])
    """

    name: str
    alg: int
    public_key: bytes

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.alg, self.public_key)

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        parts = text.strip().split("+")
        if len(parts) < 3:
            raise InputError("verifier key is not name+keyid+base64(key)")
        # The base64 part may itself contain '+'; names cannot.
        name, hex_id, key64 = parts[0], parts[1], "+".join(parts[2:])
        check_key_name(name)
        declared = _parse_key_id(hex_id)
        alg, public = _split_typed_key(b64decode(key64, "verifier key"), "verifier key")
        key = cls(name, alg, public)
        if key.key_id != declared:
            raise InputError(f"verifier key {name}: key ID does not match the key")
        return key

    def encode(self) -> str:
        typed = bytes([self.alg]) + self.public_key
        return f"{self.name}+{self.key_id:08x}+{b64encode(typed)}"

    def __str__(self) -> str:
        return self.encode()

    def matches(self, sig: NoteSignature) -> bool:
        return sig.name == self.name and sig.key_id == self.key_id

    def verify(self, text: str, sig: NoteSignature) -> bool:
        """True when ``sig`` is a valid signature of this key over note ``text``."""
        if not self.matches(sig):
            return False
        public = Ed25519PublicKey.from_public_bytes(self.public_key)
        if self.alg == ALG_ED25519:
            message, raw = text.encode(), sig.signature
        else:
            if len(sig.signature) != 8 + _ED25519_SIG or sig.timestamp > MAX_TIMESTAMP:
                return False
            message, raw = cosignature_message(text, sig.timestamp), sig.signature[8:]
        if len(raw) != _ED25519_SIG:
            return False
        try:
            public.verify(raw, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SignerKey:
    """A private note key: ``PRIVATE+KEY+name+hex(key ID)+base64(type || seed)``.

    Example::

        signer = SignerKey.generate("example.com/log")
        note = sign_note("hello\\n", [signer])
    """

    name: str
    alg: int
    seed: bytes = field(repr=False)

    @classmethod
    def generate(cls, name: str, alg: int = ALG_ED25519) -> SignerKey:
        check_key_name(name)
        if alg not in _ALGS:
            raise InputError(f"unknown signature type 0x{alg:02x}")
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return cls(name, alg, seed)

    @classmethod
    def parse(cls, text: str) -> SignerKey:
        parts = text.strip().split("+")
        if len(parts) < 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise InputError("signer key is not PRIVATE+KEY+name+keyid+base64(key)")
        name, hex_id, key64 = parts[2], parts[3], "+".join(parts[4:])
        check_key_name(name)
        declared = _parse_key_id(hex_id)
        alg, seed = _split_typed_key(b64decode(key64, "signer key"), "signer key")
        key = cls(name, alg, seed)
        # The ID names the public key, so it is checked after deriving it (as Go does).
        if key.verifier().key_id != declared:
            raise InputError(f"signer key {name}: key ID does not match the key")
        return key

    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    def verifier(self) -> VerifierKey:
        public = self._private().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return VerifierKey(self.name, self.alg, public)

    @property
    def key_id(self) -> int:
        return self.verifier().key_id

    def encode(self) -> str:
        typed = bytes([self.alg]) + self.seed
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{b64encode(typed)}"

    def sign(self, text: str, timestamp: int | None = None) -> NoteSignature:
        """Sign note ``text``; cosigner keys take a POSIX ``timestamp`` (default: now)."""
        _check_text(text)
        private = self._private()
        if self.alg == ALG_ED25519:
            raw = private.sign(text.encode())
        else:
            ts = int(time.time()) if timestamp is None else timestamp
            if not 0 <= ts <= MAX_TIMESTAMP:
                raise InputError(f"cosignature timestamp {ts} out of range")
            raw = ts.to_bytes(8, "big") + private.sign(cosignature_message(text, ts))
        return NoteSignature(self.name, self.key_id, raw)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise InputError("malformed note: text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise InputError("malformed note: control character in text")


@dataclass(frozen=True)
class Note:
    """A parsed (not yet verified) signed note: its text and signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()

    def with_signatures(self, extra: Iterable[NoteSignature]) -> Note:
        """A copy with ``extra`` signatures appended, dropping exact duplicates."""
        sigs = list(self.signatures)
        for sig in extra:
            if sig not in sigs:
                sigs.append(sig)
        return Note(self.text, tuple(sigs))

    @classmethod
    def parse(cls, data: bytes) -> Note:
        """Parse a note's syntax (signed-note "Format"); raise InputError if malformed."""
        if len(data) > MAX_NOTE_BYTES:
            raise InputError(f"malformed note: {len(data)} bytes, over {MAX_NOTE_BYTES}")
        try:
            msg = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError("malformed note: not UTF-8") from exc
        if _CONTROL.search(msg):
            raise InputError("malformed note: control character")
        # The text is separated from the signatures by the *last* blank line.
        split = msg.rfind("\n\n")
        if split < 0:
            raise InputError("malformed note: no blank line before the signatures")
        text, block = msg[: split + 1], msg[split + 2 :]
        if not block.endswith("\n"):
            raise InputError("malformed note: no signature, or no final newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise InputError(f"malformed note: more than {MAX_SIGNATURES} signatures")
        return cls(text, tuple(_parse_signature_line(line) for line in lines))


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise InputError("malformed note: signature line does not start with an em dash")
    name, sep, sig64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep or not sig64:
        raise InputError("malformed note: signature line has no signature")
    check_key_name(name)
    raw = b64decode(sig64, "note signature")
    if len(raw) < 5:
        raise InputError("malformed note: signature shorter than 5 bytes")
    return NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def sign_note(text: str, signers: Sequence[SignerKey], timestamp: int | None = None) -> Note:
    """Return the note of ``text`` signed by each of ``signers``.

    Example::

        note = sign_note("hello\\n", [SignerKey.generate("example.com/k")])
        data = note.encode()
    """
    _check_text(text)
    return Note(text, tuple(s.sign(text, timestamp) for s in signers))


@dataclass(frozen=True)
class VerifiedNote:
    """A note whose signatures from known keys all verified (at least one did)."""

    note: Note
    verified: tuple[tuple[VerifierKey, NoteSignature], ...]

    @property
    def text(self) -> str:
        return self.note.text

    def signed_by(self, key: VerifierKey) -> bool:
        return any(k == key for k, _ in self.verified)


def verify_signatures(
    note: Note, known: Sequence[VerifierKey], check: str = "note.signature"
) -> tuple[tuple[VerifierKey, NoteSignature], ...]:
    """Verify every signature of ``note`` made by a key in ``known``; ignore the others.

    Raises VerificationError if a known key's signature is invalid (signed-note: clients
    SHOULD reject the whole note). Returns the verified (key, signature) pairs, maybe none.
    """
    index: dict[tuple[str, int], VerifierKey] = {}
    for key in known:
        ident = (key.name, key.key_id)
        if ident in index and index[ident] != key:
            raise InputError(f"ambiguous key {key.name}+{key.key_id:08x}")
        index[ident] = key
    verified: list[tuple[VerifierKey, NoteSignature]] = []
    for sig in note.signatures:
        found = index.get((sig.name, sig.key_id))
        if found is None:
            continue  # unknown keys MUST be ignored (signed-note "Signatures")
        if not found.verify(note.text, sig):
            raise VerificationError(check, f"invalid signature for key {sig.name}+{sig.key_id:08x}")
        if all(k != found for k, _ in verified):
            verified.append((found, sig))
    return tuple(verified)


def open_note(data: bytes, known: Sequence[VerifierKey]) -> VerifiedNote:
    """Parse ``data`` and verify it against ``known`` keys (golang.org/x/mod/sumdb/note Open).

    Raises InputError for a malformed note and VerificationError when a known key's
    signature fails or when no known key signed the note.
    """
    note = Note.parse(data)
    verified = verify_signatures(note, known)
    if not verified:
        raise VerificationError("note.signature", "note has no verifiable signatures")
    return VerifiedNote(note, verified)
