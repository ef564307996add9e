"""GET /v1/bundles: a token holder lists the bundles issued under its own token only.

A real node on loopback; every rejection answers JSON ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferproof.node import NodeConfig, TokenStore
from inferproof.node._bundles import SCHEMA_VERSION, BundleQuery, IssuedBundles

from .conftest import Running, pushed

X = {"x": [[0.5] * 8]}


def _infer(running: Running, token: str, nonce: str, model: str = "mlp:1") -> dict[str, Any]:
    with httpx.Client(base_url=running.url, timeout=30) as http:
        response = http.post(
            "/v1/infer",
            json={"model": model, "inputs": X, "nonce": nonce},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _list(running: Running, token: str | None, **params: Any) -> httpx.Response:
    return _get(running, {"Authorization": f"Bearer {token}"} if token else {}, params)


def _get(running: Running, headers: dict[str, str], params: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=running.url, timeout=30) as http:
        return http.get("/v1/bundles", params=params, headers=headers)


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [b["id"] for b in response.json()["bundles"]]


@pytest.fixture()
def two_callers(running: Running, small_model: bytes) -> tuple[Running, str, list[str], str]:
    """Three bundles issued to the node's token, one to another token."""
    pushed(running, small_model)
    other = TokenStore(running.home).create("other")
    mine = [_infer(running, running.token, f"a{i}")["bundle_id"] for i in range(3)]
    theirs = _infer(running, other, "b0")["bundle_id"]
    return running, other, mine, theirs


def test_a_caller_lists_only_its_own_bundles_newest_first(
    two_callers: tuple[Running, str, list[str], str],
) -> None:
    running, other, mine, theirs = two_callers
    listed = _list(running, running.token)
    assert _ids(listed) == mine[::-1]
    assert listed.headers["cache-control"] == "private, no-store"
    assert _ids(_list(running, other)) == [theirs]
    first = listed.json()["bundles"][0]
    assert first["nonce"] == "a2" and first["model"]["name"] == "mlp"
    assert first["model"]["version"] == "1" and first["model"]["digest"].startswith("sha256:")
    assert first["receipt_digest"].startswith("sha256:") and isinstance(first["log_index"], int)
    with httpx.Client(base_url=running.url) as http:  # the id reads the bundle
        bundle = http.get(f"/v1/bundles/{first['id']}").json()
    assert bundle["mediaType"].startswith("application/vnd.inferproof.bundle")


def test_filters_by_model_nonce_and_time(two_callers: tuple[Running, str, list[str], str]) -> None:
    running, _, mine, _ = two_callers
    token = running.token
    digest = _list(running, token).json()["bundles"][0]["model"]["digest"]
    assert _ids(_list(running, token, model="mlp:1")) == mine[::-1]
    assert _ids(_list(running, token, model="mlp")) == mine[::-1]  # any version
    assert _ids(_list(running, token, model=digest)) == mine[::-1]
    assert _ids(_list(running, token, model="mlp:2")) == []
    assert _ids(_list(running, token, model="sha256:" + "0" * 64)) == []
    assert _ids(_list(running, token, nonce="a1")) == [mine[1]]
    assert _ids(_list(running, token, nonce="b0")) == []  # another caller's nonce
    now = time.time()
    assert _ids(_list(running, token, since=f"{now + 60:.0f}")) == []
    assert _ids(_list(running, token, until=f"{now - 3600:.0f}")) == []
    assert _ids(_list(running, token, since="2000-01-01")) == mine[::-1]
    assert _ids(_list(running, token, since="2000-01-01T00:00:00+02:00", until=f"{now + 60:.0f}"))
    assert _ids(_list(running, token, until="2000-01-01T00:00:00Z")) == []


def test_pages_with_a_cursor(two_callers: tuple[Running, str, list[str], str]) -> None:
    running, _, mine, _ = two_callers
    first = _list(running, running.token, limit=2)
    cursor = first.json()["next_cursor"]
    assert _ids(first) == mine[:0:-1] and cursor
    second = _list(running, running.token, limit=2, cursor=cursor)
    assert _ids(second) == [mine[0]] and second.json()["next_cursor"] is None
    exact = _list(running, running.token, limit=3)
    assert len(_ids(exact)) == 3 and exact.json()["next_cursor"] is None


def _batch_and_job(running: Running, token: str) -> list[str]:
    """Issue bundles under ``token`` by a batch, or by a job when vanilla runs as one."""
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=running.url, timeout=30, headers=auth) as http:
        if "vanilla" not in running_job_modes(running):
            items = [{"inputs": X, "nonce": "n1"}, {"inputs": X, "nonce": "n2"}]
            batch = http.post("/v1/infer/batch", json={"model": "mlp:1", "items": items})
            return [r["result"]["bundle_id"] for r in batch.json()["results"]]
        job = http.post("/v1/infer", json={"model": "mlp:1", "inputs": X})
        assert job.status_code == 202, job.text
        done = http.get(f"/v1/jobs/{job.json()['id']}", params={"wait": 30}).json()
    assert done["status"] == "succeeded", done
    return [done["result"]["bundle_id"]]


def running_job_modes(running: Running) -> set[str]:
    with httpx.Client(base_url=running.url) as http:
        return set(http.get("/v1/identity").json()["job_modes"])


@pytest.mark.parametrize("job_modes", [frozenset({"zk"}), frozenset({"vanilla"})])
def test_batch_and_job_bundles_belong_to_their_caller(
    make_node: Callable[..., Running], small_model: bytes, job_modes: frozenset[str]
) -> None:
    running = make_node(NodeConfig(job_modes=job_modes))
    pushed(running, small_model)
    other = TokenStore(running.home).create("other")
    ids = _batch_and_job(running, other)
    assert ids and _ids(_list(running, other)) == ids[::-1]
    assert _ids(_list(running, running.token)) == []


@pytest.mark.parametrize("auth", [None, "Bearer ipt_not-a-token", "Basic abc", "Bearer"])
def test_needs_a_valid_token(
    two_callers: tuple[Running, str, list[str], str], auth: str | None
) -> None:
    running = two_callers[0]
    response = _get(running, {"Authorization": auth} if auth else {}, {})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "params,status,needle",
    [
        ({"limit": 0}, 422, "limit"),
        ({"limit": 201}, 422, "limit"),
        ({"limit": "ten"}, 422, "limit"),
        ({"cursor": "abc"}, 422, "cursor"),
        ({"cursor": "0"}, 422, "cursor"),
        ({"cursor": "9" * 19}, 422, "cursor"),
        ({"model": "no such/ref"}, 422, "model"),
        ({"nonce": "n" * 257}, 422, "nonce"),
        ({"since": "yesterday"}, 400, "since must be Unix seconds or an ISO 8601"),
        ({"until": "2026-13-01"}, 400, "until must be"),
        ({"since": "2026-01-01T25:00"}, 400, "since must be"),
        ({"since": "1" * 41}, 422, "since"),
    ],
)
def test_bad_queries_are_4xx_json(
    running: Running, params: dict[str, Any], status: int, needle: str
) -> None:
    response = _list(running, running.token, **params)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and needle in error["message"]


def _old_store(path: Path, bundle: bytes) -> None:
    """A bundles.sqlite as the node wrote it before owners were recorded (version 0)."""
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE bundles (id TEXT PRIMARY KEY, receipt_digest TEXT NOT NULL UNIQUE, "
        "log_index INTEGER, created REAL NOT NULL, bundle BLOB NOT NULL)"
    )
    db.execute(
        "INSERT INTO bundles VALUES (?, ?, ?, ?, ?)",
        ("a" * 24, "sha256:" + "1" * 64, 0, time.time(), bundle),
    )
    db.commit()
    db.close()


def test_an_old_database_keeps_working(
    two_callers: tuple[Running, str, list[str], str], tmp_path: Path
) -> None:
    running, _, mine, _ = two_callers
    with httpx.Client(base_url=running.url) as http:
        data = http.get(f"/v1/bundles/{mine[0]}").content
    path = tmp_path / "old" / "bundles.sqlite"
    path.parent.mkdir()
    _old_store(path, data)
    store = IssuedBundles(path)
    try:
        assert store.by_id("a" * 24) == data  # the old row is still read by id
        # Its owner was never recorded: by receipt digest, nobody reads it.
        assert store.by_digest("sha256:" + "1" * 64, "f" * 64) is None
        version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
        assert version == SCHEMA_VERSION
        new = store.add("sha256:" + "2" * 64, 1, data, owner="f" * 64)
        page, _ = store.find(BundleQuery(owner="f" * 64))
        assert [s.id for s in page] == [new]  # the old row has no owner: listed to nobody
        assert page[0].model_name == "mlp" and page[0].nonce == "a0"
    finally:
        store.close()
    reopened = IssuedBundles(path)  # a second open migrates nothing and loses nothing
    try:
        assert reopened.count() == 2
    finally:
        reopened.close()


def test_chat_bundles_belong_to_their_caller(
    make_node: Callable[..., Running],
) -> None:
    from ._chat import serving, tiny_gguf

    running = serving(make_node, tiny_gguf())
    other = TokenStore(running.home).create("other")
    ask = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    with running.http() as http:
        chat_id = http.post("/v1/chat/completions", json=ask).headers["inferproof-bundle-id"]
        mine = [b["id"] for b in http.get("/v1/bundles").json()["bundles"]]
    with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {other}"}) as http:
        theirs = [b["id"] for b in http.get("/v1/bundles").json()["bundles"]]
    assert chat_id in mine and chat_id not in theirs


def test_the_client_lists_its_bundles(running: Running, small_model: bytes, tmp_path: Path) -> None:
    import numpy as np

    from inferproof.client import Client

    pushed(running, small_model)
    with Client(running.url, token=running.token, home=tmp_path / "c") as client:
        answers = [client.infer("mlp:1", {"x": np.ones((1, 8), np.float32)}) for _ in range(3)]
        first = client.bundles(limit=2)
        rest = client.bundles(limit=2, cursor=first["next_cursor"])
        bundle = client.bundle(first["bundles"][0]["id"])
    listed = [row["id"] for row in first["bundles"] + rest["bundles"]]
    assert listed == [a.bundle_id for a in reversed(answers)]  # newest first, in two pages
    assert bundle.envelope == answers[-1].bundle.envelope
    assert rest["next_cursor"] is None
