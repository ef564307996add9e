"""The log over HTTP: tlog-tiles read by the library's TileClient, proofs checked by the
independent RFC 9162 reference in tests/log."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path
from typing import Any

import httpx
import rfc8785

from inferproof.log import TileClient, VerifierKey, open_checkpoint

from .conftest import Running, pushed

_spec = importlib.util.spec_from_file_location(
    "rfc_reference", Path(__file__).resolve().parents[1] / "log" / "_rfc_reference.py"
)
assert _spec is not None and _spec.loader is not None
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


def _issue(running: Running, model: bytes, n: int) -> list[dict[str, Any]]:
    pushed(running, model)
    out = []
    with running.http() as http:
        for start in range(0, n, 100):
            items = [{"inputs": {"x": [[float(i)] * 8]}} for i in range(start, min(n, start + 100))]
            answer = http.post("/v1/infer/batch", json={"model": "mlp:1", "items": items})
            out.extend(r["result"] for r in answer.json()["results"])
    return out


def _fetcher(running: Running) -> Any:
    http = httpx.Client(base_url=running.url + "/v1/log/")

    def fetch(path: str) -> bytes:
        r = http.get(path)
        assert r.status_code == 200, (path, r.text)
        return r.content

    return fetch


def test_tiles_serve_every_issued_receipt(running: Running, small_model: bytes) -> None:
    issued = _issue(running, small_model, 300)  # one full tile and a partial one
    key = VerifierKey.parse(str(running.node.log.verifier_key))
    client = TileClient(_fetcher(running), key)
    client.verify_root()
    entries = list(client.all_entries())
    assert client.size == 300
    with running.http(auth=False) as http:
        full = http.get("/v1/log/tile/0/000")
        assert len(full.content) == 256 * 32 and "immutable" in full.headers["cache-control"]
    for answer in issued:
        assert entries[answer["log_index"]] == rfc8785.dumps(answer["bundle"]["dsseEnvelope"])
        assert client.entry(answer["log_index"]).data == entries[answer["log_index"]]


def test_inclusion_and_consistency_endpoints(running: Running, small_model: bytes) -> None:
    issued = _issue(running, small_model, 12)
    entries = [
        rfc8785.dumps(a["bundle"]["dsseEnvelope"])
        for a in sorted(issued, key=lambda a: a["log_index"])
    ]
    leaves = [ref.leaf_hash(e) for e in entries]
    with running.http(auth=False) as http:
        note = http.get("/v1/log/checkpoint").content
        cp = open_checkpoint(note, running.node.log.verifier_key)
        assert cp.size == 12 and cp.root_hash == ref.mth(leaves)
        for index in (0, 5, 11):
            proof = http.get("/v1/log/inclusion", params={"index": index, "size": 12}).json()
            path = [base64.b64decode(h) for h in proof["hashes"]]
            assert ref.verify_inclusion(index, 12, leaves[index], path, cp.root_hash)
        old_root = ref.mth(leaves[:5])
        proof = http.get("/v1/log/consistency", params={"old": 5, "new": 12}).json()
        path = [base64.b64decode(h) for h in proof["hashes"]]
        assert ref.verify_consistency(5, 12, old_root, cp.root_hash, path)
        # Out of range: clean 400s.
        assert http.get("/v1/log/inclusion", params={"index": 12, "size": 12}).status_code == 400
        assert http.get("/v1/log/consistency", params={"old": 13, "new": 12}).status_code == 400
        assert http.get("/v1/log/consistency", params={"old": 2, "new": 99}).status_code == 400


def test_tile_paths_are_strict(running: Running, small_model: bytes) -> None:
    _issue(running, small_model, 3)
    with running.http(auth=False) as http:
        assert len(http.get("/v1/log/tile/0/000.p/3").content) == 3 * 32
        assert len(http.get("/v1/log/tile/0/000.p/2").content) == 2 * 32  # a smaller prefix
        entries = http.get("/v1/log/tile/entries/000.p/3")
        # tlog-tiles: a partial bundle's path never changes content either: immutable.
        assert entries.status_code == 200
        assert entries.headers["cache-control"] == "public, max-age=31536000, immutable"
        for bad in ("0/000", "0/000.p/4", "0/x000/000.p/3", "0/00.p/3", "00/000.p/3",
                    "1/000.p/1", "64/000.p/1", "0/000.p/0", "0/000.p/256", "entries/001.p/1"):  # fmt: skip
            r = http.get(f"/v1/log/tile/{bad}")
            assert r.status_code == 404, bad
            assert r.json()["error"]["code"] == "not_found"
