"""The tlog-proof text of a bundle (c2sp.org/tlog-proof): parse it, open its checkpoint,
verify it against every real leaf.

A bundle's ``tlogEntry`` is a JSON string, so it can hold any code point, lone
surrogates included: the input bytes are decoded with ``surrogateescape``, which
maps every byte that is not UTF-8 to one.
"""

from __future__ import annotations

import json

from inferproof._canonical import canonical_json
from inferproof.log import Checkpoint, Note, TlogProof, verify_tlog_proof

from .._harness import Target, parse
from .._material import Material

TOKENS = (
    b"c2sp.org/tlog-proof@v1\n",
    b"extra ",
    b"index ",
    b"\n\n",
    b"\xe2\x80\x94 ",
    b"18446744073709551615",
    b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
)


def text_of(data: bytes) -> str:
    """Hostile bytes as the hostile ``str`` a JSON document could carry."""
    return data.decode("utf-8", "surrogateescape")


def target(m: Material) -> Target:
    leaves = [canonical_json(json.loads(raw)["dsseEnvelope"]) for raw in m.bundles.values()]
    log_key, witnesses = m.log_key, m.trust.witness_keys

    def run(data: bytes) -> None:
        text = text_of(data)
        proof = parse(TlogProof.parse, text)
        if proof is None:
            return
        note = parse(Note.parse, proof.checkpoint)
        if note is not None:
            parse(Checkpoint.parse, note.text)
        for leaf in leaves:
            parse(verify_tlog_proof, text, leaf, log_key, witnesses, 1)

    def accepts(data: bytes) -> bool:
        text = data.decode()
        return any(parse(verify_tlog_proof, text, leaf, log_key) for leaf in leaves)

    seeds = tuple(entry.encode() for entry in m.tlog_entries())
    return Target("tlog_proof", run, seeds, TOKENS, accepts)
