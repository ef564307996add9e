"""The strict JSON parser and RFC 8785 canonical bytes: refuse or succeed, and a
canonical document is a fixed point (parsing and re-encoding it gives the same bytes).
"""

from __future__ import annotations

import base64
import json

from inferproof._canonical import canonical_json, parse_json

from .._harness import JSON_TOKENS, Target, must, parse
from .._material import Material

SEEDS = (
    b'{"a": [1, 2.5, -0.0, 1e21, 1e-7, 9007199254740991], "\\u20ac": "\\ud83d\\ude00", "b": null}',
    b'{"\\ud83d\\ude00": 1, "z": true, "\\u00e9": [[], {}], "e": "\\u0000\\u001f\\"\\\\"}',
)


def target(m: Material) -> Target:
    def run(data: bytes) -> None:
        obj = parse(parse_json, data)
        encoded = None if obj is None else parse(canonical_json, obj)
        if encoded is not None:
            again = parse_json(encoded)
            must(canonical_json(again) == encoded, "RFC 8785 bytes are not a fixed point")

    payloads = [
        base64.b64decode(json.loads(raw)["dsseEnvelope"]["payload"]) for raw in m.bundles.values()
    ]

    def accepts(data: bytes) -> bool:
        obj = parse(parse_json, data)
        return obj is not None and parse(canonical_json, obj) is not None

    return Target("canonical_json", run, (*SEEDS, *payloads), JSON_TOKENS, accepts)
