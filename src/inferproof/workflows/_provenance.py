"""Re-checking a run's input from the feed's own bytes, without trusting the node.

A workflow receipt commits to its provenance record (``input.provenance``), but what
that record says about the feed (its bytes' digest, that its signature verified, the
window taken) is the node's word. Given the fetched bytes (from the feed's archive,
or the node's: :class:`~inferproof.workflows.Workflows` keeps them with
``archive=``), :func:`check_provenance` makes the three checks itself:

- ``feed.bytes``: the bytes hash to the digest the receipt commits to;
- ``feed.signature``: the feed signer's signature over them verifies with the key in
  the committed definition (the raw signature is in the record; a C2SP note carries
  its own), or the record says the feed was unsigned;
- ``feed.tensors``: the committed query (window, columns, normalisation) applied to
  the bytes gives exactly the input tensors the receipt's input digest covers.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from .._canonical import sha256_digest
from .._checks import Check, failed, not_checked, passed
from ..errors import InputError, VerificationError
from ..receipts import Bundle
from ..runtime import TensorSpec, decode_tensors
from ._feeds import FeedSpec, check_payload
from ._query import Query

__all__ = ["check_provenance"]


def check_provenance(bundle: Bundle, payload: bytes) -> tuple[Check, ...]:
    """The three checks of the module docs for ``bundle``'s run on ``payload``.

    Example::

        checks = check_provenance(Bundle.read("run-7.json"), archived_bytes)
        assert all(c.status is CheckStatus.PASSED for c in checks)
    """
    record = bundle.proofs.get("provenance")
    if not isinstance(record, dict):
        return (failed("feed.bytes", "the bundle carries no provenance record"),)
    want = record.get("digest")
    if sha256_digest(payload) != want:
        return (failed("feed.bytes", f"the bytes hash to {sha256_digest(payload)}, the "
                       f"receipt commits to {want}"),)  # fmt: skip
    checks = [passed("feed.bytes", f"{len(payload)} bytes hashing to {want}")]
    try:
        spec = FeedSpec.from_json(record.get("feed"))
        query = Query.from_json(record.get("query"))
    except InputError as exc:
        return (*checks, failed("feed.signature", f"the provenance record: {exc}"))
    try:
        body, _ = check_payload(spec, payload, _raw_signature(record))
    except VerificationError as exc:
        return (*checks, failed("feed.signature", exc.detail))
    except InputError as exc:
        return (*checks, failed("feed.signature", str(exc)))
    checks.append(_signature_check(spec))
    checks.append(_tensors(bundle, spec, query, body))
    return tuple(checks)


def _raw_signature(record: dict[str, Any]) -> bytes | None:
    value = (record.get("signature") or {}).get("value")
    if not isinstance(value, str):
        return None
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        return None
    return value.encode()


def _signature_check(spec: FeedSpec) -> Check:
    if spec.signature is None:
        return not_checked("feed.signature", "the feed is not signed: its origin is the "
                           "node's word")  # fmt: skip
    return passed("feed.signature", f"the {spec.signature} signature over the bytes verifies "
                  "with the key the definition names")  # fmt: skip


def _tensors(bundle: Bundle, spec: FeedSpec, query: Query, body: bytes) -> Check:
    name = "feed.tensors"
    if bundle.inputs is None:
        return not_checked(name, "the bundle keeps its inputs private")
    try:
        carried = decode_tensors(bundle.inputs, "bundle inputs")
        mine = carried.get(query.input)
        if mine is None:
            return failed(name, f"the bundle has no input {query.input!r}")
        rows = spec.rows(body)
        tensor_spec = TensorSpec(query.input, str(mine.dtype), tuple(mine.shape))
        again = query.tensors(rows, tensor_spec)[query.input]
    except InputError as exc:
        return failed(name, f"the query on the bytes: {exc}")
    if again.shape != mine.shape or not np.array_equal(again, mine):
        return failed(name, f"the query on the bytes gives other {query.input} values than "
                      "the receipt's input")  # fmt: skip
    return passed(name, f"the query on the bytes gives the receipt's {query.input} "
                  f"{list(mine.shape)} exactly")  # fmt: skip
