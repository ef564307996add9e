"""Evidence decoding (binary, hex or base64), platform detection and dispatch."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import datetime

from ..errors import InputError
from ._dcap import quote_platform, verify_dcap
from ._nitro import COSE_SIGN1_TAG, verify_nitro
from ._policy import AttestationPolicy
from ._snp import is_snp_report, verify_snp
from ._types import PLATFORMS, AttestationReport, Platform

# The largest evidence is a DCAP quote with its PCK chain (about 5 KiB) or a Nitro
# document (under 16 KiB payload); base64 or hex text of that is at most twice as
# large. 256 KiB caps a hostile input well above any real one.
MAX_EVIDENCE_BYTES = 256 * 1024
_HEX_TEXT = re.compile(rb"^(?:0x)?([0-9a-fA-F]+)$")
_B64_TEXT = re.compile(rb"^[A-Za-z0-9+/]+={0,2}$")
_B64URL_TEXT = re.compile(rb"^[A-Za-z0-9_-]+={0,2}$")
_URLSAFE_TO_STD = bytes.maketrans(b"-_", b"+/")
# CBOR heads of a COSE_Sign1: an array of 4 items (0x84), or tag 18 (0xD2) then it.
_COSE_ARRAY = 0x84
_COSE_TAGGED = bytes([0xC0 | COSE_SIGN1_TAG, _COSE_ARRAY])


def decode_evidence(data: bytes | str) -> bytes:
    """Return the raw evidence bytes from raw binary, hex text or base64 text.

    Text is recognised only when every byte is hex digits (optionally ``0x``-prefixed)
    or base64 characters; surrounding whitespace and line breaks are ignored.
    Raw evidence never looks like that: every format starts with non-text bytes.

    Example::

        raw = decode_evidence(Path("quote.hex").read_bytes())
    """
    blob = data.encode("ascii", "replace") if isinstance(data, str) else data
    if len(blob) > MAX_EVIDENCE_BYTES:
        raise InputError(f"evidence is {len(blob)} bytes, over the {MAX_EVIDENCE_BYTES}-byte cap")
    if not blob:
        raise InputError("evidence is empty")
    text = b"".join(blob.split())
    hex_match = _HEX_TEXT.match(text)
    if hex_match:
        digits = hex_match.group(1)
        if len(digits) % 2:
            raise InputError("evidence looks like hex but has an odd number of digits")
        return bytes.fromhex(digits.decode())
    if _B64_TEXT.match(text) or _B64URL_TEXT.match(text):
        if len(text) % 4:
            raise InputError("evidence looks like base64 but its length is not a multiple of 4")
        try:
            return base64.b64decode(text.translate(_URLSAFE_TO_STD), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError(f"evidence looks like base64 but is not: {exc}") from exc
    if isinstance(data, str):
        raise InputError("evidence text is neither hex nor base64")
    return blob


def detect_platform(raw: bytes) -> Platform:
    """Tell the platform from the evidence's first bytes, or raise InputError.

    Nitro documents are CBOR COSE_Sign1 (first byte 0x84, or 0xD2 0x84 when
    tagged); DCAP quotes start with a version 3-5 header and a TEE type (TDX or
    SGX); SEV-SNP reports are exactly 1184 bytes with version 2-5 and algorithm 1.
    """
    if raw[:1] == bytes([_COSE_ARRAY]) or raw[:2] == _COSE_TAGGED:
        return "nitro"
    kind = quote_platform(raw)
    if kind is not None:
        return kind
    if is_snp_report(raw):
        return "snp"
    raise InputError("cannot tell the evidence's platform; pass platform= (--platform)")


def verify_evidence(
    data: bytes | str,
    platform: str | None = None,
    collateral: Sequence[bytes] = (),
    *,
    at: datetime,
    policy: AttestationPolicy | None = None,
) -> AttestationReport:
    """Verify one attestation document or quote at time ``at`` against ``policy``.

    ``data`` is raw, hex or base64. ``platform`` ("nitro", "tdx", "sgx", "snp") is
    detected when omitted. ``collateral`` holds the files the platform needs: none
    for Nitro, the DCAP collateral JSON for TDX and SGX, the VCEK and ASK/ARK
    certificates for SEV-SNP. ``at`` must be timezone-aware; the clock is never read.
    Raises AttestationError (a VerificationError) naming the failed check, or
    InputError for unusable input.

    Example::

        report = verify_evidence(Path("doc.b64").read_bytes(),
                                 at=datetime(2024, 9, 7, 14, 38, tzinfo=UTC))
        assert report.platform == "nitro"
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise InputError("the verification time must be timezone-aware")
    if platform is not None and platform not in PLATFORMS:
        raise InputError(f"unknown platform {platform!r} (one of {', '.join(PLATFORMS)})")
    raw = decode_evidence(data)
    kind = platform if platform is not None else detect_platform(raw)
    if kind == "nitro":
        if collateral:
            raise InputError("Nitro documents carry their certificates: give no collateral")
        return verify_nitro(raw, at=at, policy=policy)
    if kind in ("tdx", "sgx"):
        if len(collateral) != 1:
            raise InputError(f"a {kind} quote needs exactly one DCAP collateral JSON file")
        return verify_dcap(raw, collateral[0], at=at, policy=policy, platform=kind)
    if not collateral:
        raise InputError("an SEV-SNP report needs the VCEK and ASK/ARK certificates")
    return verify_snp(raw, collateral, at=at, policy=policy)
