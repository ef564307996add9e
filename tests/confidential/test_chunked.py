"""Chunked Oblivious HTTP (draft-ietf-ohai-chunked-ohttp-08) against the draft's worked
example, byte for byte, and every altered, reordered or truncated message refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inferproof.confidential import (
    ChunkedResponse,
    Gateway,
    KeyConfig,
    encapsulate_chunked_request,
    encapsulate_request,
    open_chunked_request,
)
from inferproof.confidential._chunked import _xor
from inferproof.confidential._ohttp import _response_keys
from inferproof.errors import VerificationError

HERE = Path(__file__).parent / "vectors"
RAW = json.loads((HERE / "chunked-ohttp.json").read_text())
V = {k: bytes.fromhex(v) for k, v in RAW.items() if isinstance(v, str) and k != "source"}


def _pieces(data: bytes, sizes: list[int]) -> list[bytes]:
    out, at = [], 0
    for size in sizes:
        out.append(data[at : at + size])
        at += size
    assert at == len(data)
    return out


def _example() -> tuple[Gateway, bytes]:
    gateway = Gateway(V["gateway_secret_key"], key_id=1)
    sealed = encapsulate_chunked_request(
        KeyConfig.parse(V["key_config"]),
        _pieces(V["request"], RAW["request_chunk_sizes"]),
        ephemeral=V["ephemeral_secret_key"],
    )
    return gateway, sealed.encapsulated


def test_the_drafts_example_request_byte_for_byte() -> None:
    gateway, encapsulated = _example()
    assert KeyConfig.parse(V["key_config"]).public_key == gateway.config.public_key
    assert encapsulated == V["encapsulated_request"]
    assert encapsulated[7:39] == V["ephemeral_public_key"]
    request, _ = open_chunked_request(gateway, V["encapsulated_request"])
    assert request == V["request"]


def test_the_drafts_example_response_byte_for_byte() -> None:
    gateway, encapsulated = _example()
    _, writer = open_chunked_request(gateway, encapsulated, nonce=V["response_nonce"])
    pieces = _pieces(V["response"], RAW["response_chunk_sizes"])
    wire = writer.start() + b"".join(writer.seal(p) for p in pieces[:-1]) + writer.final(pieces[-1])
    assert wire == V["encapsulated_response"]


def test_the_drafts_intermediate_keys_and_nonces() -> None:
    """The AES key, the base nonce and each chunk's nonce, as the example lists them."""
    gateway = Gateway(V["gateway_secret_key"], key_id=1)
    enc, context, _ = gateway._recipient(
        V["encapsulated_request"], b"message/bhttp chunked request"
    )
    assert context.export(b"message/bhttp chunked response", 16) == V["exported_secret"]
    _, base = _response_keys(context, enc, V["response_nonce"], b"message/bhttp chunked response")
    assert base == V["aead_nonce"]
    assert [_xor(base, i).hex() for i in range(3)] == RAW["chunk_nonces"]


def test_the_client_reads_the_example_response_in_any_split() -> None:
    sealed = encapsulate_chunked_request(
        KeyConfig.parse(V["key_config"]),
        _pieces(V["request"], RAW["request_chunk_sizes"]),
        ephemeral=V["ephemeral_secret_key"],
    )
    wire = V["encapsulated_response"]
    for step in (1, 2, 7, 16, 17, len(wire)):
        reader = sealed.response_reader()
        plain = b"".join(
            b"".join(reader.feed(wire[i : i + step])) for i in range(0, len(wire), step)
        )
        assert plain + reader.close() == V["response"]


def _round(request: bytes, answer: list[bytes]) -> tuple[bytes, bytes]:
    gateway = Gateway(bytes(range(32)), key_id=3)
    sealed = encapsulate_chunked_request(gateway.config, request)
    opened, writer = open_chunked_request(gateway, sealed.encapsulated)
    wire = writer.start() + b"".join(writer.seal(a) for a in answer) + writer.final()
    reader = sealed.response_reader()
    return opened, b"".join(reader.feed(wire)) + reader.close()


def test_a_long_request_and_answer_round_trip_in_chunks() -> None:
    big = bytes(range(256)) * 300  # 76 800 bytes: five request chunks of 2^14 at most
    opened, answer = _round(big, [b"a" * 20000, b"", b"b"])
    assert opened == big and answer == b"a" * 20000 + b"b"


def test_every_flipped_bit_of_a_chunked_request_is_refused() -> None:
    gateway, encapsulated = _example()
    for i in range(len(encapsulated)):
        for bit in (0, 7):
            bad = bytearray(encapsulated)
            bad[i] ^= 1 << bit
            with pytest.raises(VerificationError) as caught:
                open_chunked_request(gateway, bytes(bad))
            assert caught.value.check == "ohttp.request"


def test_a_request_cut_short_or_with_chunks_swapped_is_refused() -> None:
    gateway, encapsulated = _example()
    head, first, second = encapsulated[:39], encapsulated[39:68], encapsulated[68:98]
    final = encapsulated[98:]
    assert first[0] == 0x1C and second[0] == 0x1D and final[0] == 0
    cases = {
        "no final chunk": head + first + second,
        "swapped": head + second + first + final,
        "a chunk as final": head + first + b"\x00" + second[1:],
        "the final chunk dropped to a middle one": head + first + final[1:],
    }
    for bad in cases.values():
        with pytest.raises(VerificationError, match=r"final chunk|does not open|inside a chunk"):
            open_chunked_request(gateway, bad)


def test_every_flipped_bit_of_a_chunked_response_is_refused() -> None:
    wire = V["encapsulated_response"]
    for i in range(len(wire)):
        bad = bytearray(wire)
        bad[i] ^= 0x01
        sealed = encapsulate_chunked_request(
            KeyConfig.parse(V["key_config"]),
            _pieces(V["request"], RAW["request_chunk_sizes"]),
            ephemeral=V["ephemeral_secret_key"],
        )
        reader = sealed.response_reader()
        with pytest.raises(VerificationError) as caught:
            reader.feed(bytes(bad))
            reader.close()
        assert caught.value.check == "ohttp.response"


def test_a_response_cut_short_reordered_or_for_another_request_is_refused() -> None:
    gateway = Gateway(bytes(range(32)), key_id=3)
    sealed = encapsulate_chunked_request(gateway.config, b"request")
    _, writer = open_chunked_request(gateway, sealed.encapsulated)
    nonce, one, two, final = (
        writer.start(),
        writer.seal(b"one"),
        writer.seal(b"two"),
        writer.final(),
    )
    for bad, why in (
        (nonce + one + two, "ended before its final chunk"),
        (nonce + one, "ended before its final chunk"),
        (nonce[:5], "ended before its final chunk"),
        (nonce + two + one + final, "does not open"),
        (nonce + one + final, "does not open"),  # a chunk dropped: the final's counter moved
        (nonce + one + two + b"\x00" + two[1:], "does not open"),  # a chunk passed as final
    ):
        reader = sealed.response_reader()
        with pytest.raises(VerificationError, match=why):
            reader.feed(bad)
            reader.close()
    other = encapsulate_chunked_request(gateway.config, b"request").response_reader()
    with pytest.raises(VerificationError, match="does not open"):
        other.feed(nonce + one)


def test_a_chunked_request_is_not_a_plain_one_and_back() -> None:
    """The labels differ (draft section 6.1), so neither opens as the other."""
    gateway = Gateway(bytes(range(32)), key_id=3)
    plain = encapsulate_request(gateway.config, b"request").encapsulated
    with pytest.raises(VerificationError):
        open_chunked_request(gateway, plain)
    chunked = encapsulate_chunked_request(gateway.config, b"request").encapsulated
    with pytest.raises(VerificationError):
        gateway.open(chunked)


def test_a_writer_refuses_chunks_after_the_final_one() -> None:
    gateway = Gateway(bytes(range(32)), key_id=3)
    sealed = encapsulate_chunked_request(gateway.config, b"x")
    _, writer = open_chunked_request(gateway, sealed.encapsulated)
    assert isinstance(writer, ChunkedResponse)
    writer.final()
    with pytest.raises(Exception, match="has ended"):
        writer.seal(b"late")
