"""Chunked Oblivious HTTP (draft-ietf-ohai-chunked-ohttp-08): requests and responses
sealed and opened a chunk at a time, so a streamed answer reaches the client as the
node writes it.

The request is RFC 9458's header and ``enc`` followed by length-prefixed chunks sealed
with the HPKE context (its sequence number orders them); the response is a nonce
followed by chunks sealed with the response key, the chunk counter XORed into the
nonce (draft section 6.2). In both, the last chunk has a zero length prefix, runs to
the end of the stream and is sealed with the AAD ``final``: a message cut short, or
with chunks moved, never opens as complete (draft section 7.1).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyhpke.context_interface import ContextInterface

from ..errors import InputError, VerificationError
from ._bhttp import _varint
from ._ohttp import (
    _N_K,
    _N_N,
    _TAG,
    MAX_ENCAPSULATED,
    Gateway,
    KeyConfig,
    _response_keys,
    _sender,
    _unopened,
)

__all__ = [
    "CHUNK_SIZE",
    "ChunkedClientRequest",
    "ChunkedResponse",
    "ChunkedResponseReader",
    "encapsulate_chunked_request",
    "open_chunked_request",
]

# Draft section 4: a receiver MUST take chunks of 2^14 bytes before sealing, and a
# sender SHOULD keep to that size; this sender does.
CHUNK_SIZE = 16384
# What this receiver takes in one sealed chunk: more than the draft's 2^14, because a
# gateway of another implementation may put a whole answer in one; bounded all the same.
_MAX_SEALED_CHUNK = 1024 * 1024 + _TAG
# Draft section 6.2: a response MUST NOT use 256^Nn chunks (the nonce would repeat);
# far fewer are ever needed, and this bound keeps the counter a small integer.
_MAX_CHUNKS = 1 << 32
_REQUEST_LABEL = b"message/bhttp chunked request"
_RESPONSE_LABEL = b"message/bhttp chunked response"
_FINAL = b"final"
_ENTROPY = max(_N_N, _N_K)


def _read_varint(data: bytes | bytearray, at: int) -> tuple[int, int] | None:
    """The RFC 9000 section 16 integer at ``at`` and where it ends, or None when ``data``
    ends inside it."""
    if at >= len(data):
        return None
    size = 1 << (data[at] >> 6)
    if at + size > len(data):
        return None
    raw = bytes([data[at] & 0x3F]) + bytes(data[at + 1 : at + size])
    return int.from_bytes(raw, "big"), at + size


class ChunkedClientRequest:
    """A chunked request sealed by a client, and what opens its chunked response."""

    def __init__(self, encapsulated: bytes, context: ContextInterface, enc: bytes) -> None:
        self.encapsulated = encapsulated
        self._context, self._enc = context, enc

    def response_reader(self) -> ChunkedResponseReader:
        """A reader for the chunked answer to this request (one per request)."""
        return ChunkedResponseReader(self._context, self._enc)


def encapsulate_chunked_request(
    config: KeyConfig,
    request: bytes | list[bytes],
    *,
    ephemeral: bytes | None = None,
) -> ChunkedClientRequest:
    """Seal ``request`` (binary HTTP) to ``config``'s gateway as a chunked request.

    Bytes are cut into chunks of at most :data:`CHUNK_SIZE`, the last sealed as final;
    a list gives the chunks themselves (its last is the final one). All are sealed at
    once: the request is never influenced by the answer, the draft's non-interactive
    case (section 7.2). ``ephemeral`` fixes the sender's key, for known-answer tests.

    Example::

        sealed = encapsulate_chunked_request(config, encode_request(message))
        reader = sealed.response_reader()
    """
    if isinstance(request, bytes):
        pieces = [request[i : i + CHUNK_SIZE] for i in range(0, len(request), CHUNK_SIZE)]
        pieces = pieces or [b""]
    else:
        pieces = list(request) or [b""]
    header, enc, context = _sender(config, _REQUEST_LABEL, ephemeral)
    out = bytearray(header + enc)
    for piece in pieces[:-1]:
        sealed = context.seal(piece, b"")
        out += _varint(len(sealed)) + sealed
    out += _varint(0) + context.seal(pieces[-1], _FINAL)
    if len(out) > MAX_ENCAPSULATED:
        raise InputError(f"a sealed request is at most {MAX_ENCAPSULATED} bytes")
    return ChunkedClientRequest(bytes(out), context, enc)


def open_chunked_request(
    gateway: Gateway, encapsulated: bytes, *, nonce: bytes | None = None
) -> tuple[bytes, ChunkedResponse]:
    """The plaintext of a whole chunked request and the writer of its chunked response.
    A request that is altered, reordered, cut short or for another key is refused.

    ``nonce`` fixes the response nonce, for known-answer tests."""
    enc, context, rest = gateway._recipient(encapsulated, _REQUEST_LABEL)
    plain, at = bytearray(), 0
    while True:
        read = _read_varint(rest, at)
        if read is None:
            raise VerificationError(
                "ohttp.request", "the chunked request ends before its final chunk"
            )
        length, at = read
        final = length == 0
        sealed = rest[at:] if final else rest[at : at + length]
        if not final and len(sealed) < length:
            raise VerificationError("ohttp.request", "the chunked request ends inside a chunk")
        try:
            plain += context.open(sealed, _FINAL if final else b"")
        except Exception:  # pyhpke raises its own errors for a bad tag
            raise _unopened() from None
        if final:
            return bytes(plain), ChunkedResponse(context, enc, nonce)
        at += length


class ChunkedResponse:
    """Seals one chunked response (draft section 6.2): :meth:`start` gives the nonce
    that begins it, :meth:`seal` each chunk, :meth:`final` the last one.

    ``enc`` names the request it answers (fresh for each; the replay check keys on it).
    """

    def __init__(self, context: ContextInterface, enc: bytes, nonce: bytes | None = None) -> None:
        self.enc = enc
        self._nonce = nonce if nonce is not None else os.urandom(_ENTROPY)
        self._aead, self._base = _response_keys(context, enc, self._nonce, _RESPONSE_LABEL)
        self._counter = 0
        self._ended = False

    def start(self) -> bytes:
        return self._nonce

    def _next(self, chunk: bytes, aad: bytes) -> bytes:
        if self._ended or self._counter >= _MAX_CHUNKS:
            raise InputError("this chunked response has ended or has too many chunks")
        nonce = _xor(self._base, self._counter)
        self._counter += 1
        return self._aead.encrypt(nonce, chunk, aad)

    def seal(self, chunk: bytes) -> bytes:
        sealed = self._next(chunk, b"")
        return _varint(len(sealed)) + sealed

    def final(self, chunk: bytes = b"") -> bytes:
        sealed = self._next(chunk, _FINAL)
        self._ended = True
        return _varint(0) + sealed

    def whole(self, response: bytes) -> Iterator[bytes]:
        """The whole of ``response`` as a chunked response: nonce, chunks, final."""
        yield self.start()
        for i in range(0, len(response), CHUNK_SIZE):
            yield self.seal(response[i : i + CHUNK_SIZE])
        yield self.final()


def _xor(base: bytes, counter: int) -> bytes:
    # Draft section 6.2: chunk_nonce = aead_nonce XOR encode(Nn, counter).
    return (int.from_bytes(base, "big") ^ counter).to_bytes(len(base), "big")


class ChunkedResponseReader:
    """Opens a chunked response as its bytes arrive: :meth:`feed` returns the chunks
    opened so far, :meth:`close` the final one, at the end of the stream. Nothing but
    a verified final chunk makes the answer complete (draft section 7.1): a stream cut
    short, reordered or altered raises :class:`VerificationError` (``ohttp.response``).
    """

    def __init__(self, context: ContextInterface, enc: bytes) -> None:
        self._context, self._enc = context, enc
        self._buffer = bytearray()
        self._aead: AESGCM | None = None
        self._base = b""
        self._counter = 0
        self._final = False
        self._size = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._size += len(data)
        if self._size > MAX_ENCAPSULATED:
            raise _broken(f"the chunked response is over {MAX_ENCAPSULATED} bytes")
        self._buffer += data
        if self._final:
            return []
        if self._aead is None:
            if len(self._buffer) < _ENTROPY:
                return []
            nonce = bytes(self._buffer[:_ENTROPY])
            del self._buffer[:_ENTROPY]
            self._aead, self._base = _response_keys(
                self._context, self._enc, nonce, _RESPONSE_LABEL
            )
        return self._chunks()

    def _chunks(self) -> list[bytes]:
        out = []
        while not self._final:
            read = _read_varint(self._buffer, 0)
            if read is None:
                break
            length, at = read
            if length == 0:
                self._final = True
                del self._buffer[:at]
                break
            if length > _MAX_SEALED_CHUNK:
                raise _broken(f"a response chunk is over {_MAX_SEALED_CHUNK} bytes")
            if len(self._buffer) < at + length:
                break
            out.append(self._open(bytes(self._buffer[at : at + length]), b""))
            del self._buffer[: at + length]
        return out

    def _open(self, sealed: bytes, aad: bytes) -> bytes:
        assert self._aead is not None
        if self._counter >= _MAX_CHUNKS:
            raise _broken("the chunked response has too many chunks")
        nonce = _xor(self._base, self._counter)
        self._counter += 1
        try:
            return self._aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise _broken(
                "a response chunk does not open with this request's keys "
                "(altered, reordered, or not the answer to this request)"
            ) from None

    def close(self) -> bytes:
        """The final chunk's plaintext; raises if the stream ended before it."""
        if self._aead is None or not self._final:
            raise _broken("the chunked response ended before its final chunk (cut short)")
        final = self._open(bytes(self._buffer), _FINAL)
        self._buffer.clear()
        return final


def _broken(why: str) -> VerificationError:
    return VerificationError("ohttp.response", why)
