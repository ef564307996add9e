"""The consistency proof an inference answer carries (``X-Inferproof-Log-Size``): the node
proves its new checkpoint against the size the client last saw, the verifying client uses
that proof instead of a second request, and a wrong one fails ``log.consistency``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from inferproof.client import Client
from inferproof.errors import VerificationError
from inferproof.log import Checkpoint, Note, TlogProof, verify_consistency

from .conftest import Running, pushed

X = {"x": [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]]}
HEADER = "X-Inferproof-Log-Size"


def _size_and_root(bundle: dict[str, Any]) -> tuple[int, bytes]:
    note = TlogProof.parse(bundle["tlogEntry"]).checkpoint
    cp = Checkpoint.parse(Note.parse(note).text)
    return cp.size, cp.root_hash


@pytest.fixture()
def node(make_node: Any, small_model: bytes) -> Running:
    running = make_node()
    pushed(running, small_model)
    return running


def test_the_answer_carries_a_proof_from_the_size_named(node: Running) -> None:
    with node.http() as http:
        first = http.post("/v1/infer", json={"model": "mlp:1", "inputs": X}).json()
        old, old_root = _size_and_root(first["bundle"])
        for _ in range(3):  # the log grows
            http.post("/v1/infer", json={"model": "mlp:1", "inputs": X})
        r = http.post("/v1/infer", json={"model": "mlp:1", "inputs": X},
                      headers={HEADER: str(old)})  # fmt: skip
        assert r.status_code == 200, r.text
        answer = r.json()
        new, new_root = _size_and_root(answer["bundle"])
        proof = answer["consistency"]
        assert (proof["old_size"], proof["new_size"]) == (old, new) and new == old + 4
        verify_consistency(old, new, old_root, new_root,
                           [base64.b64decode(h) for h in proof["hashes"]])  # fmt: skip
        # No header, an empty tree, or a size past the log: no proof.
        for headers in ({}, {HEADER: "0"}, {HEADER: str(10**9)}):
            got = http.post("/v1/infer", json={"model": "mlp:1", "inputs": X}, headers=headers)
            assert got.status_code == 200 and "consistency" not in got.json(), headers
        for bad in ("-1", "abc", str(2**63)):
            got = http.post("/v1/infer", json={"model": "mlp:1", "inputs": X},
                            headers={HEADER: bad})  # fmt: skip
            assert got.status_code == 422, (bad, got.text)


def _consistency_requests(node: Running) -> float:
    text = httpx.get(f"{node.url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("inferproof_http_requests_total")
               and 'route="/v1/log/consistency"' in line)  # fmt: skip


def test_a_verifying_client_needs_one_request_per_inference(node: Running, tmp_path: Path) -> None:
    with Client(node.url, token=node.token, home=tmp_path / "c") as client:
        client.infer("mlp:1", {"x": np.ones((1, 8), np.float32)})  # pins, first checkpoint
        before = _consistency_requests(node)
        for i in range(5):
            result = client.infer("mlp:1", {"x": np.full((1, 8), i, np.float32)})
            check = next(c for c in result.report.checks if c.name == "log.consistency")
            assert check.passed and "consistent with size" in check.detail, check
        assert _consistency_requests(node) == before  # every proof came with its answer


class _Tamper(httpx.BaseTransport):
    """Passes requests to the node; flips one bit of the first hash of every offered
    consistency proof (a node, or a machine in the middle, offering a wrong one)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.url.path != "/v1/infer":
            return response
        body = json.loads(response.read())
        if body.get("consistency"):
            first = bytearray(base64.b64decode(body["consistency"]["hashes"][0]))
            first[0] ^= 1
            body["consistency"]["hashes"][0] = base64.b64encode(bytes(first)).decode()
        return httpx.Response(response.status_code, headers={"content-type": "application/json"},
                              content=json.dumps(body).encode())  # fmt: skip


def test_a_wrong_offered_proof_fails_the_check(node: Running, tmp_path: Path) -> None:
    with Client(node.url, token=node.token, home=tmp_path / "c", transport=_Tamper()) as client:
        client.infer("mlp:1", {"x": np.ones((1, 8), np.float32)})
        with pytest.raises(VerificationError) as caught:
            client.infer("mlp:1", {"x": np.zeros((1, 8), np.float32)})
    assert caught.value.check == "log.consistency", caught.value


class _Garble(_Tamper):
    """Replaces every offered proof with a malformed one (sizes not numbers, too many
    hashes, not base64): the client must ignore it and fetch its own."""

    offers = (
        {"old_size": "1", "new_size": 2, "hashes": []},
        {"old_size": 1, "new_size": 2, "hashes": ["AA=="] * 200},
        {"old_size": 1, "new_size": 2, "hashes": ["not base64!"]},
    )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.url.path != "/v1/infer":
            return response
        body = json.loads(response.read())
        if body.get("consistency"):
            body["consistency"] = self.offers[0]
            self.offers = self.offers[1:] + self.offers[:1]
        return httpx.Response(response.status_code, headers={"content-type": "application/json"},
                              content=json.dumps(body).encode())  # fmt: skip


def test_a_malformed_offer_costs_a_request_never_a_check(node: Running, tmp_path: Path) -> None:
    with Client(node.url, token=node.token, home=tmp_path / "c", transport=_Garble()) as client:
        client.infer("mlp:1", {"x": np.ones((1, 8), np.float32)})
        before = _consistency_requests(node)
        for i in range(3):  # each malformed offer in turn
            result = client.infer("mlp:1", {"x": np.full((1, 8), i, np.float32)})
            check = next(c for c in result.report.checks if c.name == "log.consistency")
            assert check.passed, check
    assert _consistency_requests(node) == before + 3  # each proof fetched instead
