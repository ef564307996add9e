"""A node that signs anything: hostile statements in validly signed envelopes.

The fuzz input is the receipt statement. It is signed with the node's own key
(canonicalised first when it is JSON, so the canonical-form check lets it
through) and put into a real bundle, so ``Verifier.check`` gets past the
signature and into every check of the predicate. This is the threat a receipt
defends against: the party that signs is the party not trusted.
"""

from __future__ import annotations

import base64
import json

from inferproof._canonical import canonical_json, parse_json
from inferproof.receipts import Bundle, sign_envelope

from .._harness import JSON_TOKENS, Target, parse
from .._material import Material
from ._verify import check_all, verifiers

TOKENS = (
    b'"_type"',
    b'"https://in-toto.io/Statement/v1"',
    b'"predicateType"',
    b'"https://inferproof.dev/receipt/v1"',
    b'"subject"',
    b'"predicate"',
    b'"digest"',
    b'"commitment"',
    b'"sha256:"',
    b'"environment"',
    b'"hardware"',
    b'"software"',
    b'"measurement"',
    b'"proofs"',
    b'"reexecution"',
    b'"zk"',
    b'"signature"',
    b'"relay"',
    b'"time"',
    b'"finished"',
    b'"2024-01-01T00:00:00Z"',
    b'"nonce"',
)


def _markers(m: Material) -> list[tuple[bytes, str]]:
    """A string only each special bundle's statement holds: its chat request's digest,
    its input commitment, its model signature's digest. Plain is the default."""
    chat, private, signed = (m.bundle(n).receipt for n in ("chat", "private", "signed"))
    return [
        (str(chat.input_digest).encode(), "chat"),
        (str(private.input_commitment).encode(), "private"),
        (str(signed.model["signature"]).encode(), "signed"),
    ]


def _context(payload: bytes, markers: list[tuple[bytes, str]]) -> str:
    """Which real bundle to put the statement in: the one whose marker it holds."""
    return next((name for marker, name in markers if marker in payload), "plain")


def _canonical(data: bytes) -> bytes:
    obj = parse(parse_json, data)
    encoded = None if obj is None else parse(canonical_json, obj)
    return data if encoded is None else encoded


def target(m: Material) -> Target:
    pairs = verifiers(m)
    key = m.node.home.node_key()
    frames = {name: json.loads(raw) for name, raw in m.bundles.items()}
    markers = _markers(m)

    def signed(data: bytes) -> Bundle | None:
        payload = _canonical(data)
        frame = dict(frames[_context(payload, markers)], dsseEnvelope=sign_envelope(payload, key))
        return parse(Bundle.from_json, frame)

    def run(data: bytes) -> None:
        bundle = signed(data)
        if bundle is not None:
            check_all(pairs, bundle)

    def accepts(data: bytes) -> bool:
        # Ed25519 signatures are deterministic: a seed re-signed is its own bundle again.
        bundle = signed(data)
        return bundle is not None and pairs[0][0].check(bundle).verified

    seeds = tuple(
        base64.b64decode(json.loads(raw)["dsseEnvelope"]["payload"]) for raw in m.bundles.values()
    )
    return Target("statement", run, seeds, JSON_TOKENS + TOKENS, accepts)
