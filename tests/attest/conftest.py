"""Real hardware attestation vectors, read in place from ../shared/vectors/attestation.

Expected values come from /work/shared/vectors/attestation/SOURCES.md or from the
independent test suites cited next to each constant, never from this code's output.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inferproof._checks import CheckStatus
from inferproof.attest import AttestationError

ATTESTATION = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "attestation"

needs_vectors = pytest.mark.skipif(
    not ATTESTATION.is_dir(),
    reason=f"real attestation vectors not found at {ATTESTATION} (see SOURCES.md)",
)


def vector(name: str) -> bytes:
    """Raw bytes of a vector file, base64 and hex files decoded."""
    data = (ATTESTATION / name).read_bytes()
    if name.endswith(".b64"):
        return base64.b64decode(data)
    if name.endswith(".hex"):
        return bytes.fromhex(data.decode().strip())
    return data


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def flip(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 0x01
    return bytes(out)


def failed_check(error: AttestationError) -> str:
    """The failed check's name, after checking the error lists it as the first failure."""
    failures = [c for c in error.checks if c.status is CheckStatus.FAILED]
    assert failures and failures[0].name == error.check, error.checks
    return error.check
