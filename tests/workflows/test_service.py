"""The workflow service on a real scheduler, a real SQLite store and a feed on loopback:
runs on schedule, a restart coalesces missed ticks, pause/resume/delete, refusals."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from inferproof import LocalNode
from inferproof.errors import InputError
from inferproof.stores import SQLWorkflowStore
from inferproof.workflows import (
    AlertSpec,
    FeedPolicy,
    FeedSpec,
    Query,
    RunResult,
    Schedule,
    Workflows,
)

COLS = ("income", "debt", "age", "late")
RISKY = {"income": 20, "debt": 0.9, "age": 22, "late": 6}
SAFE = {"income": 150, "debt": 0.05, "age": 50, "late": 0}
ALERT = "output.probabilities[0][1] > 0.5"


@pytest.fixture()
def env(home: Path, credit_model: Any, server: Any, database: str) -> Iterator[Any]:
    """Each test on SQLite (the embedded default) and on a real PostgreSQL server."""
    url, routes = server
    routes["/feed"] = (200, json.dumps([SAFE]).encode(), {})
    with LocalNode(home) as node:
        node.push(credit_model[0], name="credit")
        store = SQLWorkflowStore(database)
        wf = Workflows(node, store)
        yield node, store, wf, url + "/feed", routes
        wf.close()
        store.close()


class _Runs:
    """Collects a service's runs; ``wait(n)`` blocks until n arrived (or fails)."""

    def __init__(self, wf: Workflows) -> None:
        self.results: list[RunResult] = []
        self._cv = threading.Condition()
        wf.subscribe(self._add)

    def _add(self, _name: str, r: RunResult) -> None:
        with self._cv:
            self.results.append(r)
            self._cv.notify_all()

    def wait(self, n: int, timeout: float = 30.0) -> list[RunResult]:
        with self._cv:
            assert self._cv.wait_for(lambda: len(self.results) >= n, timeout), self.results
            return list(self.results)


def _create(wf: Workflows, url: str, every: float = 1.0, **kw: Any) -> Any:
    return wf.create("risk", "credit", FeedSpec.parse(url), Query("X", COLS, 1),
                     Schedule(every=every), **kw)  # fmt: skip


def test_runs_on_schedule_chain_and_verify(env: Any) -> None:
    _node, store, wf, url, _routes = env
    _create(wf, url, alerts=(AlertSpec(ALERT, None),))
    runs = _Runs(wf)
    wf.start()
    got = runs.wait(3)
    wf.close()
    assert [r.run for r in got[:3]] == [1, 2, 3]
    planned = [datetime.fromisoformat(r.planned.replace("Z", "+00:00")) for r in got[:3]]
    assert [b - a for a, b in itertools.pairwise(planned)] == [timedelta(seconds=1)] * 2
    report = wf.verify("risk")
    assert report.verified, report.checks
    assert wf.info("risk").runs == len(store.runs("risk"))


def test_a_restart_coalesces_missed_ticks_into_one_run(env: Any) -> None:
    node, store, wf, url, _routes = env
    _create(wf, url)
    runs = _Runs(wf)
    wf.start()
    first = runs.wait(1)[0]
    wf.close()
    time.sleep(3.2)  # three or four ticks pass with no scheduler running
    again = Workflows(node, store)
    later = _Runs(again)
    again.start()
    try:
        after = later.wait(2)
    finally:
        again.close()
    planned = [datetime.fromisoformat(r.planned.replace("Z", "+00:00")) for r in after]
    last_before = datetime.fromisoformat(store.runs("risk")[0].planned.replace("Z", "+00:00"))
    # One run for all the missed ticks, planned at the latest one, then the schedule goes on.
    assert planned[0] - last_before >= timedelta(seconds=3)
    assert planned[1] - planned[0] == timedelta(seconds=1)
    assert [r.run for r in after[:2]] == [first.run + 1, first.run + 2]
    assert wf.verify("risk").verified


def test_pause_resume_delete(env: Any) -> None:
    _node, store, wf, url, _routes = env
    _create(wf, url)
    wf.pause("risk")
    assert wf.info("risk").state == "paused" and wf.info("risk").next_run is None
    assert wf.tick("risk") is None  # a paused workflow's tick never runs
    wf.resume("risk")
    assert wf.info("risk").state == "active"
    r = wf.run_now("risk")
    assert r is not None and r.run == 1
    wf.delete("risk")
    with pytest.raises(InputError, match="no workflow 'risk'"):
        wf.info("risk")
    assert store.runs("risk") == []


def test_the_same_tick_runs_once(env: Any) -> None:
    node, store, wf, url, _routes = env
    _create(wf, url, every=3600.0)
    now = datetime.now(UTC)
    first = wf.tick("risk", now=now)
    second = Workflows(node, store)
    try:
        assert second.tick("risk", now=now + timedelta(seconds=1)) is None
    finally:
        second.close()
    assert first is not None and wf.tick("risk", now=now) is None
    assert [r.run for r in store.runs("risk")] == [1]


def test_a_failing_feed_is_a_signed_failed_run_and_the_chain_holds(env: Any) -> None:
    _node, store, wf, url, routes = env
    _create(wf, url)
    assert wf.run_now("risk").ok  # type: ignore[union-attr]
    routes["/feed"] = (503, b"down", {})
    failed = wf.run_now("risk")
    assert failed is not None and not failed.ok and "answered 503" in (failed.reason or "")
    routes["/feed"] = (200, json.dumps([RISKY]).encode(), {})
    assert wf.run_now("risk").ok  # type: ignore[union-attr]
    assert [r.status for r in store.runs("risk")] == ["ok", "failed", "ok"]
    assert wf.verify("risk").verified


def test_a_crashed_runs_number_is_reused(env: Any) -> None:
    _node, store, wf, url, _routes = env
    _create(wf, url)
    assert wf.run_now("risk").run == 1  # type: ignore[union-attr]
    now = time.time()
    crashed = store.claim("risk", "t-crash", owner="dead", planned="p", started="s", now=now,
                          lease=5.0)  # fmt: skip
    assert crashed is not None and crashed.run == 2
    # While its lease lasts, no other tick starts (the run may still be going).
    assert store.claim("risk", "t-busy", owner="x", planned="p", started="s", now=now + 1,
                       lease=5.0) is None  # fmt: skip
    reused = store.claim("risk", "t-late", owner="x", planned="p", started="s", now=now + 6,
                         lease=5.0)  # fmt: skip
    assert (
        reused is not None and reused.run == 2 and reused.previous == store.runs("risk")[0].digest
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": Query("X", ("income", "debt", "age"), 1)}, "shape|columns|input"),
        ({"query": Query("X", ("income", "debt", "age", "nope"), 1)}, "nope"),
        ({"alerts": (AlertSpec("output.nothing > 1", None),)}, "nothing"),
        ({"alerts": (AlertSpec("__import__('os')", None),)}, "alert"),
        ({"model": "missing"}, "no model 'missing'"),
    ],
)
def test_bad_definitions_are_refused_at_create(env: Any, kwargs: Any, message: str) -> None:
    _node, store, wf, url, _routes = env
    args = {"model": "credit", "query": Query("X", COLS, 1), "alerts": ()} | kwargs
    with pytest.raises(InputError, match=message):
        wf.create("risk", args["model"], FeedSpec.parse(url), args["query"],
                  Schedule(every=60.0), args["alerts"])  # fmt: skip
    assert store.get("risk") is None


def test_a_feed_whose_rows_do_not_fit_is_refused_at_create(env: Any) -> None:
    _node, store, wf, url, routes = env
    routes["/feed"] = (200, json.dumps([{"income": 1}]).encode(), {})
    with pytest.raises(InputError, match="the feed does not give the model's input now"):
        _create(wf, url)
    assert store.get("risk") is None


def test_the_policy_bounds_hosts_and_files(env: Any) -> None:
    node, store, _, url, _routes = env
    strict = Workflows(node, store, policy=FeedPolicy(hosts=frozenset({"feeds.example"})))
    try:
        with pytest.raises(InputError, match="not in this node's feed allow-list"):
            _create(strict, url)
        with pytest.raises(InputError, match="file feeds are not allowed here"):
            strict.create("f", "credit", FeedSpec.parse("prices.csv"), Query("X", COLS, 1),
                          Schedule(every=60.0))  # fmt: skip
    finally:
        strict.close()


def test_a_cron_schedule_plans_on_the_minute(env: Any) -> None:
    _node, _store, wf, url, _routes = env
    wf.create("cron", "credit", FeedSpec.parse(url), Query("X", COLS, 1),
              Schedule(cron="*/5 * * * *"))  # fmt: skip
    r = wf.tick("cron", now=datetime(2026, 12, 1, 10, 7, 31, tzinfo=UTC))
    assert r is not None and r.planned == "2026-12-01T10:05:00.000000Z"
    assert wf.tick("cron", now=datetime(2026, 12, 1, 10, 9, 59, tzinfo=UTC)) is None
    with pytest.raises(InputError, match="cron"):
        wf.create("bad", "credit", FeedSpec.parse(url), Query("X", COLS, 1),
                  Schedule(cron="61 * * * *"))  # fmt: skip


def test_until_ends_the_schedule(env: Any) -> None:
    _node, store, wf, url, _routes = env
    with pytest.raises(InputError, match="never fires"):
        wf.create("old", "credit", FeedSpec.parse(url), Query("X", COLS, 1),
                  Schedule(every=60.0, until="2020-01-01T00:00:00Z"))  # fmt: skip
    soon = (datetime.now(UTC) + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    wf.create("brief", "credit", FeedSpec.parse(url), Query("X", COLS, 1),
              Schedule(every=60.0, until=soon))  # fmt: skip
    assert wf.tick("brief", now=datetime.now(UTC) + timedelta(hours=2)) is None
    assert wf.tick("brief") is not None and [r.run for r in store.runs("brief")] == [1]


def test_the_number_of_workflows_is_bounded(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from inferproof.workflows import _service

    _node, store, wf, url, _routes = env
    monkeypatch.setattr(_service, "MAX_WORKFLOWS", 1)
    _create(wf, url)
    with pytest.raises(InputError, match="1 workflows, its limit"):
        wf.create("two", "credit", FeedSpec.parse(url), Query("X", COLS, 1), Schedule(every=60.0))
    assert [s.name for s in store.definitions()] == ["risk"]
