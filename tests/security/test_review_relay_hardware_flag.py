"""Issue 11, item 8: ``output.relay`` trusted a flag the node writes.

A software node that set ``environment.hardware_backed: true`` in its receipts got
``output.relay`` passed "on a hardware-attested node" while the environment itself
was not checked. The relay check now rests on the verifier's own environment
check having passed on hardware evidence.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import inferproof.attest._identity as identity_module
from inferproof import LocalNode
from inferproof.verify import Policy

from .test_review_hardware_identity import StandInTdx, _stand_in_verify

ASK = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


def _upstream() -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        return httpx.Response(200, json={
            "id": "u", "object": "chat.completion", "model": sent["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Paris."}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        })  # fmt: skip

    return httpx.MockTransport(answer)


def _checks(node: LocalNode, bundle: Any) -> dict[str, Any]:
    report = node.verifier(Policy(accept_relayed=True)).check(bundle)
    return {c.name: c for c in report.checks}


def test_a_self_declared_hardware_flag_does_not_pass_the_relay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = LocalNode(tmp_path / "n")
    real = node.issuer.environment
    monkeypatch.setattr(node.issuer, "environment", lambda: {**real(), "hardware_backed": True})
    result = node.relay_chat("http://up.invalid/v1", ASK, transport=_upstream())
    assert result.bundle.receipt.environment["hardware_backed"] is True  # the lie is signed
    checks = _checks(node, result.bundle)
    assert checks["output.relay"].status.value == "not_checked"
    assert "not hardware-attested" in checks["output.relay"].detail
    assert not checks["environment"].passed


def test_a_verified_hardware_node_passes_the_relay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identity_module, "verify_evidence", _stand_in_verify)
    node = LocalNode(tmp_path / "n")
    node.attest(StandInTdx(), now=datetime.now(UTC))
    result = node.relay_chat("http://up.invalid/v1", ASK, transport=_upstream())
    checks = _checks(node, result.bundle)
    assert checks["environment"].passed
    assert checks["output.relay"].passed
    assert "on a hardware-attested node" in checks["output.relay"].detail
