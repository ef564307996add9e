"""The client verifies every answer: tampering by the node, replays, substitutions, forks."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferproof.client import AsyncClient, Client
from inferproof.client._memory import LogMemory as _LogMemory
from inferproof.engine import InferenceResult
from inferproof.errors import Error, InputError, VerificationError
from inferproof.log import Log, SignerKey
from inferproof.verify import Policy, TrustRoot

from .conftest import Running, pushed

X = np.arange(8, dtype=np.float32).reshape(1, 8)


def _client(running: Running, tmp_path: Path, **kw: Any) -> Client:
    return Client(running.url, token=running.token, home=tmp_path / "client", **kw)


def test_infer_verifies_and_pins_on_first_use(
    running: Running, small_model: bytes, tmp_path: Path
) -> None:
    with _client(running, tmp_path) as client:
        record = client.push(small_model, name="mlp", version="1")
        answer = client.infer("mlp:1", {"x": X})
        listed = client.models()
    assert record.digest in {m.digest for m in listed}
    assert answer.report is not None and answer.report.verified
    passed = {c.name for c in answer.report.checks if c.passed}
    assert {
        "signature",
        "input",
        "nonce",
        "log.inclusion",
        "log.consistency",
        "model.requested",
    } <= passed
    np.testing.assert_array_equal(
        answer.outputs["y"], running.node.infer("mlp:1", {"x": X}).outputs["y"]
    )
    pins = list((tmp_path / "client" / "known_nodes").glob("*.json"))
    assert len(pins) == 1
    pin = json.loads(pins[0].read_text())
    assert base64.b64decode(pin["node_key"]) == running.node.public_key
    assert pin["log_key"] == str(running.node.log.verifier_key)
    assert pins[0].stat().st_mode & 0o777 == 0o600


def test_a_changed_node_key_fails_the_pin(
    running: Running, small_model: bytes, tmp_path: Path
) -> None:
    pushed(running, small_model)
    with _client(running, tmp_path) as client:
        client.infer("mlp:1", {"x": X})
    pin_file = next((tmp_path / "client" / "known_nodes").glob("*.json"))
    pin = json.loads(pin_file.read_text())
    pin["node_key"] = base64.b64encode(os.urandom(32)).decode()
    pin_file.write_text(json.dumps(pin))
    with _client(running, tmp_path) as client, pytest.raises(VerificationError) as exc:
        client.infer("mlp:1", {"x": X})
    assert exc.value.check == "signature"


def test_explicit_trust_replaces_tofu(running: Running, small_model: bytes, tmp_path: Path) -> None:
    pushed(running, small_model)
    stranger = TrustRoot.from_keys([os.urandom(32)])
    with (
        _client(running, tmp_path, trust=stranger) as client,
        pytest.raises(VerificationError) as exc,
    ):
        client.infer("mlp:1", {"x": X})
    assert exc.value.check == "signature"
    assert not (tmp_path / "client" / "known_nodes").exists()


def _lying(holder: list[Any], lie: str) -> Any:
    """A node that runs the real library, then lies about one thing."""

    def infer(model: str, inputs: Any, **kw: Any) -> InferenceResult:
        node = holder[0]
        if lie == "nonce":
            kw["nonce"] = "replayed-nonce"
        if lie == "model":
            model = "other:1"
        if lie == "input":
            inputs = {"x": np.ones((1, 8), np.float32)}
        result: InferenceResult = node.infer(model, inputs, **kw)
        bundle = result.bundle
        if lie == "output":
            outputs = json.loads(json.dumps(bundle.outputs))
            outputs["y"]["data"][0] += 1.0
            bundle = dataclasses.replace(bundle, outputs=outputs)
        if lie == "log":
            bundle = dataclasses.replace(bundle, tlog_entry=None)
        return dataclasses.replace(result, bundle=bundle)

    return infer


@pytest.mark.parametrize(
    ("lie", "check"),
    [
        ("output", "output.digest"),
        ("nonce", "nonce"),
        ("model", "model.requested"),
        ("input", "input"),
        ("log", "log.inclusion"),
    ],
)
def test_a_lying_node_is_caught(
    make_node: Any, small_model: bytes, tmp_path: Path, lie: str, check: str
) -> None:
    holder: list[Any] = []
    running = make_node(infer=_lying(holder, lie))
    holder.append(running.node)
    pushed(running, small_model)
    pushed(running, small_model, name="other")
    with _client(running, tmp_path) as client, pytest.raises(VerificationError) as exc:
        client.infer("mlp:1", {"x": X})
    assert exc.value.check == check
    # The same answer unverified is returned as is.
    with _client(running, tmp_path, verify=False) as client:
        assert client.infer("mlp:1", {"x": X}).report is None


def test_plain_lists_are_typed_by_the_model(
    running: Running, small_model: bytes, tmp_path: Path
) -> None:
    pushed(running, small_model)
    with _client(running, tmp_path) as client:
        answer = client.infer("mlp:1", {"x": X.tolist()}, private_input=True)
        assert answer.salt is not None and answer.report is not None and answer.report.verified
        assert client.model("mlp:1").inputs[0].dtype == "float32"
        stored = client.bundle(answer.bundle_id)
        assert stored.receipt == answer.bundle.receipt
        assert client.bundle_for(answer.receipt_digest).envelope == answer.bundle.envelope
        with pytest.raises(InputError):
            client.infer("mlp:1", {"x": [[1, 2]]})


def test_reexecution_policy_fetches_and_checks_the_model(
    running: Running, small_model: bytes, tmp_path: Path
) -> None:
    digest = pushed(running, small_model)
    policy = Policy(require_reexecution=True, require_log=True)
    with _client(running, tmp_path, policy=policy) as client:
        answer = client.infer(digest, {"x": X})
        assert client.download(digest) == small_model
    assert answer.report is not None
    assert {c.name: c.status.value for c in answer.report.checks}["output.reexecution"] == "passed"


def test_async_client_concurrent_answers(
    running: Running, small_model: bytes, tmp_path: Path
) -> None:
    pushed(running, small_model)

    async def main() -> list[Any]:
        async with AsyncClient(running.url, token=running.token, home=tmp_path / "c") as client:
            single = await asyncio.gather(*(client.infer("mlp:1", {"x": X + i}) for i in range(12)))
            batch = await client.infer_batch("mlp:1", [{"x": X}, {"x": X * 2}])
            await client.checkpoint()
            return [*single, *batch]

    answers = asyncio.run(main())
    assert all(a.report.verified for a in answers)
    assert len({a.log_index for a in answers}) == 14


def test_errors_are_ours(running: Running, small_model: bytes, tmp_path: Path) -> None:
    pushed(running, small_model)
    with (
        Client(running.url, home=tmp_path / "c") as anonymous,
        pytest.raises(InputError, match="unauthorized"),
    ):
        anonymous.infer("mlp:1", {"x": X})
    with (
        Client("http://127.0.0.1:9", home=tmp_path / "c", retries=0) as nowhere,
        pytest.raises(Error, match="cannot reach"),
    ):
        nowhere.models()
    with pytest.raises(InputError):
        Client("ftp://example", home=tmp_path / "c")
    with _client(running, tmp_path) as client, pytest.raises(InputError, match="not sha256"):
        client.infer("../../etc", {"x": X})


def test_a_rolled_back_log_is_detected(make_node: Any, small_model: bytes, tmp_path: Path) -> None:
    first = make_node(name="n")
    pushed(first, small_model)
    with _client(first, tmp_path) as client:
        for _ in range(3):
            client.infer("mlp:1", {"x": X})
    first.stop()
    # Same node keys and log key, but the log is started over: a rollback.
    for path in (first.home / "log").glob("log.sqlite*"):
        path.unlink()
    again = make_node(name="n")
    with _client(again, tmp_path) as client, pytest.raises(VerificationError) as exc:
        client.infer("mlp:1", {"x": X})
    assert exc.value.check == "log.consistency"


def test_log_memory_fails_split_views_and_forks(tmp_path: Path) -> None:
    signer = SignerKey.generate("test.example/log")
    key = signer.verifier()
    with Log.open(tmp_path / "a.sqlite", signer) as a, Log.open(tmp_path / "b.sqlite", signer) as b:
        for i in range(4):
            a.append(b"a%d" % i)
            b.append(b"b%d" % i)
        memory = _LogMemory(None)
        seen = a.checkpoint(2)
        assert memory.needed(seen, key) is None
        assert memory.observe(seen, None, None).passed  # type: ignore[union-attr]
        split = memory.observe(b.checkpoint(2), None, None)
        assert split is not None and not split.passed and "split view" in split.detail
        newer = a.checkpoint(4)
        sizes = memory.needed(newer, key)
        assert sizes == (2, 4)
        ok = memory.observe(newer, a.consistency_proof(2, 4), sizes)
        assert ok is not None and ok.passed
        forked = memory.observe(b.checkpoint(3), b.consistency_proof(3, 4), (3, 4))
        assert forked is not None and not forked.passed and "rollback or fork" in forked.detail
        # A proof for sizes that are no longer the latest is not used: ask again.
        assert memory.observe(b.checkpoint(1), a.consistency_proof(1, 2), (1, 2)) is None
