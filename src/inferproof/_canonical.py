"""Canonical bytes and digests.

Everything that is hashed or signed is serialised with RFC 8785 (JSON
Canonicalization Scheme) so that two implementations produce the same bytes.
Digests are written OCI-style, ``sha256:<64 lowercase hex>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

import orjson
import rfc8785

from .errors import InputError

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")

# Hard cap on any JSON document we parse from outside (bundles, policies, inputs).
# 64 MiB is far above a receipt bundle (a few KiB; a ZK proof adds tens of KiB)
# and keeps a hostile file from exhausting memory.
MAX_JSON_BYTES = 64 * 1024 * 1024


class _Fallback(Exception):
    """The value needs the full RFC 8785 serializer (see :func:`_prepare`)."""


# 2**53: integers beyond it are not exactly representable as IEEE 754 doubles,
# which RFC 8785 section 3.2.2.3 requires of every JSON number.
_MAX_SAFE_INT = 2**53
_FAST_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


_HIGH_CHAR = re.compile("[\ud800-\U0010ffff]")


def _prepare(value: Any) -> Any:
    """Map ``value`` to one that :mod:`json` serialises exactly as RFC 8785 does.

    The standard library agrees with RFC 8785 on strings (section 3.2.2.2 escapes
    the same characters, with lowercase hex) and on integers. It differs on key
    order for keys with characters at or above U+D800 (RFC 8785 sorts by UTF-16
    code units, section 3.2.3) and on floats outside [1e-4, 1e16) or integral
    floats (ECMAScript Number.prototype.toString, section 3.2.2.3). Such values
    go to the ``rfc8785`` package; everything else takes this faster path.
    """
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or _HIGH_CHAR.search(key):
                raise _Fallback
            out[key] = _prepare(item)
        return out
    if isinstance(value, (list, tuple)):
        return [_prepare(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if -_MAX_SAFE_INT < value < _MAX_SAFE_INT or _names_a_double(value):
            return value
        raise _Fallback
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _MAX_SAFE_INT:
            # Below 2**53 ECMAScript prints an integral double as the exact
            # integer: 1.0 as "1", -0.0 as "0". Above it, it prints the shortest
            # round-trip digits padded with zeros, which the fallback handles.
            return int(value)
        if 1e-4 <= abs(value) < 1e16 and not value.is_integer():
            return value  # repr() gives the same shortest digits, positionally
        raise _Fallback
    if isinstance(value, str):
        return value  # a lone surrogate fails .encode("utf-8") and falls back
    raise _Fallback


def _plain(value: Any) -> bool:
    """True when ``value`` holds only dicts, lists, strings, safe integers, booleans and
    None, with no key at or above U+D800: the values on which orjson's sorted compact
    output is byte for byte RFC 8785's (its strings escape the characters section
    3.2.2.2 names, with lowercase hex, and below U+D800 code-point order is UTF-16
    order). A check without a copy, so a receipt's statement is walked once, not
    rebuilt; anything else takes :func:`_prepare`'s path. Exact types only: orjson
    would also serialise dataclasses, numpy values and subclasses its own way."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_MAX_SAFE_INT < value < _MAX_SAFE_INT)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or not _HIGH_CHAR.search(key)):
                return False
            if not _plain(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(_plain(item) for item in value)
    return False


def _names_a_double(value: int) -> bool:
    """True when an integer beyond 2**53 is written exactly as RFC 8785 writes a double.

    To RFC 8785 every JSON number is an IEEE 754 double (section 3.2.2.3), and a
    large double is written as digits padded with zeros: ``1e17`` as
    ``100000000000000000``. Reading those bytes back gives a Python integer; it is
    canonical when its digits are the ones its double is written with. Accepting
    exactly those keeps canonical bytes a fixed point (found by tests/fuzz:
    ``90071992547409911.5`` was canonicalised to bytes that could not be
    canonicalised again), and refuses integers a double would round.
    """
    try:
        return rfc8785.dumps(float(value)) == str(value).encode()
    except (OverflowError, rfc8785.CanonicalizationError):
        return False


def _as_doubles(value: Any) -> Any:
    """``value`` with the large integers :func:`_names_a_double` accepts as the doubles
    they name, for the ``rfc8785`` package (which refuses integers beyond 2**53)."""
    if isinstance(value, dict):
        return {key: _as_doubles(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_doubles(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MAX_SAFE_INT:
        return float(value) if _names_a_double(value) else value
    return value


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON-compatible value."""
    try:
        try:
            if _plain(value):
                # A lone surrogate makes orjson raise (a TypeError): the paths below
                # refuse it with the usual message.
                return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            pass
        try:
            return _FAST_ENCODER.encode(_prepare(value)).encode("utf-8")
        except (_Fallback, UnicodeEncodeError):
            pass
        return rfc8785.dumps(_as_doubles(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InputError(f"value cannot be canonicalised (RFC 8785): {exc}") from exc
    except RecursionError:
        # The strict parser accepts nesting up to the interpreter's recursion limit,
        # and canonicalising recurses once more per level: too deep is refused here
        # rather than escaping as a RecursionError (found by tests/fuzz).
        raise InputError("value cannot be canonicalised (RFC 8785): nested too deeply") from None


def sha256_digest(data: bytes) -> str:
    """Return ``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(text: str) -> bool:
    """True when ``text`` is a well-formed ``sha256:<hex>`` digest."""
    return bool(_DIGEST_RE.match(text))


def check_digest(text: object, what: str = "digest") -> str:
    """Return ``text`` if it is a well-formed digest, else raise :class:`InputError`."""
    if not isinstance(text, str) or not is_digest(text):
        raise InputError(f"{what} is not a sha256:<64 hex> digest: {text!r:.80}")
    return text


def decode_b64(value: Any, what: str, *, canonical: bool = False) -> bytes:
    """Decode standard base64 text from an untrusted document, naming ``what`` on error.

    With ``canonical``, only the one encoding ``b64encode`` produces is accepted (no
    stray padding bits), so signed material has exactly one serialisation.
    """
    if not isinstance(value, str):
        raise InputError(f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{what} is not valid base64") from exc
    if canonical and base64.b64encode(raw).decode() != value:
        raise InputError(f"{what} is not canonical base64")
    return raw


def _reject_constant(name: str) -> Any:
    raise InputError(f"non-finite number {name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InputError(f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def parse_json(data: bytes | str, what: str = "JSON", max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse untrusted JSON strictly: size-capped, no NaN/Infinity, no duplicate keys."""
    if len(data) > max_bytes:
        raise InputError(f"{what} is {len(data)} bytes, over the {max_bytes}-byte cap")
    try:
        return json.loads(data, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except InputError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"{what} is not valid JSON: {exc}") from exc
