"""Binary HTTP responses read as they arrive (RFC 9292 section 3.2): the RFC's
indeterminate-length example read in every split, what the gateway writes read back,
and every cut or malformed stream refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inferproof.confidential import BinaryResponse, decode_response, encode_response
from inferproof.confidential._bhttpstream import (
    RESPONSE_END,
    ResponseReader,
    content_chunk,
    response_head,
)
from inferproof.errors import InputError

VECTORS = json.loads((Path(__file__).parent / "vectors" / "rfc9292.json").read_text())
EXAMPLE = bytes.fromhex(VECTORS["indeterminate_length_response"]["hex"])


def _read(wire: bytes, step: int) -> tuple[ResponseReader, bytes]:
    reader, body = ResponseReader(), b""
    for i in range(0, len(wire), step):
        body += b"".join(reader.feed(wire[i : i + step]))
    assert reader.close() is None
    return reader, body


def test_the_rfc_example_reads_in_every_split() -> None:
    whole = decode_response(EXAMPLE)
    for step in range(1, len(EXAMPLE) + 1):
        reader, body = _read(EXAMPLE, step)
        assert (reader.status, reader.headers, body) == (whole.status, whole.headers, whole.content)
    assert whole.status == 200 and whole.content  # the example's final answer has content


def test_what_the_gateway_writes_reads_back_as_the_same_response() -> None:
    headers = (("content-type", "text/event-stream"), ("x-inferproof-bundle", "b1"))
    pieces = [b"data: one\n\n", b"data: " + b"x" * 70000 + b"\n\n", b"data: [DONE]\n\n"]
    wire = response_head(201, headers) + b"".join(map(content_chunk, pieces)) + RESPONSE_END
    assert decode_response(wire) == BinaryResponse(201, headers, b"".join(pieces))
    reader, body = _read(wire, 4096)
    assert (reader.status, reader.headers, body) == (201, headers, b"".join(pieces))


def test_content_comes_out_as_each_chunk_is_whole() -> None:
    reader = ResponseReader()
    head = response_head(200, (("a", "b"),))
    assert reader.feed(head[:-1]) == [] and not reader.head_ready
    assert reader.feed(head[-1:]) == [] and reader.head_ready and reader.status == 200
    chunk = content_chunk(b"hello")
    assert reader.feed(chunk[:3]) == []
    assert reader.feed(chunk[3:]) == [b"hello"]


def test_a_known_length_response_is_read_whole_at_the_end() -> None:
    answer = BinaryResponse(404, (("content-type", "text/plain"),), b"no such model")
    reader = ResponseReader()
    assert reader.feed(encode_response(answer)) == [] and not reader.head_ready
    assert reader.close() == answer and reader.status == 404


def test_trailers_may_be_left_out_but_content_may_not() -> None:
    head = response_head(200, ())
    reader = ResponseReader()
    reader.feed(head + content_chunk(b"ok") + b"\x00")  # content ends, no trailer section
    assert reader.close() is None
    for cut in (head, head + content_chunk(b"ok"), head[:2], b""):
        reader = ResponseReader()
        reader.feed(cut)
        with pytest.raises(InputError, match="truncated"):
            reader.close()


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (b"\x02", "framing indicator 2 is not a response's"),
        (b"\x00", "framing indicator 0 is not a response's"),
        (b"\x03\x40\x32", "status 50 is not"),  # 50: neither informational nor final
        (b"\x03\x42\x58", "status 600 is not"),
        (b"\x03\x40\xc8\x01A\x01b\x00", "not a lowercase token"),
        (b"\x03\x40\xc8\x00\x00\x00\x07", "non-zero padding"),
    ],
)
def test_a_malformed_stream_is_refused_naming_why(wire: bytes, why: str) -> None:
    reader = ResponseReader()
    with pytest.raises(InputError, match=why):
        reader.feed(wire)
        reader.close()


def test_a_stream_over_the_cap_is_refused() -> None:
    reader = ResponseReader()
    reader.feed(response_head(200, ()))
    with pytest.raises(InputError, match="over"):
        for _ in range(1100):
            reader.feed(b"\x80\x00\x40\x00" + b"z" * 16384)


def test_an_empty_chunk_is_never_written() -> None:
    with pytest.raises(InputError, match="never empty"):
        content_chunk(b"")
    with pytest.raises(InputError, match="not 200 to 599"):
        response_head(103, ())
