"""Workflows: scheduling jitter and per-run overhead over a bare inference (issue 15).

In one run, on the credit-risk model and a JSON feed of generated applicant rows served
on loopback (an ``http.server`` thread, fresh rows at every request):

1. Scheduling: a workflow every 1 s run by the real service (``Workflows.start()``:
   APScheduler on the SQLite job store) for ``--runs`` runs. Jitter is each run's
   ``started - planned`` (``RunResult``), split at the moment APScheduler calls the
   service's tick; delivery is planned -> the subscriber's callback (end to end).
2. Per-run overhead: ``run_once`` (fetch, provenance, signed receipt, durable log
   append) against a bare ``onnxruntime.InferenceSession.run`` on the same model and
   input, and against ``LocalNode.infer`` (receipt and log append, no workflow or
   provenance); the feed fetch alone, and an ``httpx.Client()`` built with its own TLS
   context (what each fetch paid before fetches shared one), are timed too. The calls are interleaved round by round (``--rounds``), so the
   machine's noise hits all alike.

Run: .venv/bin/python bench/bench_workflows.py [--runs 60] [--rounds 200] [--quick]
     [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort

from inferproof import LocalNode
from inferproof.testing import credit_risk_model
from inferproof.workflows import (
    Definition,
    FeedSpec,
    Query,
    RunResult,
    Schedule,
    fetch,
    open_workflows,
    run_once,
)

COLS = ("income", "debt", "age", "late")
FEED_ROWS = 32


class _Feed(BaseHTTPRequestHandler):
    """GET /applicants: FEED_ROWS generated applicants, new ones at every request."""

    count = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            _Feed.count += 1
            rng = np.random.default_rng(_Feed.count)
        rows = [{"income": round(float(rng.normal(60, 20)), 2), "debt": round(float(rng.beta(2, 5)), 3),
                 "age": int(rng.integers(18, 80)), "late": int(rng.poisson(0.6))}
                for _ in range(FEED_ROWS)]  # fmt: skip
        body = json.dumps(rows).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.array(ms)
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max()), "n": len(ms)}  # fmt: skip


def measure_jitter(node: LocalNode, url: str, runs: int) -> dict[str, Any]:
    """``runs`` scheduled runs every 1 s; the first tick after start() is left out
    (it may be one the service was created just before)."""
    local = threading.local()
    got: list[tuple[RunResult, float, float]] = []
    cv = threading.Condition()
    with open_workflows(node) as wf:
        wf.create("jitter", "credit", FeedSpec.parse(url), Query("X", COLS, 1),
                  Schedule(every=1.0))  # fmt: skip
        tick = wf.tick

        def timed_tick(name: str, **kw: Any) -> RunResult | None:
            local.entered = time.time()  # APScheduler's thread has just called the job
            return tick(name, **kw)

        def on_run(_name: str, r: RunResult) -> None:
            now = time.time()  # same thread as timed_tick, before tick returns
            with cv:
                got.append((r, getattr(local, "entered", float("nan")), now))
                cv.notify_all()
                if len(got) % 10 == 0:
                    print(f"  jitter: {len(got)}/{runs + 1} runs", file=sys.stderr)

        wf.tick = timed_tick  # type: ignore[method-assign]  # Workflows._fire calls self.tick
        wf.subscribe(on_run)
        wf.start()
        with cv:
            if not cv.wait_for(lambda: len(got) >= runs + 1, timeout=runs * 2 + 30):
                raise SystemExit(f"only {len(got)} of {runs + 1} runs came")
    results = got[1 : runs + 1]
    assert all(r.ok for r, _, _ in results), [r.reason for r, _, _ in results]
    # (planned, APScheduler called the job, run started, subscriber called), seconds
    t = np.array([(_ts(r.planned), e, _ts(r.started), c) for r, e, c in results])
    gaps = np.diff(t[:, 0])
    assert np.allclose(gaps, 1.0), f"ticks not 1 s apart (a coalesced tick?): {gaps}"
    ms = (t - t[:, :1]) * 1e3
    return {
        "jitter": _stats(list(ms[:, 2])),
        "wakeup": _stats(list(ms[:, 1])),
        "pre_run": _stats(list(ms[:, 2] - ms[:, 1])),
        "delivery": _stats(list(ms[:, 3])),
    }


def measure_overhead(node: LocalNode, url: str, rounds: int, digest: str) -> dict[str, Any]:
    record = node.hub.resolve(digest)
    d = Definition.create("overhead", record, FeedSpec.parse(url), Query("X", COLS, 1),
                          Schedule(every=60.0))  # fmt: skip
    x = {"X": np.array([[52.0, 0.41, 34.0, 2.0]], np.float32)}
    session = ort.InferenceSession(credit_risk_model()[0], providers=["CPUExecutionProvider"])
    chain: dict[str, Any] = {"run": 0, "previous": None}

    def workflow_run() -> None:
        chain["run"] += 1
        r = run_once(node, d, chain["run"], chain["previous"])
        assert r.ok, r.reason
        chain["previous"] = r.entry.digest

    variants: dict[str, Callable[[], object]] = {
        "ort": lambda: session.run(None, x),
        "infer": lambda: node.infer(digest, x),
        "fetch": lambda: fetch(d.feed),
        "client": lambda: httpx.Client(timeout=10.0, follow_redirects=False).close(),
        "run_once": workflow_run,
    }
    for fn in variants.values():  # warm up: sessions, connections, the first log appends
        for _ in range(10):
            fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            t0 = time.perf_counter()
            variants[name]()
            times[name].append((time.perf_counter() - t0) * 1e3)
        if (i + 1) % 50 == 0:
            print(f"  overhead: {i + 1}/{rounds} rounds", file=sys.stderr)
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {
        "median_ms": med,
        "p90_ms": {k: float(np.percentile(v, 90)) for k, v in times.items()},
        "ratio_run_once_over_ort": med["run_once"] / med["ort"],
        "ratio_run_once_over_infer": med["run_once"] / med["infer"],
        "rounds": rounds,
    }


def tables(jit: dict[str, Any], ovh: dict[str, Any], runs: int) -> str:
    rows = [
        ("jitter: started - planned", "jitter"),
        ("of which APScheduler: planned -> job called", "wakeup"),
        ("of which the service: job called -> run started (store read, tick claim)", "pre_run"),
        ("delivery: planned -> subscriber callback (end to end)", "delivery"),
    ]
    out = [
        f"Scheduling: a workflow every 1 s, {runs} runs (the first tick after start() left "
        "out); ms.",
        "",
        "| measure | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key in rows:
        s = jit[key]
        out.append(f"| {label} | {s['p50']:.2f} | {s['p90']:.2f} | {s['p99']:.2f} | "
                   f"{s['max']:.2f} |")  # fmt: skip
    med, p90 = ovh["median_ms"], ovh["p90_ms"]
    calls = [
        ("onnxruntime `InferenceSession.run` (bare, reference)", "ort"),
        ("`LocalNode.infer` (signed receipt + durable log append)", "infer"),
        ("feed fetch alone (httpx GET on loopback, parse rows)", "fetch"),
        ("a new `httpx.Client()` with its own TLS context (before the shared one)", "client"),
        ("`run_once` (fetch + provenance + signed receipt + durable log append)", "run_once"),
    ]
    out += [
        "",
        f"Per run, {ovh['rounds']} rounds interleaved; ratios are of the medians.",
        "",
        "| call | median ms | p90 ms | ratio to bare onnxruntime | ratio to LocalNode.infer |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key in calls:
        out.append(f"| {label} | {med[key]:.3f} | {p90[key]:.3f} | {med[key] / med['ort']:.1f} | "
                   f"{med[key] / med['infer']:.2f} |")  # fmt: skip
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="scheduled runs (1 s apart)")
    parser.add_argument("--rounds", type=int, default=200, help="interleaved overhead rounds")
    parser.add_argument("--quick", action="store_true", help="10 runs, 50 rounds (for CI)")
    parser.add_argument("--json", type=Path, default=None, help="save the figures here")
    args = parser.parse_args()
    runs, rounds = (10, 50) if args.quick else (args.runs, args.rounds)
    exe = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) else "python"
    command = shlex.join([exe, *sys.argv])
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/applicants"
    date = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    with tempfile.TemporaryDirectory(prefix="bench-workflows-") as tmp:
        os.environ["INFERPROOF_HOME"] = tmp  # nothing of the user's home is touched
        with LocalNode(Path(tmp)) as node:
            record = node.push(credit_risk_model()[0], name="credit")
            node.infer(record.digest, {"X": np.ones((1, 4), np.float32)})  # warm the session
            print(f"scheduling: {runs + 1} runs, 1 s apart ...", file=sys.stderr)
            jit = measure_jitter(node, url, runs)
            print(f"overhead: {rounds} interleaved rounds ...", file=sys.stderr)
            ovh = measure_overhead(node, url, rounds, record.digest)
    httpd.shutdown()
    print(f"Command: `{command}` ({date}; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f} at the end; Python {platform.python_version()}, "
          f"APScheduler {version('apscheduler')}, onnxruntime {ort.__version__})\n")  # fmt: skip
    print(tables(jit, ovh, runs))
    if args.json is not None:
        env = {"cores": os.cpu_count(), "python": platform.python_version(),
               "apscheduler": version("apscheduler"), "onnxruntime": ort.__version__}  # fmt: skip
        args.json.write_text(json.dumps({"command": command, "date": date, "environment": env,
                                         "scheduling_ms": jit, "overhead": ovh}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
