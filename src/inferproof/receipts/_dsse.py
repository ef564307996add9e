"""DSSE envelopes signed with Ed25519 (secure-systems-lab/dsse, envelope.md, protocol.md)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .._canonical import decode_b64
from .._keys import key_id, raw_public
from ..errors import InputError, VerificationError

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature actually covers."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def sign_envelope(payload: bytes, key: Ed25519PrivateKey) -> dict[str, Any]:
    """Wrap ``payload`` (an in-toto statement's canonical bytes) in a signed envelope."""
    return signed_envelope(payload, key_id(raw_public(key.public_key())), key.sign)


def signed_envelope(payload: bytes, keyid: str, sign: Callable[[bytes], bytes]) -> dict[str, Any]:
    """An envelope of ``payload`` signed by ``sign`` (which signs the PAE bytes) under
    ``keyid``: any signature scheme, such as a publisher's ECDSA key."""
    sig = sign(pae(INTOTO_PAYLOAD_TYPE, payload))
    return {
        "payloadType": INTOTO_PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(sig).decode()}],
    }


# More signatures than this is refused: a receipt has one, a re-signed one a few.
MAX_SIGNATURES = 8


def envelope_payload(envelope: Any) -> bytes:
    """The payload bytes of a well-formed envelope (signature not checked).

    Well-formed is checked completely here, signatures included (1 to
    :data:`MAX_SIGNATURES` entries, each a ``keyid`` string and a canonical base64
    ``sig``), so a parsed bundle's envelope cannot fail later for its shape: a
    verifier would have raised instead of reporting a failed check (tests/fuzz).
    """
    if not isinstance(envelope, dict) or set(envelope) != {"payloadType", "payload", "signatures"}:
        raise InputError("bundle has no well-formed DSSE envelope")
    if envelope["payloadType"] != INTOTO_PAYLOAD_TYPE:
        raise InputError(f"envelope payloadType must be {INTOTO_PAYLOAD_TYPE}")
    envelope_signatures(envelope)
    return decode_b64(envelope["payload"], "envelope payload", canonical=True)


def envelope_signatures(envelope: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The (key id, signature) pairs of an envelope, checked for shape."""
    sigs = envelope.get("signatures")
    if not isinstance(sigs, list) or not 0 < len(sigs) <= MAX_SIGNATURES:
        raise InputError(f"envelope must carry 1 to {MAX_SIGNATURES} signatures")
    out = []
    for entry in sigs:
        if not isinstance(entry, dict) or set(entry) != {"keyid", "sig"}:
            raise InputError("envelope signature entry must be exactly keyid and sig")
        kid = entry["keyid"]
        if not isinstance(kid, str) or not kid.isprintable() or not kid.isascii():
            raise InputError("envelope signature keyid must be printable ASCII")
        out.append((kid, decode_b64(entry["sig"], "envelope signature", canonical=True)))
    return out


def verify_envelope(envelope: Any, trusted: Mapping[str, Ed25519PublicKey]) -> tuple[bytes, str]:
    """Check the envelope carries a valid signature by a trusted key; return (payload, key id)."""
    payload = envelope_payload(envelope)
    message = pae(INTOTO_PAYLOAD_TYPE, payload)
    seen: list[str] = []
    for kid, sig in envelope_signatures(envelope):
        seen.append(kid)
        key = trusted.get(kid)
        if key is None:
            continue
        try:
            key.verify(sig, message)
        except InvalidSignature:
            raise VerificationError(
                "signature", f"envelope signature by node key {kid} is invalid"
            ) from None
        return payload, kid
    raise VerificationError(
        "signature", f"envelope is signed by {', '.join(seen)}, not a node key the policy trusts"
    )
