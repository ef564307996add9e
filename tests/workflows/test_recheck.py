"""check_provenance: the verifier re-checks a run's input from the feed's own bytes
(digest, the signer's signature, the query's tensors) instead of the node's record."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferproof import LocalNode
from inferproof._keys import raw_public
from inferproof.log import SignerKey, sign_note
from inferproof.workflows import (
    FeedSpec,
    Query,
    Schedule,
    check_provenance,
    open_workflows,
    provenance_of,
)
from inferproof.workflows._chain import link_fields
from inferproof.workflows._feeds import fetch

COLS = ("income", "debt", "age", "late")
ROWS = [{"income": 40 + i, "debt": 0.1 * (i % 5), "age": 30 + i, "late": i % 3} for i in range(5)]


def _status(checks: Any) -> dict[str, str]:
    return {c.name: c.status.value for c in checks}


@pytest.fixture()
def signed(home: Path, credit_model: Any, server: Any) -> Iterator[Any]:
    url, routes = server
    key = Ed25519PrivateKey.generate()
    body = json.dumps(ROWS).encode()
    routes["/feed"] = (200, body, {"Feed-Signature": base64.b64encode(key.sign(body)).decode()})
    routes["/plain"] = (200, body, {})
    pub = base64.b64encode(raw_public(key.public_key())).decode()
    with LocalNode(home) as node:
        node.push(credit_model[0], name="credit")
        with open_workflows(node) as wf:
            yield node, wf, url, pub, body


def test_an_archived_run_rechecks_from_its_bytes(signed: Any) -> None:
    _node, wf, url, pub, body = signed
    wf.create("risk", "credit", FeedSpec.parse(url + "/feed", signature="ed25519", key=pub),
              Query("X", COLS, 1), Schedule(every=60.0))  # fmt: skip
    run = wf.run_now("risk")
    assert run is not None and run.entry.bundle is not None
    bundle = run.entry.bundle
    payload = wf.payload(bundle.proofs["provenance"]["digest"])
    assert payload == body
    assert _status(check_provenance(bundle, payload)) == {
        "feed.bytes": "passed", "feed.signature": "passed", "feed.tensors": "passed"}  # fmt: skip
    for i in range(0, len(payload) * 8, 97):  # one flipped bit anywhere breaks the bytes
        bad = bytearray(payload)
        bad[i // 8] ^= 1 << (i % 8)
        assert _status(check_provenance(bundle, bytes(bad)))["feed.bytes"] == "failed"


def _forged_run(node: LocalNode, record: dict[str, Any], tensors: dict[str, np.ndarray]) -> Any:
    """A receipt the node signed for what it *claims* it fetched: what a dishonest
    node can always do. The verifier's own checks must catch it."""
    fields = link_fields("risk", "sha256:" + "0" * 64, 1, None)
    return node.infer("credit", tensors, workflow=fields, provenance=record).bundle


def test_a_node_claiming_a_signature_that_does_not_verify_is_caught(signed: Any) -> None:
    node, _wf, url, pub, body = signed
    spec = FeedSpec.parse(url + "/feed", signature="ed25519", key=pub)
    fetched = fetch(spec)
    d = _definition(node, spec)
    record = provenance_of(d, fetched)
    record["signature"]["value"] = base64.b64encode(b"\x00" * 64).decode()
    tensors = d.query.tensors(fetched.rows, _spec(node))
    bundle = _forged_run(node, record, tensors)
    assert node.verifier().check(bundle).verified  # the receipt itself is in order...
    got = _status(check_provenance(bundle, body))
    assert got["feed.bytes"] == "passed" and got["feed.signature"] == "failed"  # ...its claim not


def test_a_node_inferring_on_other_values_than_the_feed_gave_is_caught(signed: Any) -> None:
    node, _wf, url, pub, body = signed
    spec = FeedSpec.parse(url + "/feed", signature="ed25519", key=pub)
    fetched = fetch(spec)
    d = _definition(node, spec)
    tensors = d.query.tensors(fetched.rows, _spec(node))
    tensors["X"] = tensors["X"] * np.float32(2)  # not what the feed said
    bundle = _forged_run(node, provenance_of(d, fetched), tensors)
    got = _status(check_provenance(bundle, body))
    assert got == {"feed.bytes": "passed", "feed.signature": "passed", "feed.tensors": "failed"}


def test_an_unsigned_feed_is_not_checked_and_a_note_feed_is(signed: Any, server: Any) -> None:
    _node, wf, url, _pub, body = signed
    wf.create("plain", "credit", FeedSpec.parse(url + "/plain"), Query("X", COLS, 1),
              Schedule(every=60.0))  # fmt: skip
    plain = wf.run_now("plain")
    assert plain is not None and plain.entry.bundle is not None
    got = _status(check_provenance(plain.entry.bundle, body))
    assert got == {"feed.bytes": "passed", "feed.signature": "not_checked",
                   "feed.tensors": "passed"}  # fmt: skip
    signer = SignerKey.generate("prices.example/feed")
    note = sign_note(json.dumps(ROWS) + "\n", [signer]).encode()
    server[1]["/note"] = (200, note, {})
    wf.create("note", "credit", FeedSpec.parse(url + "/note", signature="note",
              key=str(signer.verifier())), Query("X", COLS, 1), Schedule(every=60.0))  # fmt: skip
    run = wf.run_now("note")
    assert run is not None and run.entry.bundle is not None
    assert set(_status(check_provenance(run.entry.bundle, note)).values()) == {"passed"}


def _definition(node: LocalNode, spec: FeedSpec) -> Any:
    from inferproof.workflows import Definition

    record, _ = node.resolve("credit")
    return Definition.create("risk", record, spec, Query("X", COLS, 1), Schedule(every=60.0))


def _spec(node: LocalNode) -> Any:
    record, _ = node.resolve("credit")
    return record.inputs[0]


def test_without_a_record_or_with_private_inputs(signed: Any) -> None:
    node, _wf, _url, _pub, body = signed
    plain = node.infer("credit", {"X": [[50.0, 0.2, 40.0, 1.0]]}).bundle
    assert _status(check_provenance(plain, body)) == {"feed.bytes": "failed"}


def test_verify_rechecks_every_archived_run_and_names_a_swapped_payload(signed: Any) -> None:
    _node, wf, url, pub, body = signed
    wf.create("risk", "credit", FeedSpec.parse(url + "/feed", signature="ed25519", key=pub),
              Query("X", COLS, 1), Schedule(every=60.0))  # fmt: skip
    for _ in range(2):
        wf.run_now("risk")
    checks = {c.name: c for c in wf.verify("risk").checks}
    assert checks["workflow.provenance"].status.value == "passed"
    assert "2 run(s) re-checked" in checks["workflow.provenance"].detail
    archived = wf.archive / ("sha256-" + hashlib.sha256(body).hexdigest())
    archived.write_bytes(body.replace(b"40", b"41"))  # the archive now lies
    report = wf.verify("risk")
    bad = {c.name: c for c in report.checks}["workflow.provenance"]
    assert not report.verified and bad.status.value == "failed" and "feed.bytes" in bad.detail
