"""A bundle file from anyone: ``Bundle.loads`` on hostile bytes, then ``Verifier.check``.

Seeds: the four real bundles of the material (plain, private input, signed model,
chat), each with its envelope, outputs, inputs, log proof and model signature.
"""

from __future__ import annotations

from inferproof.receipts import Bundle

from .._harness import JSON_TOKENS, Target, parse
from .._material import Material
from ._verify import check_all, verifiers

TOKENS = (
    b'"mediaType"',
    b'"application/vnd.inferproof.bundle.v1+json"',
    b'"dsseEnvelope"',
    b'"outputs"',
    b'"inputs"',
    b'"modelSignature"',
    b'"proofs"',
    b'"tlogEntry"',
    b'"attestation"',
    b'"dtype"',
    b'"shape"',
    b'"data"',
    b'"b64"',
    b'"float32"',
    b'"int64"',
    b'"bool"',
    b"[4294967296, 4294967296]",
)


def target(m: Material) -> Target:
    pairs = verifiers(m)

    def run(data: bytes) -> None:
        bundle = parse(Bundle.loads, data)
        if bundle is not None:
            check_all(pairs, bundle)

    def accepts(data: bytes) -> bool:
        return pairs[0][0].check(Bundle.loads(data)).verified

    return Target("bundle", run, tuple(m.bundles.values()), JSON_TOKENS + TOKENS, accepts)
