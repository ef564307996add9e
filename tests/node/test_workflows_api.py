"""Workflows through the node's API and the client, against a real server on loopback
with a real feed, a real webhook receiver and (for tampering) a fake node in front of it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from inferproof.client import AsyncClient, Client, VerifiedRun
from inferproof.errors import InputError, VerificationError
from inferproof.node import NodeConfig
from inferproof.testing import LoopbackHandler, serve_loopback
from inferproof.workflows import (
    HISTORY_MEDIA_TYPE,
    AlertSpec,
    Definition,
    FeedSpec,
    History,
    Query,
    Schedule,
    WebhookSigner,
    event_body,
    run_once,
    verify_webhook,
)

from .conftest import Running

COLS = ("income", "debt", "age", "late")
RISKY = {"income": 20, "debt": 0.9, "age": 22, "late": 6}
SAFE = {"income": 150, "debt": 0.05, "age": 50, "late": 0}
ALERT = "output.probabilities[0][1] > 0.5"
HOURLY = Schedule(every=3600.0)  # no scheduled run during a test: runs come from /run
Routes = dict[str, tuple[int, bytes, dict[str, str]]]


class _Serve(LoopbackHandler):
    """GETs answered from ``routes``; POSTs recorded in ``posts`` (with a condition)."""

    routes: ClassVar[Routes] = {}
    posts: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    posted: ClassVar[threading.Condition] = threading.Condition()

    def do_GET(self) -> None:
        self.answer(*self.routes.get(self.path, (404, b"no", {})))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.posted:
            self.posts.append((dict(self.headers.items()), body))
            self.posted.notify_all()
        self.answer(204)


class Feed:
    def __init__(self, url: str, handler: type[_Serve]) -> None:
        self.url, self.handler = url, handler
        self.rows([SAFE])

    def rows(self, rows: list[dict[str, float]], status: int = 200) -> None:
        self.handler.routes["/feed"] = (status, json.dumps(rows).encode(), {})

    def wait_posts(self, n: int, timeout: float = 30.0) -> list[tuple[dict[str, str], bytes]]:
        with self.handler.posted:
            assert self.handler.posted.wait_for(lambda: len(self.handler.posts) >= n, timeout)
            return list(self.handler.posts)


@pytest.fixture()
def feed() -> Iterator[Feed]:
    """A feed (GET /feed) that also receives webhooks (POST anywhere), on loopback."""
    handler = type("Handler", (_Serve,), {"routes": {}, "posts": [],
                                          "posted": threading.Condition()})  # fmt: skip
    with serve_loopback(handler) as url:
        yield Feed(url, handler)


LOOPBACK = NodeConfig(feed_hosts=frozenset({"127.0.0.1"}))


@pytest.fixture()
def node(make_node: Callable[..., Running], credit_model: Any) -> Running:
    running = make_node(LOOPBACK)
    running.node.push(credit_model[0], name="credit", version="1")
    return running


def _client(running: Running | str, tmp_path: Path, token: str | None = None) -> Client:
    url = running if isinstance(running, str) else running.url
    token = token if token is not None or isinstance(running, str) else running.token
    return Client(url, token=token, home=tmp_path / "client")


def _create(client: Client, feed: Feed, name: str = "risk", **kw: Any) -> Any:
    args: dict[str, Any] = {"schedule": HOURLY, "alerts": ()} | kw
    return client.create_workflow(name, "credit:1", FeedSpec.parse(feed.url + "/feed"),
                                  Query("X", COLS, 1), args["schedule"], args["alerts"])  # fmt: skip


def _take(runs: Iterator[VerifiedRun], n: int) -> list[VerifiedRun]:
    with contextlib.closing(runs):  # type: ignore[type-var]
        return list(itertools.islice(runs, n))


def _raw_events(url: str, path: str, n: int, headers: dict[str, str]) -> list[list[str]]:
    """The first ``n`` events of a stream, each as its lines."""
    events: list[list[str]] = []
    lines: list[str] = []
    with httpx.stream("GET", url + path, headers=headers, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line:
                lines.append(line)
            elif lines and not lines[0].startswith(":"):
                events.append(lines)
                if len(events) == n:
                    break
                lines = []
            else:
                lines = []
    return events


# -- the API through the client ------------------------------------------------------------
def test_create_list_show_pause_resume_run_delete(
    node: Running, feed: Feed, tmp_path: Path
) -> None:
    with _client(node, tmp_path) as client:
        made = _create(client, feed, alerts=(AlertSpec(ALERT),))
        assert made.state == "active" and made.runs == 0 and made.next_run is not None
        assert [w.definition.name for w in client.workflows()] == ["risk"]
        assert client.workflow("risk").definition.digest == made.definition.digest
        assert client.pause_workflow("risk").state == "paused"
        assert client.workflow("risk").next_run is None
        with pytest.raises(InputError, match=r"409.*paused"):
            client.run_workflow("risk")
        assert client.resume_workflow("risk").state == "active"
        feed.rows([RISKY])
        run = client.run_workflow("risk")
        assert (run.run, run.status, run.alerts, run.reason) == (1, "ok", (ALERT,), None)
        assert run.outputs is not None and run.outputs["probabilities"][0][1] > 0.5
        assert run.report.verified
        checks = {c.name: c.status.value for c in run.report.checks}
        assert checks["signature"] == checks["log.inclusion"] == checks["log.consistency"] == (
            "passed")  # fmt: skip
        assert checks["workflow.chain"] == "not_checked"  # a lone run; the history checks it
        info = client.workflow("risk")
        assert (info.runs, info.last_status) == (1, "ok")
        client.delete_workflow("risk")
        assert client.workflows() == []
        with pytest.raises(InputError, match="404"):
            client.workflow("risk")


def test_writes_need_a_token_and_reads_do_not(node: Running, feed: Feed, tmp_path: Path) -> None:
    with _client(node, tmp_path) as client:
        _create(client, feed)
    body = {"name": "other", "model": "credit:1", "feed": {"kind": "http", "source": feed.url},
            "query": {"input": "X", "columns": list(COLS), "window": 1},
            "schedule": {"every": 60}}  # fmt: skip
    with node.http(auth=False) as http:
        writes = [http.post("/v1/workflows", json=body), http.post("/v1/workflows/risk/pause"),
                  http.post("/v1/workflows/risk/resume"), http.post("/v1/workflows/risk/run"),
                  http.delete("/v1/workflows/risk")]  # fmt: skip
        assert [r.status_code for r in writes] == [401] * 5
        assert http.get("/v1/workflows").json()["workflows"][0]["state"] == "active"
        history = http.get("/v1/workflows/risk/history")
    assert history.status_code == 200 and history.headers["content-type"] == HISTORY_MEDIA_TYPE


def _post(running: Running, body: dict[str, Any]) -> httpx.Response:
    with running.http() as http:
        return http.post("/v1/workflows", json=body)


def _body(at: Feed, **kw: Any) -> dict[str, Any]:
    return {"name": "risk", "model": "credit:1",
            "feed": {"kind": "http", "source": at.url + "/feed"},
            "query": {"input": "X", "columns": list(COLS), "window": 1},
            "schedule": {"every": 60}, "alerts": []} | kw  # fmt: skip


def _message(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["error"]["message"])


def test_refusals_say_why(node: Running, feed: Feed, make_node: Any, credit_model: Any) -> None:
    elsewhere = {"kind": "http", "source": "http://feeds.example/rows"}
    assert "'feeds.example' is not in this node's feed allow-list (--feed-host)" in _message(
        _post(node, _body(feed, feed=elsewhere)), 400)  # fmt: skip
    hook = [{"expr": ALERT, "webhook": "https://hooks.example/x"}]
    assert "hooks.example" in _message(_post(node, _body(feed, alerts=hook)), 400)
    bad = [{"expr": "output.nothing > 1", "webhook": None}]
    assert "nothing" in _message(_post(node, _body(feed, alerts=bad)), 400)
    code = [{"expr": "__import__('os')", "webhook": None}]
    assert "alert" in _message(_post(node, _body(feed, alerts=code)), 400)
    files = {"kind": "file", "source": "rows.csv", "format": "csv"}
    assert "file feeds are not allowed" in _message(_post(node, _body(feed, feed=files)), 400)
    assert "columns" in _message(_post(node, _body(feed, query={"input": "X", "columns": ["income"],
                                                                 "window": 1})), 400)  # fmt: skip
    assert _post(node, _body(feed, model="missing:1")).status_code == 404
    assert _post(node, _body(feed, extra=1)).status_code == 422
    assert _post(node, _body(feed)).status_code == 201
    assert "exists" in _message(_post(node, _body(feed)), 409)
    with node.http() as http:
        for method, path in [("GET", ""), ("POST", "/pause"), ("POST", "/run"),
                             ("GET", "/history"), ("GET", "/events"), ("DELETE", "")]:  # fmt: skip
            assert "no workflow 'nope'" in _message(
                http.request(method, f"/v1/workflows/nope{path}"), 404)  # fmt: skip
    # A node with the default config allows no feed host at all.
    closed = make_node(name="closed")
    closed.node.push(credit_model[0], name="credit", version="1")
    assert "not in this node's feed allow-list" in _message(_post(closed, _body(feed)), 400)


def test_identity_names_the_webhook_key(node: Running) -> None:
    with node.http(auth=False) as http:
        key = http.get("/v1/identity").json()["webhook_key"]
    assert key == WebhookSigner(node.node.home.webhook_key()).key_text
    assert key.startswith("whpk_") and len(base64.b64decode(key[5:])) == 32


def test_a_firing_alert_posts_a_signed_webhook(node: Running, feed: Feed, tmp_path: Path) -> None:
    feed.rows([RISKY])
    with _client(node, tmp_path) as client:
        _create(client, feed, alerts=(AlertSpec(ALERT, feed.url + "/hook"),))
        run = client.run_workflow("risk")
        key = client.identity()["webhook_key"]
    headers, body = feed.wait_posts(1)[0]
    public = base64.b64decode(key.removeprefix("whpk_"))
    assert verify_webhook(headers, body, public, now=int(time.time())).startswith("msg_")
    sent = json.loads(body)
    assert sent["type"] == "workflow.run" and sent["data"]["run"] == run.run == 1
    assert sent["data"]["alerts"] == [ALERT] and sent["data"]["entry"] == run.entry.to_json()
    with pytest.raises(VerificationError, match="signature"):
        verify_webhook(headers, body + b" ", public, now=int(time.time()))


# -- history ---------------------------------------------------------------------------------
def test_the_history_verifies_with_the_clients_trust(
    node: Running, feed: Feed, tmp_path: Path
) -> None:
    with _client(node, tmp_path) as client:
        _create(client, feed)
        assert client.run_workflow("risk").status == "ok"
        feed.rows([], status=503)
        failed = client.run_workflow("risk")
        assert failed.status == "failed" and "503" in (failed.reason or "")
        assert failed.alerts == (f"failed: {failed.reason}",) and failed.outputs is None
        feed.rows([SAFE])
        client.run_workflow("risk")
        history = client.workflow_history("risk")
        report = client.verify_workflow("risk")
    assert isinstance(history, History) and len(history.entries) == 3
    assert report.verified, report.checks
    assert [(r[0], r[1], r[2]) for r in report.runs] == [
        (1, "receipt", True), (2, "failure", True), (3, "receipt", True)]  # fmt: skip


# -- server-sent events ----------------------------------------------------------------------
def test_a_subscription_yields_verified_runs_in_order_on_schedule(
    node: Running, feed: Feed, tmp_path: Path
) -> None:
    with _client(node, tmp_path) as client:
        _create(client, feed, schedule=Schedule(every=1.0))
        runs = _take(client.subscribe_workflow("risk"), 3)
        report = client.verify_workflow("risk")
    assert [r.run for r in runs] == [1, 2, 3]
    for r in runs:
        assert r.status == "ok" and r.report.verified
        assert {c.name for c in r.report.checks if c.passed} >= {
            "signature", "log.inclusion", "log.consistency", "workflow.chain",
            "workflow.definition", "workflow.event"}  # fmt: skip
    stored = History.parse(_history(node)).entries[:3]
    assert [r.entry.digest for r in runs] == [e.digest for e in stored]
    assert report.verified


def _history(running: Running) -> bytes:
    with running.http(auth=False) as http:
        return http.get("/v1/workflows/risk/history").content


def test_replay_after_a_run_and_last_event_id(node: Running, feed: Feed, tmp_path: Path) -> None:
    with _client(node, tmp_path) as client:
        _create(client, feed)
        made = [client.run_workflow("risk") for _ in range(3)]
        replayed = _take(client.subscribe_workflow("risk", after=1), 2)
        with pytest.raises(InputError, match="no run 7"):
            _take(client.subscribe_workflow("risk", after=7), 1)
    assert [r.run for r in replayed] == [2, 3]
    assert [r.entry.digest for r in replayed] == [r.entry.digest for r in made[1:]]
    (event,) = _raw_events(node.url, "/v1/workflows/risk/events", 1, {"Last-Event-ID": "2"})
    assert event[:2] == ["event: workflow.run", "id: 3"] and event[2].startswith("data: ")
    body = json.loads(event[2].removeprefix("data: "))
    assert body["type"] == "workflow.run" and body["data"]["run"] == 3
    assert body["data"]["receipt_digest"] == made[2].entry.digest
    first = _raw_events(node.url, "/v1/workflows/risk/events?after=0", 3, {})
    assert [e[1] for e in first] == ["id: 1", "id: 2", "id: 3"]


def test_live_runs_follow_the_replay(node: Running, feed: Feed, tmp_path: Path) -> None:
    with _client(node, tmp_path) as client:
        _create(client, feed)
        client.run_workflow("risk")
        runs = client.subscribe_workflow("risk")
        assert next(runs).run == 1  # the replay; the stream now waits for live runs
        client.run_workflow("risk")
        second = next(runs)
        runs.close()  # type: ignore[attr-defined]
    assert second.run == 2 and second.report.verified


def test_event_streams_are_bounded(make_node: Any, credit_model: Any, feed: Feed) -> None:
    running = make_node(NodeConfig(feed_hosts=frozenset({"127.0.0.1"}), max_event_streams=1))
    running.node.push(credit_model[0], name="credit", version="1")
    assert _post(running, _body(feed)).status_code == 201
    path = running.url + "/v1/workflows/risk/events"
    with httpx.stream("GET", path, timeout=30) as first:
        lines = first.iter_lines()  # kept: a dropped iterator closes the stream
        assert first.status_code == 200 and next(lines).startswith(":")
        second = httpx.get(path, timeout=30)
        assert second.status_code == 429 and second.headers["retry-after"] == "5"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the slot comes back once the node sees the close
        with httpx.stream("GET", path, timeout=30) as again:
            if again.status_code == 200:
                break
        time.sleep(0.05)
    assert again.status_code == 200


def test_an_event_stream_outlives_the_body_deadlines(
    make_node: Any, credit_model: Any, feed: Feed, tmp_path: Path
) -> None:
    config = NodeConfig(feed_hosts=frozenset({"127.0.0.1"}), body_idle_timeout=0.2,
                        body_timeout=0.5)  # fmt: skip
    running = make_node(config)
    running.node.push(credit_model[0], name="credit", version="1")
    with _client(running, tmp_path) as client:
        _create(client, feed)
        runs = client.subscribe_workflow("risk")
        client.run_workflow("risk")
        assert next(runs).run == 1
        time.sleep(1.0)  # past both deadlines: they are for request bodies, not streams
        client.run_workflow("risk")
        assert next(runs).run == 2
        runs.close()  # type: ignore[attr-defined]


def test_the_async_client_subscribes_and_verifies(
    node: Running, feed: Feed, tmp_path: Path
) -> None:
    async def main() -> tuple[VerifiedRun, list[VerifiedRun], bool]:
        async with AsyncClient(node.url, token=node.token, home=tmp_path / "c") as client:
            await client.create_workflow("risk", "credit:1", feed.url + "/feed",
                                         Query("X", COLS, 1), HOURLY)  # fmt: skip
            run = await client.run_workflow("risk")
            await client.run_workflow("risk")
            stream = client.subscribe_workflow("risk")
            got = [await anext(stream), await anext(stream)]
            await stream.aclose()  # type: ignore[attr-defined]
            return run, got, (await client.verify_workflow("risk")).verified

    run, got, verified = asyncio.run(main())
    assert run.run == 1 and [r.run for r in got] == [1, 2] and verified


# -- a node that lies ------------------------------------------------------------------------
class _Fake(LoopbackHandler):
    """A node in front of the real one: its events are ``events``; the rest is forwarded."""

    upstream: ClassVar[str] = ""
    events: ClassVar[list[bytes]] = []

    def do_GET(self) -> None:
        if "/events" in self.path:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for event in self.events:  # then the connection closes: the stream ends
                self.wfile.write(event)
            return
        got = httpx.get(self.upstream + self.path, timeout=30)
        kind = got.headers.get("content-type", "application/json")
        self.answer(got.status_code, got.content, {"Content-Type": kind})


def _sse(body: dict[str, Any]) -> bytes:
    data = json.dumps(body, separators=(",", ":"))
    return f"event: workflow.run\nid: {body['data']['run']}\ndata: {data}\n\n".encode()


def _flip_signature(body: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    entry = out["data"]["entry"]
    envelope = entry["bundle"]["dsseEnvelope"] if "bundle" in entry else entry["failure"][
        "dsseEnvelope"]  # fmt: skip
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[5] ^= 0x01  # one bit
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    return out


@pytest.fixture()
def lies(node: Running, feed: Feed, tmp_path: Path) -> Iterator[tuple[Running, list[Any]]]:
    """Three real runs of ``risk`` (ok, failed, ok) and their event bodies."""
    with _client(node, tmp_path) as client:
        _create(client, feed)
        client.run_workflow("risk")
        feed.rows([], status=503)
        client.run_workflow("risk")
        feed.rows([RISKY])
        client.run_workflow("risk")
    events = _raw_events(node.url, "/v1/workflows/risk/events", 3, {})
    yield node, [json.loads(e[2].removeprefix("data: ")) for e in events]


def _forged_link(node: Running, bodies: list[Any]) -> list[Any]:
    """Run 2 signed by the node itself, but linked to a run that never was."""
    d = Definition.from_json(httpx.get(node.url + "/v1/workflows/risk").json()["definition"])
    forged = run_once(node.node, d, 2, "sha256:" + "0" * 64)
    return [bodies[0], event_body("risk", forged)]


def _edited_outputs(bodies: list[Any]) -> list[Any]:
    edited = copy.deepcopy(bodies[2])
    edited["data"]["outputs"]["probabilities"] = [[0.9, 0.1]]
    return [*bodies[:2], edited]


def _renumbered(bodies: list[Any]) -> list[Any]:
    late = copy.deepcopy(bodies[1])
    late["data"]["run"] = 7  # the unsigned number; the signed one still says 2
    return [bodies[0], late]


@pytest.mark.parametrize(
    ("tamper", "yielded", "check", "detail"),
    [
        (lambda n, b: [b[0], b[1], _flip_signature(b[2])], [1, 2], "signature", "run 3"),
        (lambda n, b: [b[0], _flip_signature(b[1])], [1], "signature", "run 2"),
        (lambda n, b: [b[0], b[2]], [1], "workflow.chain", "run 2 is missing"),
        (lambda n, b: [b[0], b[1], b[1]], [1, 2], "workflow.chain", "out of order or repeated"),
        (lambda n, b: _forged_link(n, b), [1], "workflow.chain", "links to sha256:0000"),
        (lambda n, b: _edited_outputs(b), [1, 2], "workflow.event", "outputs"),
        (lambda n, b: _renumbered(b), [1], "workflow.event", "run"),
    ],
    ids=["bundle-bit", "failure-bit", "skipped", "repeated", "bad-link", "outputs", "number"],
)
def test_the_subscriber_refuses_a_lying_node(
    lies: tuple[Running, list[Any]], tmp_path: Path, tamper: Any, yielded: list[int],
    check: str, detail: str,
) -> None:  # fmt: skip
    node, bodies = lies
    handler = type("Fake", (_Fake,), {"upstream": node.url,
                                      "events": [_sse(b) for b in tamper(node, bodies)]})  # fmt: skip
    got: list[int] = []
    with (
        serve_loopback(handler) as url,
        _client(url, tmp_path) as client,
        pytest.raises(VerificationError) as exc,
    ):
        for run in client.subscribe_workflow("risk"):
            got.append(run.run)
    assert got == yielded
    assert exc.value.check == check and detail in exc.value.detail


def test_the_subscriber_checks_the_link_to_a_replayed_run(
    lies: tuple[Running, list[Any]], tmp_path: Path
) -> None:
    node, bodies = lies
    handler = type("Fake", (_Fake,), {"upstream": node.url, "events": [_sse(bodies[2])]})
    with serve_loopback(handler) as url, _client(url, tmp_path) as client:
        assert [r.run for r in client.subscribe_workflow("risk", after=2)] == [3]
        with pytest.raises(VerificationError) as exc:
            list(client.subscribe_workflow("risk", after=1))  # run 2 is due, run 3 comes
    assert exc.value.check == "workflow.chain"
