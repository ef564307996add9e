"""The job path: a real vanilla inference run as a job behind a slow, progress-reporting step."""

from __future__ import annotations

import threading
import time
from typing import Any

from inferproof.node import NodeConfig, TokenStore
from inferproof.receipts import Bundle
from inferproof.verify import Material, Policy

from .conftest import Running, pushed

X = {"x": [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]]}


def _slow(holder: list[Any], seconds: float, release: threading.Event | None = None) -> Any:
    """Reports progress like a prover, waits, then runs the real LocalNode.infer."""

    def infer(*args: Any, progress: Any = None, **kwargs: Any) -> Any:
        if progress is not None:
            progress("step 1/2: preparing")
        if release is not None:
            release.wait(30)
        time.sleep(seconds)
        if progress is not None:
            progress("step 2/2: proving")
        return holder[0].infer(*args, progress=progress, **kwargs)

    return infer


def _start(make_node: Any, small_model: bytes, config: NodeConfig, **kw: Any) -> Running:
    holder: list[Any] = []
    running = make_node(config, infer=_slow(holder, **kw))
    holder.append(running.node)
    pushed(running, small_model)
    return running


def test_job_reports_progress_and_yields_a_verifying_bundle(
    make_node: Any, small_model: bytes
) -> None:
    running = _start(
        make_node, small_model, NodeConfig(job_modes=frozenset({"vanilla"})), seconds=0.5
    )
    with running.http() as http:
        r = http.post(
            "/v1/infer",
            json={"model": "mlp:1", "inputs": X, "nonce": "job-1", "private_input": True},
        )
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == f"/v1/jobs/{job['id']}"
        assert job["status"] in ("queued", "running") and job["mode"] == "vanilla"
        polled = http.get(f"/v1/jobs/{job['id']}").json()
        assert polled["status"] in ("queued", "running")
        done = http.get(f"/v1/jobs/{job['id']}", params={"wait": 20}).json()
    assert done["status"] == "succeeded", done
    assert done["progress"] == ["step 1/2: preparing", "step 2/2: proving"]
    assert done["started"] >= done["created"] and done["finished"] >= done["started"]
    result = done["result"]
    bundle = Bundle.from_json(result["bundle"])
    salt = bytes.fromhex(result["opening"]["salt"])
    import numpy as np

    material = Material(inputs={"x": np.array(X["x"], np.float32)}, salt=salt, nonce="job-1")
    policy = Policy(require_input=True, require_nonce=True, require_log=True)
    assert running.node.verifier(policy).check(bundle, material).verified
    # The opening is the caller's: an anonymous reader sees the job without it.
    with running.http(auth=False) as http:
        anonymous = http.get(f"/v1/jobs/{job['id']}").json()
    assert anonymous["result"]["opening"] is None
    assert anonymous["result"]["bundle"] == result["bundle"]


def test_wait_returns_when_its_time_is_up(make_node: Any, small_model: bytes) -> None:
    release = threading.Event()
    running = _start(
        make_node,
        small_model,
        NodeConfig(job_modes=frozenset({"vanilla"})),
        seconds=0,
        release=release,
    )
    try:
        with running.http() as http:
            job = http.post("/v1/infer", json={"model": "mlp:1", "inputs": X}).json()
            t0 = time.monotonic()
            polled = http.get(f"/v1/jobs/{job['id']}", params={"wait": 0.5}).json()
            assert 0.4 < time.monotonic() - t0 < 5
            assert polled["status"] == "running" and polled["progress"] == ["step 1/2: preparing"]
    finally:
        release.set()


def test_queue_full_is_429_and_the_node_stays_up(make_node: Any, small_model: bytes) -> None:
    release = threading.Event()
    config = NodeConfig(job_modes=frozenset({"vanilla"}), max_jobs=1, max_queued_jobs=1)
    running = _start(make_node, small_model, config, seconds=0, release=release)
    try:
        with running.http() as http:
            ids = [
                http.post("/v1/infer", json={"model": "mlp:1", "inputs": X}).json()["id"]
                for _ in range(2)
            ]
            full = http.post("/v1/infer", json={"model": "mlp:1", "inputs": X})
            assert full.status_code == 429 and full.json()["error"]["code"] == "busy"
            assert "queue is full" in full.json()["error"]["message"]
            metrics = http.get("/metrics").text
            assert 'inferproof_jobs{state="queued"} 1.0' in metrics
            assert 'inferproof_jobs{state="running"} 1.0' in metrics
            release.set()
            finished = [
                http.get(f"/v1/jobs/{i}", params={"wait": 20}).json()["status"] for i in ids
            ]
            assert finished == ["succeeded", "succeeded"]
    finally:
        release.set()


def test_job_timeout_fails_the_job(make_node: Any, small_model: bytes) -> None:
    release = threading.Event()
    config = NodeConfig(job_modes=frozenset({"vanilla"}), job_timeout=0.3)
    running = _start(make_node, small_model, config, seconds=0, release=release)
    try:
        with running.http() as http:
            job = http.post("/v1/infer", json={"model": "mlp:1", "inputs": X}).json()
            done = http.get(f"/v1/jobs/{job['id']}", params={"wait": 5}).json()
        assert done["status"] == "failed" and done["error"]["code"] == "timeout"
    finally:
        release.set()


def test_zk_mode_runs_as_a_job_through_the_library(running: Running, small_model: bytes) -> None:
    pushed(running, small_model)
    with running.http() as http:
        r = http.post("/v1/infer", json={"model": "mlp:1", "inputs": X, "mode": "zk"})
        assert r.status_code == 202
        done = http.get(f"/v1/jobs/{r.json()['id']}", params={"wait": 10}).json()
    # Whatever the library answers for zk today is what the job reports.
    if done["status"] == "failed":
        assert done["error"]["code"] == "invalid_request" and "zk" in done["error"]["message"]
    else:
        assert done["status"] == "succeeded" and done["result"]["bundle"]


def test_unknown_job_and_bad_input_before_queueing(running: Running, small_model: bytes) -> None:
    pushed(running, small_model)
    with running.http() as http:
        assert http.get("/v1/jobs/" + "0" * 24).status_code == 404
        assert http.get("/v1/jobs/not-an-id").status_code == 422
        # Input problems are found before a job is made: a 400, not a failed job.
        r = http.post("/v1/infer", json={"model": "mlp:1", "inputs": {"x": "text"}, "mode": "zk"})
        assert r.status_code == 400
        assert (
            http.post("/v1/infer", json={"model": "gone", "inputs": X, "mode": "zk"}).status_code
            == 404
        )


def test_delete_cancels_a_running_job_for_its_token_only(
    make_node: Any, small_model: bytes
) -> None:
    release = threading.Event()
    config = NodeConfig(job_modes=frozenset({"vanilla"}))
    running = _start(make_node, small_model, config, seconds=0, release=release)
    other = TokenStore(running.home).create("another caller")
    try:
        with running.http() as http, running.http(auth=False) as anon:
            job = http.post("/v1/infer", json={"model": "mlp:1", "inputs": X}).json()
            url = f"/v1/jobs/{job['id']}"
            assert anon.delete(url).status_code == 401  # a write: a token is needed
            r = anon.delete(url, headers={"Authorization": f"Bearer {other}"})
            assert r.status_code == 403 and "another token" in r.json()["error"]["message"]
            assert http.delete("/v1/jobs/" + "0" * 24).status_code == 404
            r = http.delete(url)
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "cancelled"
            size = running.node.log.size
            release.set()  # the work runs to its end (it cannot be interrupted) ...
            deadline = time.monotonic() + 20
            while running.node.log.size == size and time.monotonic() < deadline:
                time.sleep(0.05)  # its receipt's log append is the sign it ended
            assert running.node.log.size == size + 1
            final = http.get(url).json()  # ... and its result is discarded
            assert final["status"] == "cancelled" and final.get("result") is None, final
            # A finished (succeeded) job cannot be cancelled.
            done = http.post("/v1/infer", json={"model": "mlp:1", "inputs": X}).json()
            assert http.get(f"/v1/jobs/{done['id']}", params={"wait": 20}).json()[
                "status"] == "succeeded"  # fmt: skip
            r = http.delete(f"/v1/jobs/{done['id']}")
            assert r.status_code == 409 and "already succeeded" in r.json()["error"]["message"]
    finally:
        release.set()
