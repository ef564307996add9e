"""Oblivious HTTP encapsulation (RFC 9458), both sides, on a maintained HPKE library.

HPKE (RFC 9180) is pyhpke's: cryptography's own ``hpke`` module (50.x) seals and opens in
one shot but has no secret export, which the response keys need (RFC 9458 section 4.4),
and takes no fixed ephemeral key, which the RFC's worked example needs. The response's
key derivation uses cryptography's HMAC (HKDF-Extract, RFC 5869 section 2.2), HKDF-Expand
and AES-GCM; nothing here is a primitive of its own.

One suite is offered and accepted: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
AES-128-GCM (KEM 0x0020, KDF 0x0001, AEAD 0x0001), the suite of RFC 9458's example.
"""

from __future__ import annotations

import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKeyPair
from pyhpke.context_interface import ContextInterface

from ..errors import InputError, VerificationError

__all__ = [
    "AEAD_ID",
    "KDF_ID",
    "KEM_ID",
    "MAX_ENCAPSULATED",
    "ClientRequest",
    "Gateway",
    "KeyConfig",
    "Response",
    "encapsulate_request",
    "parse_key_configs",
]

# IANA's HPKE registries (RFC 9180 section 7): the one suite used here.
KEM_ID, KDF_ID, AEAD_ID = 0x0020, 0x0001, 0x0001
_N_PK = 32  # X25519 public key and enc (RFC 9180 section 7.1, Npk = Nenc = 32)
_N_K, _N_N = 16, 12  # AES-128-GCM key and nonce (RFC 9180 section 7.3)
_TAG = 16
# RFC 9458 section 4.3 and 4.4: the labels binding a request and a response.
_REQUEST_LABEL = b"message/bhttp request"
_RESPONSE_LABEL = b"message/bhttp response"
# The largest encapsulated message taken: the binary HTTP cap plus the headers.
MAX_ENCAPSULATED = 16 * 1024 * 1024 + 1024
_SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)


@dataclass(frozen=True)
class KeyConfig:
    """A gateway's key configuration (RFC 9458 section 3.1): key id, KEM, public key and
    the (KDF, AEAD) pairs it accepts.

    Example::

        config = KeyConfig.parse(bytes.fromhex("0100203..."))
        config.encode()   # the same bytes
    """

    key_id: int
    kem_id: int
    public_key: bytes
    suites: tuple[tuple[int, int], ...]

    def encode(self) -> bytes:
        algorithms = b"".join(struct.pack("!HH", kdf, aead) for kdf, aead in self.suites)
        return (
            struct.pack("!BH", self.key_id, self.kem_id) + self.public_key
            + struct.pack("!H", len(algorithms)) + algorithms
        )  # fmt: skip

    @classmethod
    def parse(cls, data: bytes) -> KeyConfig:
        config, rest = cls._read(data)
        if rest:
            raise InputError("OHTTP key configuration has bytes after its end")
        return config

    @classmethod
    def _read(cls, data: bytes) -> tuple[KeyConfig, bytes]:
        if len(data) < 3:
            raise InputError("OHTTP key configuration is truncated")
        key_id, kem_id = struct.unpack("!BH", data[:3])
        if kem_id != KEM_ID:
            raise InputError(f"OHTTP key configuration uses KEM {kem_id:#06x}, not X25519")
        body = data[3:]
        if len(body) < _N_PK + 2:
            raise InputError("OHTTP key configuration is truncated")
        public_key, (length,) = body[:_N_PK], struct.unpack("!H", body[_N_PK : _N_PK + 2])
        algorithms = body[_N_PK + 2 : _N_PK + 2 + length]
        if len(algorithms) != length or length == 0 or length % 4:
            raise InputError("OHTTP key configuration's algorithm list is malformed")
        suites = tuple(struct.iter_unpack("!HH", algorithms))
        return cls(key_id, kem_id, public_key, suites), body[_N_PK + 2 + length :]

    def accepts(self) -> bool:
        return (KDF_ID, AEAD_ID) in self.suites


def parse_key_configs(data: bytes) -> list[KeyConfig]:
    """The configurations of an ``application/ohttp-keys`` body (RFC 9458 section 3.2:
    each one prefixed by its two-byte length)."""
    out, rest = [], data
    while rest:
        if len(rest) < 2:
            raise InputError("application/ohttp-keys is truncated")
        (length,) = struct.unpack("!H", rest[:2])
        if len(rest) < 2 + length:
            raise InputError("application/ohttp-keys is truncated")
        out.append(KeyConfig.parse(rest[2 : 2 + length]))
        rest = rest[2 + length :]
        if len(out) > 16:
            raise InputError("application/ohttp-keys holds more than 16 configurations")
    return out


def _header(key_id: int) -> bytes:
    return struct.pack("!BHHH", key_id, KEM_ID, KDF_ID, AEAD_ID)


def _response_keys(
    context: ContextInterface, enc: bytes, nonce: bytes, label: bytes = _RESPONSE_LABEL
) -> tuple[AESGCM, bytes]:
    """RFC 9458 section 4.4: the response's AEAD key and nonce from an exported secret
    (chunked responses export under their own label, the same way)."""
    secret = context.export(label, max(_N_N, _N_K))
    prk = hmac.digest(enc + nonce, secret, "sha256")  # HKDF-Extract(salt, IKM)
    key = HKDFExpand(hashes.SHA256(), _N_K, b"key").derive(prk)
    return AESGCM(key), HKDFExpand(hashes.SHA256(), _N_N, b"nonce").derive(prk)


@dataclass
class ClientRequest:
    """A request encapsulated by a client, and what opens its response."""

    encapsulated: bytes
    _context: ContextInterface
    _enc: bytes

    def open_response(self, encapsulated: bytes) -> bytes:
        """The response's plaintext; an altered or foreign response is refused."""
        size = max(_N_N, _N_K)
        if not size + _TAG <= len(encapsulated) <= MAX_ENCAPSULATED:
            raise VerificationError("ohttp.response", "the encapsulated response has a bad length")
        nonce, sealed = encapsulated[:size], encapsulated[size:]
        aead, aead_nonce = _response_keys(self._context, self._enc, nonce)
        try:
            return aead.decrypt(aead_nonce, sealed, None)
        except InvalidTag:
            raise VerificationError(
                "ohttp.response",
                "the response does not open with this request's keys "
                "(altered, or not the answer to this request)",
            ) from None


def encapsulate_request(
    config: KeyConfig, request: bytes, *, ephemeral: bytes | None = None
) -> ClientRequest:
    """Seal ``request`` (binary HTTP) to the gateway of ``config`` (RFC 9458 section 4.3).

    ``ephemeral`` fixes the sender's X25519 secret key: for known-answer tests only."""
    header, enc, context = _sender(config, _REQUEST_LABEL, ephemeral)
    return ClientRequest(header + enc + context.seal(request), context, enc)


def _sender(
    config: KeyConfig, label: bytes, ephemeral: bytes | None
) -> tuple[bytes, bytes, ContextInterface]:
    """The request header, ``enc`` and HPKE sender context for ``config`` (RFC 9458
    section 4.3: ``info`` is the label, a zero byte and the header)."""
    if not config.accepts():
        raise InputError("the gateway's key configuration offers no suite this client speaks")
    header = _header(config.key_id)
    pk = _SUITE.kem.deserialize_public_key(config.public_key)
    eks = None
    if ephemeral is not None:
        sk = _SUITE.kem.deserialize_private_key(ephemeral)
        eks = KEMKeyPair(sk, _SUITE.kem.deserialize_public_key(_raw_public(ephemeral)))
    enc, context = _SUITE.create_sender_context(pk, label + b"\x00" + header, eks=eks)
    return header, enc, context


class Gateway:
    """The gateway side: opens requests sealed to its key and seals their responses.

    Example::

        gateway = Gateway(secret_key_bytes, key_id=1)
        request, reply = gateway.open(encapsulated_request)
        encapsulated_response = reply(response_bytes)
    """

    def __init__(self, secret_key: bytes, key_id: int = 1) -> None:
        if not 0 <= key_id <= 255:
            raise InputError("an OHTTP key id is one byte")
        public = _raw_public(secret_key)  # first: refuses what is not an X25519 key
        self.key_id = key_id
        self._sk = _SUITE.kem.deserialize_private_key(secret_key)
        self.config = KeyConfig(key_id, KEM_ID, public, ((KDF_ID, AEAD_ID),))

    def open(self, encapsulated: bytes, *, nonce: bytes | None = None) -> tuple[bytes, Response]:
        """The request's plaintext and the function sealing its response. A request for
        another key or suite, or one that does not open, is refused.

        ``nonce`` fixes the response nonce: for known-answer tests only."""
        enc, context, sealed = self._recipient(encapsulated, _REQUEST_LABEL)
        try:
            request = context.open(sealed)
        except Exception:  # pyhpke raises its own errors for a bad tag
            raise _unopened() from None
        return request, Response(context, enc, nonce)

    def _recipient(
        self, encapsulated: bytes, label: bytes
    ) -> tuple[bytes, ContextInterface, bytes]:
        """``enc``, the HPKE recipient context and what follows the request header."""
        if not 7 + _N_PK + _TAG <= len(encapsulated) <= MAX_ENCAPSULATED:
            raise VerificationError("ohttp.request", "the encapsulated request has a bad length")
        header, enc, rest = (
            encapsulated[:7],
            encapsulated[7 : 7 + _N_PK],
            encapsulated[7 + _N_PK :],
        )
        if header != _header(self.key_id):
            raise VerificationError(
                "ohttp.request", "sealed to another key or suite than this gateway's"
            )
        try:
            context = _SUITE.create_recipient_context(enc, self._sk, label + b"\x00" + header)
        except Exception:  # pyhpke raises its own errors for an enc that is not a key
            raise _unopened() from None
        return enc, context, rest


def _unopened() -> VerificationError:
    return VerificationError(
        "ohttp.request", "the request does not open with this gateway's key (altered?)"
    )


@dataclass
class Response:
    """Seals the response to one opened request (RFC 9458 section 4.4). ``enc`` is the
    request's encapsulated key: fresh for every request, so it names the request (a
    gateway's replay check keys on it)."""

    _context: ContextInterface
    enc: bytes
    _nonce: bytes | None = None

    def __call__(self, response: bytes) -> bytes:
        nonce = self._nonce if self._nonce is not None else os.urandom(max(_N_N, _N_K))
        aead, aead_nonce = _response_keys(self._context, self.enc, nonce)
        return nonce + aead.encrypt(aead_nonce, response, None)


def _raw_public(secret: bytes) -> bytes:
    try:
        key = X25519PrivateKey.from_private_bytes(secret)
    except ValueError as exc:
        raise InputError(f"an OHTTP key is 32 bytes of X25519: {exc}") from None
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
