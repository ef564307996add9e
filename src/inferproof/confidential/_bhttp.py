"""Binary HTTP messages (RFC 9292): what an Oblivious HTTP request and response carry.

Known-length messages are written; known- and indeterminate-length messages are read
(section 3), with informational responses (section 3.5.1), truncation (section 3.1) and
zero padding (section 3.8). Every length a message states is checked against what is left
of it, and the whole message and its field count are capped, so a hostile message costs
at most its own size to refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import InputError

__all__ = [
    "MAX_FIELDS",
    "MAX_MESSAGE",
    "BinaryRequest",
    "BinaryResponse",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
]

# The largest message read: a node's request body cap (16 MiB, node/_guard.py) is the
# largest thing a gateway would forward, and a response never carries more than a bundle.
MAX_MESSAGE = 16 * 1024 * 1024
# Field lines per section: real requests carry tens; RFC 9292 section 8 warns of
# resource exhaustion through many fields.
MAX_FIELDS = 256
# RFC 9110 section 5.1: a field name is a token (tchar, section 5.6.2), lowercase in
# HTTP/2 and so here (RFC 9113 section 8.2.1, which RFC 9292 section 3.6 applies).
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
# RFC 9113 section 8.2.1: a value has no NUL, CR or LF, and no leading or trailing space.
_BAD_VALUE = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$")
_PSEUDO = (b":method", b":scheme", b":authority", b":path", b":status")

Fields = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class BinaryRequest:
    """A request's control data (RFC 9292 section 3.4), fields and content.

    Example::

        request = BinaryRequest("POST", "https", "node.example", "/v1/infer",
                                (("content-type", "application/json"),), b"{}")
        assert decode_request(encode_request(request)) == request
    """

    method: str
    scheme: str
    authority: str
    path: str
    headers: Fields = ()
    content: bytes = b""
    trailers: Fields = ()


@dataclass(frozen=True)
class BinaryResponse:
    """A final status, its fields and content, after any informational responses."""

    status: int
    headers: Fields = ()
    content: bytes = b""
    trailers: Fields = ()
    informational: tuple[tuple[int, Fields], ...] = field(default=())


class _Truncated(InputError):
    """The message ends inside a part: an error for a whole message, a wait for more
    bytes to one read as it arrives (_bhttpstream.py)."""


# -- variable-length integers (RFC 9000 section 16) ---------------------------------------
def _varint(n: int) -> bytes:
    if n < 0 or n >= 1 << 62:
        raise InputError(f"binary HTTP: {n} does not fit a variable-length integer")
    for prefix, size in ((0, 1), (1, 2), (2, 4), (3, 8)):
        if n < 1 << (8 * size - 2):
            return (n | prefix << (8 * size - 2)).to_bytes(size, "big")
    raise AssertionError("unreachable")  # pragma: no cover


class _Reader:
    """A cursor over a message; every read is checked against what is left."""

    def __init__(self, data: bytes) -> None:
        if len(data) > MAX_MESSAGE:
            raise InputError(f"binary HTTP message is over {MAX_MESSAGE} bytes")
        self.data, self.at = data, 0

    def done(self) -> bool:
        return self.at >= len(self.data)

    def varint(self) -> int:
        if self.done():
            raise _Truncated("binary HTTP message is truncated inside an integer")
        first = self.data[self.at]
        size = 1 << (first >> 6)
        if self.at + size > len(self.data):
            raise _Truncated("binary HTTP message is truncated inside an integer")
        raw = bytes([first & 0x3F]) + self.data[self.at + 1 : self.at + size]
        self.at += size
        return int.from_bytes(raw, "big")

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.data) - self.at:
            raise _Truncated(f"binary HTTP {what} is longer than the message ({n} bytes)")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def prefixed(self, what: str) -> bytes:
        return self.take(self.varint(), what)

    def padding(self) -> None:
        # RFC 9292 section 3.8: padding is zero bytes; anything else makes it invalid.
        if any(self.data[self.at :]):
            raise InputError("binary HTTP message has data after its end (non-zero padding)")
        self.at = len(self.data)


# -- fields ------------------------------------------------------------------------------
def _check_field(name: bytes, value: bytes) -> tuple[str, str]:
    if not name or not _NAME.fullmatch(name):
        if name in _PSEUDO or name.startswith(b":"):
            raise InputError(f"binary HTTP message carries the pseudo-field {name!r}")
        raise InputError(f"binary HTTP field name {name[:64]!r} is not a lowercase token")
    if _BAD_VALUE.search(value):
        raise InputError(f"binary HTTP field {name.decode()} has a malformed value")
    return name.decode("ascii"), value.decode("latin-1")


def _encode_fields(fields: Fields) -> bytes:
    out = bytearray()
    for name, value in fields:
        n, v = name.encode("ascii"), value.encode("latin-1")
        _check_field(n, v)
        out += _varint(len(n)) + n + _varint(len(v)) + v
    return bytes(out)


def _known_fields(r: _Reader) -> Fields:
    section = _Reader(r.prefixed("field section"))
    out: list[tuple[str, str]] = []
    while not section.done():
        if len(out) == MAX_FIELDS:
            raise InputError(f"binary HTTP field section has over {MAX_FIELDS} fields")
        name = section.prefixed("field name")
        out.append(_check_field(name, section.prefixed("field value")))
    return tuple(out)


def _open_fields(r: _Reader) -> Fields:
    out: list[tuple[str, str]] = []
    while True:
        size = r.varint()
        if size == 0:  # the Content Terminator ends the section
            return tuple(out)
        if len(out) == MAX_FIELDS:
            raise InputError(f"binary HTTP field section has over {MAX_FIELDS} fields")
        name = r.take(size, "field name")
        out.append(_check_field(name, r.prefixed("field value")))


def _fields(r: _Reader, known: bool) -> Fields:
    if r.done():  # truncated after the previous part (section 3.1): an empty section
        return ()
    return _known_fields(r) if known else _open_fields(r)


def _content(r: _Reader, known: bool) -> bytes:
    if r.done():
        return b""
    if known:
        return r.prefixed("content")
    chunks = bytearray()
    while (size := r.varint()) != 0:
        chunks += r.take(size, "content chunk")
    return bytes(chunks)


# -- messages ----------------------------------------------------------------------------
def encode_request(request: BinaryRequest) -> bytes:
    """The known-length encoding (framing indicator 0) of ``request``."""
    control = b"".join(
        _varint(len(b)) + b
        for b in (s.encode("ascii") for s in (request.method, request.scheme,
                                              request.authority, request.path))
    )  # fmt: skip
    headers, trailers = _encode_fields(request.headers), _encode_fields(request.trailers)
    return b"".join((
        _varint(0), control, _varint(len(headers)), headers,
        _varint(len(request.content)), request.content, _varint(len(trailers)), trailers,
    ))  # fmt: skip


def encode_response(response: BinaryResponse) -> bytes:
    """The known-length encoding (framing indicator 1) of ``response``."""
    out = bytearray(_varint(1))
    for status, fields in response.informational:
        if not 100 <= status <= 199:
            raise InputError(f"binary HTTP informational status {status} is not 1xx")
        encoded = _encode_fields(fields)
        out += _varint(status) + _varint(len(encoded)) + encoded
    if not 200 <= response.status <= 599:
        raise InputError(f"binary HTTP final status {response.status} is not 200 to 599")
    headers, trailers = _encode_fields(response.headers), _encode_fields(response.trailers)
    out += _varint(response.status) + _varint(len(headers)) + headers
    out += _varint(len(response.content)) + response.content + _varint(len(trailers)) + trailers
    return bytes(out)


def _framing(r: _Reader, request: bool) -> bool:
    indicator = r.varint()
    want = (0, 2) if request else (1, 3)
    if indicator not in want:
        kind = "request" if request else "response"
        raise InputError(f"binary HTTP framing indicator {indicator} is not a {kind}'s")
    return indicator == want[0]


def decode_request(data: bytes) -> BinaryRequest:
    """Read a binary request, known- or indeterminate-length; an invalid one is an
    :class:`InputError` naming what is wrong (RFC 9292 section 4)."""
    r = _Reader(data)
    known = _framing(r, request=True)
    try:
        method, scheme, authority, path = (
            r.prefixed(what).decode("ascii") for what in ("method", "scheme", "authority", "path")
        )
    except UnicodeDecodeError:
        raise InputError("binary HTTP request control data is not ASCII") from None
    if not method or not scheme:
        raise InputError("binary HTTP request has no method or scheme")
    headers = _fields(r, known)
    content = _content(r, known)
    trailers = _fields(r, known)
    r.padding()
    return BinaryRequest(method, scheme, authority, path, headers, content, trailers)


def decode_response(data: bytes) -> BinaryResponse:
    """Read a binary response, with any informational (1xx) responses before it."""
    r = _Reader(data)
    known = _framing(r, request=False)
    informational: list[tuple[int, Fields]] = []
    while True:
        status = r.varint()
        if not 100 <= status <= 599:
            raise InputError(f"binary HTTP status {status} is not 100 to 599")
        if status >= 200:
            break
        if len(informational) == MAX_FIELDS:
            raise InputError(f"binary HTTP response has over {MAX_FIELDS} informational parts")
        informational.append((status, _fields(r, known)))
    headers = _fields(r, known)
    content = _content(r, known)
    trailers = _fields(r, known)
    r.padding()
    return BinaryResponse(status, headers, content, trailers, tuple(informational))
