"""Binary HTTP (RFC 9292) against the RFC's own examples (tests/confidential/vectors),
and every way a hostile message is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inferproof.confidential import (
    MAX_FIELDS,
    BinaryRequest,
    BinaryResponse,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from inferproof.errors import InputError

VECTORS = json.loads((Path(__file__).parent / "vectors" / "rfc9292.json").read_text())


def _fields(pairs: list[list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name, value in pairs)


def _request(v: dict[str, Any]) -> BinaryRequest:
    return BinaryRequest(v["method"], v["scheme"], v["authority"], v["path"],
                         _fields(v["headers"]), v["content"].encode(), _fields(v["trailers"]))  # fmt: skip


def _response(v: dict[str, Any]) -> BinaryResponse:
    informational = tuple((status, _fields(f)) for status, f in v["informational"])
    return BinaryResponse(v["status"], _fields(v["headers"]), v["content"].encode(),
                          _fields(v["trailers"]), informational)  # fmt: skip


def test_the_known_length_request_example_round_trips_byte_for_byte() -> None:
    v = VECTORS["known_length_request"]
    wire = bytes.fromhex(v["hex"])
    assert decode_request(wire) == _request(v)
    assert encode_request(_request(v)) == wire


def test_the_indeterminate_length_request_example_reads_as_the_same_request() -> None:
    wire = bytes.fromhex(VECTORS["indeterminate_length_request"]["hex"])
    assert decode_request(wire) == _request(VECTORS["known_length_request"])


def test_the_response_examples_read_with_their_informational_parts() -> None:
    v = VECTORS["indeterminate_length_response"]
    got = decode_response(bytes.fromhex(v["hex"]))
    assert got == _response(v)
    assert [s for s, _ in got.informational] == [102, 103]
    k = VECTORS["known_length_response"]
    wire = bytes.fromhex(k["hex"])
    assert decode_response(wire) == _response(k)
    assert encode_response(_response(k)) == wire


def test_truncation_and_zero_padding_change_nothing() -> None:
    """RFC 9292 sections 3.1 and 3.8: the empty content and trailers may be cut, and
    zero bytes may follow."""
    wire = bytes.fromhex(VECTORS["known_length_request"]["hex"])
    want = decode_request(wire)
    assert decode_request(wire[:-1]) == want == decode_request(wire[:-2])
    assert decode_request(wire + bytes(10)) == want


@pytest.mark.parametrize(
    ("wire", "says"),
    [
        (b"", "truncated inside an integer"),
        (bytes([4]), "framing indicator 4 is not a request's"),
        (bytes([1, 0x40, 0xC8]), "framing indicator 1 is not a request's"),
        (bytes.fromhex("00034745540568747470730b6578616d706c652e636f6d01"), "path is longer"),
        (
            bytes.fromhex("0003474554056874747073000a2f68656c6c6f2e74787440ff"),
            "field section is longer",
        ),
        (bytes.fromhex("00034745540568747470730000000000") + bytes([1]), "data after its end"),
        (bytes.fromhex("0000056874747073000100"), "no method or scheme"),
        (bytes.fromhex("0003474554056874747073000005") + b"\x02Ab\x01x", "not a lowercase token"),
        (bytes.fromhex("0003474554056874747073000006") + b"\x03:ab\x01x", "pseudo-field"),
        (bytes.fromhex("0003474554056874747073000006") + b"\x01a\x03x\r\n", "malformed value"),
        (bytes.fromhex("0003474554056874747073000006") + b"\x01a\x03 xy", "malformed value"),
    ],
)
def test_a_malformed_request_is_refused_naming_why(wire: bytes, says: str) -> None:
    with pytest.raises(InputError, match=says):
        decode_request(wire)


def test_bounds_refuse_too_many_fields_and_too_large_a_message() -> None:
    line = b"\x01a\x01b"
    many = bytes([2, 3]) + b"GET" + b"\x05https\x00\x01/" + line * (MAX_FIELDS + 1) + b"\x00"
    with pytest.raises(InputError, match=f"over {MAX_FIELDS} fields"):
        decode_request(many)
    with pytest.raises(InputError, match="over 16777216 bytes"):
        decode_request(bytes(16 * 1024 * 1024 + 1))
    # A length prefix far past the message's end is refused without reading anything.
    with pytest.raises(InputError, match="longer than the message"):
        decode_request(
            bytes.fromhex("00034745540568747470730000") + bytes.fromhex("c000000000ffffff")
        )


@pytest.mark.parametrize(
    ("wire", "says"),
    [
        (bytes([1, 0x40, 0x63]), "status 99 is not 100 to 599"),
        (bytes([1, 0x42, 0x58]), "status 600 is not 100 to 599"),
        (bytes([0]), "framing indicator 0 is not a response's"),
    ],
)
def test_a_malformed_response_is_refused(wire: bytes, says: str) -> None:
    with pytest.raises(InputError, match=says):
        decode_response(wire)


def test_encoding_refuses_what_it_could_not_read_back() -> None:
    with pytest.raises(InputError, match="not a lowercase token"):
        encode_request(BinaryRequest("GET", "https", "", "/", (("Host", "x"),)))
    with pytest.raises(InputError, match="final status 100"):
        encode_response(BinaryResponse(100))
    with pytest.raises(InputError, match="informational status 200"):
        encode_response(BinaryResponse(200, informational=((200, ()),)))


def test_what_is_encoded_reads_back_for_every_size_of_length_prefix() -> None:
    for size in (0, 63, 64, 16383, 16384, 70000):
        response = BinaryResponse(200, (("x", "y"),), b"z" * size, (("t", "u"),))
        assert decode_response(encode_response(response)) == response
