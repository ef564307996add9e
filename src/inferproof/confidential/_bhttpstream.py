"""Binary HTTP responses written and read a piece at a time (RFC 9292 section 3.2, the
indeterminate-length form): a streamed answer goes through the gateway as it is made.

The writer gives the head (framing indicator 3, the status and the header section
with its terminator), each content chunk with its length, and the end (the content
terminator and an empty trailer section). The reader takes bytes as they arrive and
hands back content as soon as a whole chunk is in; its head is known once every
header has arrived. A known-length response (framing 1) is read too, whole, at the end.
"""

from __future__ import annotations

from ..errors import InputError
from ._bhttp import (
    MAX_FIELDS,
    MAX_MESSAGE,
    BinaryResponse,
    Fields,
    _encode_fields,
    _open_fields,
    _Reader,
    _Truncated,
    _varint,
    decode_response,
)

__all__ = ["RESPONSE_END", "ResponseReader", "content_chunk", "response_head"]

# The content terminator, then an empty trailer section closed by its own terminator.
RESPONSE_END = _varint(0) + _varint(0)


def response_head(status: int, headers: Fields) -> bytes:
    """The start of an indeterminate-length response: framing, status, header section."""
    if not 200 <= status <= 599:
        raise InputError(f"binary HTTP final status {status} is not 200 to 599")
    return _varint(3) + _varint(status) + _open_section(headers)


def _open_section(headers: Fields) -> bytes:
    # An indeterminate-length section is its field lines then a zero (section 3.6).
    return _encode_fields(headers) + _varint(0)


def content_chunk(data: bytes) -> bytes:
    """One content chunk; never empty, since an empty one would end the content."""
    if not data:
        raise InputError("an indeterminate-length content chunk is never empty")
    return _varint(len(data)) + data


class ResponseReader:
    """Reads a binary response as it arrives: :meth:`feed` returns content as it comes,
    :attr:`status` and :attr:`headers` are set once the head is in, :meth:`close`
    checks the message ended well and returns what was left.

    Example::

        reader = ResponseReader()
        for piece in pieces:
            body = reader.feed(piece)
        rest = reader.close()
    """

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: Fields = ()
        self._buffer = bytearray()
        self._state = "framing"
        self._size = 0

    @property
    def head_ready(self) -> bool:
        return self.status is not None

    def feed(self, data: bytes) -> list[bytes]:
        self._size += len(data)
        if self._size > MAX_MESSAGE:
            raise InputError(f"binary HTTP message is over {MAX_MESSAGE} bytes")
        self._buffer += data
        if self._state == "framing":
            self._framing()
        if self._state == "head":
            self._head()
        out: list[bytes] = []
        if self._state == "content":
            out = self._content()
        if self._state == "trailers":
            self._trailers()
        return out

    def _framing(self) -> None:
        if not self._buffer:
            return
        indicator = self._buffer[0]
        if indicator not in (1, 3):
            raise InputError(f"binary HTTP framing indicator {indicator} is not a response's")
        self._state = "known" if indicator == 1 else "head"
        if indicator == 3:
            del self._buffer[:1]

    def _head(self) -> None:
        r = _Reader(bytes(self._buffer))
        try:
            parts = 0
            while (status := r.varint()) < 200:
                if not status >= 100 or parts == MAX_FIELDS:
                    raise InputError(f"binary HTTP status {status} is not 100 to 599")
                _open_fields(r)  # an informational response: read and passed over
                parts += 1
            if status > 599:
                raise InputError(f"binary HTTP status {status} is not 100 to 599")
            headers = _open_fields(r)
        except _Truncated:
            return
        self.status, self.headers = status, headers
        del self._buffer[: r.at]
        self._state = "content"

    def _content(self) -> list[bytes]:
        out: list[bytes] = []
        while True:
            r = _Reader(bytes(self._buffer))
            try:
                size = r.varint()
                chunk = r.take(size, "content chunk") if size else b""
            except _Truncated:
                return out
            del self._buffer[: r.at]
            if not size:
                self._state = "trailers"
                return out
            out.append(chunk)

    def _trailers(self) -> None:
        r = _Reader(bytes(self._buffer))
        try:
            _open_fields(r)
        except _Truncated:
            return
        del self._buffer[: r.at]
        self._state = "done"

    def close(self) -> BinaryResponse | None:
        """Check the message is whole. A known-length response, read only now, comes
        back as a :class:`BinaryResponse`; an indeterminate one returns None (its content
        went out through :meth:`feed`)."""
        if self._state == "known":
            answer = decode_response(bytes(self._buffer))
            self.status, self.headers = answer.status, answer.headers
            return answer
        # Section 3.1 lets a message end after its content, the trailers left out.
        if self._state not in ("trailers", "done") or (self._state == "trailers" and self._buffer):
            raise InputError("binary HTTP response ends before its content does (truncated)")
        if any(self._buffer):  # section 3.8: only zero padding may follow
            raise InputError("binary HTTP message has data after its end (non-zero padding)")
        return None
