"""OpenSSF model-signing bundles (Sigstore bundle v0.3 with an in-toto statement):
parse them and verify them against the real publisher key.

Seed: the signature ``model-signing`` made over the material's signed model.
"""

from __future__ import annotations

import hashlib

from inferproof.hub import parse_model_signature, verify_model_signature

from .._harness import JSON_TOKENS, Target, parse
from .._material import Material

TOKENS = (
    b'"mediaType"',
    b'"application/vnd.dev.sigstore.bundle.v0.3+json"',
    b'"dsseEnvelope"',
    b'"payloadType"',
    b'"application/vnd.in-toto+json"',
    b'"payload"',
    b'"signatures"',
    b'"sig"',
    b'"verificationMaterial"',
    b'"publicKey"',
    b'"hint"',
    b'"predicate"',
    b'"resources"',
    b'"algorithm"',
    b'"sha256"',
)


def target(m: Material) -> Target:
    digest = "sha256:" + hashlib.sha256(m.onnx).hexdigest()
    publishers = m.trust.publishers

    def run(data: bytes) -> None:
        parse(parse_model_signature, data)
        parse(verify_model_signature, data, digest, publishers)

    def accepts(data: bytes) -> bool:
        return parse(verify_model_signature, data, digest, publishers) is not None

    return Target("model_signature", run, (m.model_signature,), JSON_TOKENS + TOKENS, accepts)
