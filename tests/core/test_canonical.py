from __future__ import annotations

import pytest

from inferproof._canonical import canonical_json, check_digest, parse_json, sha256_digest
from inferproof.errors import InputError


def test_rfc8785_orders_keys_and_formats_numbers() -> None:
    # Expected bytes written by hand from RFC 8785 sections 3.2.2 and 3.2.3:
    # keys sorted by UTF-16 code units, numbers in ECMAScript shortest form.
    value = {"b": [1.0, 1e21, 0.5, -0.0], "a": "é", "\u20ac": True, "c": None}
    assert canonical_json(value) == '{"a":"é","b":[1,1e+21,0.5,0],"c":null,"€":true}'.encode()


def test_rfc8785_key_order_is_utf16() -> None:
    # RFC 8785 3.2.3: U+1F600 (surrogates D83D DE00) sorts before U+FB33.
    value = {"\ufb33": 1, "\U0001f600": 2}
    assert canonical_json(value) == '{"\U0001f600":2,"\ufb33":1}'.encode()


def test_sha256_digest_known_value() -> None:
    # SHA-256("abc"), FIPS 180-2 appendix B.1.
    assert sha256_digest(b"abc") == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


@pytest.mark.parametrize(
    "text,message",
    [
        ('{"a": NaN}', "non-finite"),
        ('{"a": Infinity}', "non-finite"),
        ('{"a": 1, "a": 2}', "duplicate"),
        ("{nope", "not valid JSON"),
    ],
)
def test_parse_json_rejects(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_json(text)


def test_parse_json_cap() -> None:
    with pytest.raises(InputError, match="over the 10-byte cap"):
        parse_json(b'{"a": "0123456789"}', max_bytes=10)


@pytest.mark.parametrize("bad", ["sha256:ABC", "sha1:" + "0" * 40, "sha256:" + "0" * 63, 5])
def test_check_digest_rejects(bad: object) -> None:
    with pytest.raises(InputError):
        check_digest(bad)


# An interop check against an independent implementation: the rfc8785 package.
import rfc8785  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=600, deadline=None)
@given(_json)
def test_matches_rfc8785_package(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError):
        with pytest.raises(InputError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        1e-7,
        1e-5,
        1.5e-4,
        0.0001,
        123456789012345.6,
        1e16,
        1e21,
        1e22,
        5e-324,
        -0.0,
        2.0**53,
        {"\U0001f600": 1, "\ufb33": 2},
    ],
)
def test_boundaries_match_rfc8785(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


# Without floats, every value takes the orjson path unless a key is at or above U+D800.
_plain_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(st.characters(codec="utf-8")),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(st.characters(codec="utf-8")), children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=600, deadline=None)
@given(_plain_json)
def test_orjson_path_matches_rfc8785_package(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_orjson_path_leaves_what_it_does_not_write_as_rfc8785() -> None:
    # Keys at or above U+D800 sort by UTF-16 code units (orjson sorts otherwise).
    assert canonical_json({"\ufeff": 1, "\U0001f600": 2}) == rfc8785.dumps(
        {"\U0001f600": 2, "\ufeff": 1}
    )
    assert canonical_json({"a": (1, "b")}) == b'{"a":[1,"b"]}'  # a tuple is an array
    with pytest.raises(InputError, match="RFC 8785"):
        canonical_json({"s": "\ud800"})  # a lone surrogate
    with pytest.raises(InputError, match="RFC 8785"):
        canonical_json({"n": 2**53 + 1})  # a double would round it
    with pytest.raises(InputError, match="RFC 8785"):
        canonical_json({"b": b"bytes"})  # orjson would not write bytes either way
