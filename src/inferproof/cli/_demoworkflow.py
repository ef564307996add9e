"""``inferproof demo --workflow``: a volatility model on a signed price feed, scheduled.

A loopback server plays an ETH/USD feed: generated one-second candles, each answer
signed with the feed's Ed25519 key (``Feed-Signature``), calm at first and turbulent
from the sixth run. A workflow runs the realised-volatility model on the last 30
closes every second, ten times; its alert fires when volatility jumps, and a webhook
receiver on loopback checks each POST's Standard Webhooks signature. Then the
history is verified, exported, one run is deleted from a copy, and verifying the
copy names the gap.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .._keys import raw_public
from ..engine import LocalNode
from ..errors import Error, VerificationError
from ..testing import LoopbackHandler, serve_loopback, volatility_model
from ..workflows import (
    AlertSpec,
    FeedSpec,
    History,
    Query,
    RunResult,
    Schedule,
    audit_verifier,
    open_workflows,
    verify_history,
    verify_webhook,
)
from ._common import EXIT_VERIFY_FAILED, console
from ._demokit import publisher_key as _publisher_key
from ._demokit import step as _step
from ._workflow import _print_report, _print_run

__all__ = ["workflow_demo"]

NAME = "demo-eth-volatility"
WINDOW = 30
RUNS = 10
TURBULENT_FROM = 6  # the run from which the feed's prices swing harder
ALERT = "output.volatility[0][0] > 0.01"


class _Market:
    """Generated one-second candles: a random walk, calm, then turbulent."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key, self.served = key, 0
        self._rng = np.random.default_rng(2026)
        self.closes = list(3000 * np.exp(np.cumsum(self._rng.normal(0, 0.002, 60))))
        self.lock = threading.Lock()

    def answer(self) -> tuple[bytes, str]:
        with self.lock:
            self.served += 1
            # The first answer is the check at creation; answer k + 1 is run k's.
            sigma = 0.03 if self.served > TURBULENT_FROM else 0.002
            self.closes += list(self.closes[-1] * np.exp(self._rng.normal(0, sigma, WINDOW)))
            rows = [{"t": i, "close": round(float(c), 2)} for i, c in
                    enumerate(self.closes[-2 * WINDOW :])]  # fmt: skip
        body = json.dumps({"pair": "ETH/USD", "rows": rows}).encode()
        return body, base64.b64encode(self.key.sign(body)).decode()


@contextmanager
def _servers(market: _Market, public_key: bytes) -> Iterator[tuple[str, str, list[str]]]:
    """The feed (GET /eth-usd) and the webhook receiver (POST /hook) on loopback."""
    received: list[str] = []

    class Handler(LoopbackHandler):
        def do_GET(self) -> None:
            body, sig = market.answer()
            self.answer(200, body, {"Feed-Signature": sig})

        def do_POST(self) -> None:
            data = self.rfile.read(min(int(self.headers.get("Content-Length", 0)), 1 << 24))
            try:
                msg = verify_webhook(dict(self.headers), data, public_key, now=int(time.time()))
                run = json.loads(data)["data"]["run"]
                received.append(f"{msg} (run {run}): signature verified")
                self.answer(204)
            except VerificationError as exc:
                received.append(f"rejected: {exc}")
                self.answer(401)

    with serve_loopback(Handler) as base:
        yield base + "/eth-usd", base + "/hook", received


def workflow_demo(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    feed_key = Ed25519PrivateKey.generate()
    market = _Market(feed_key)
    with LocalNode() as node, open_workflows(node) as wf:
        if wf.store.get(NAME) is not None:
            wf.delete(NAME)  # this demo's own workflow from an earlier run
        _step("Pushing a signed realised-volatility model (ONNX) to the hub")
        record = node.push(volatility_model(WINDOW), name="eth-volatility", version="1",
                           sign_key=_publisher_key(workdir / "publisher.key"))  # fmt: skip
        console.print(f"model {record.ref} = {record.digest}")
        with _servers(market, wf.signer.public_key) as (feed_url, hook_url, received):
            _step(f"Creating workflow {NAME}: every 1 s, last {WINDOW} closes of a signed "
                  "ETH/USD feed")  # fmt: skip
            key = base64.b64encode(raw_public(feed_key.public_key())).decode()
            spec = FeedSpec.parse(feed_url, signature="ed25519", key=key)
            d = wf.create(NAME, record.ref, spec, Query("closes", ("close",), WINDOW),
                          Schedule(every=1.0), (AlertSpec(ALERT, hook_url),))  # fmt: skip
            console.print(f"definition {d.digest}\nalert: {ALERT} -> webhook {hook_url}")
            _step(f"Running {RUNS} runs, a second apart (the scheduler: APScheduler)")
            results = _run(wf)
            for line in received:
                console.print(f"webhook received {line}", markup=False)
        _verify_and_tamper(wf, workdir, results)


def _run(wf: Any) -> list[RunResult]:
    done = threading.Event()
    results: list[RunResult] = []

    def seen(name: str, r: RunResult) -> None:
        if name == NAME and len(results) < RUNS:
            results.append(r)
            _print_run(name, r)
            if len(results) == RUNS:
                done.set()

    wf.subscribe(seen)
    wf.start()
    deadline = time.monotonic() + RUNS * 3 + 30
    stored = 0
    # A node serving this same home (`inferproof serve`) runs the workflow too: its
    # scheduler shares the store, and each tick goes to whichever process claims it.
    # Its runs count, from the store, though only this process's are printed.
    while not done.wait(0.25) and time.monotonic() < deadline:
        stored = len(wf.store.runs(NAME))
        if stored >= RUNS:
            break
    wf.pause(NAME)
    wf.close()
    if len(results) < RUNS and stored < RUNS:
        raise Error(f"only {max(len(results), stored)} of {RUNS} runs happened in time")
    if len(results) < RUNS:
        console.print(f"{stored - len(results)} run(s) were made by another process serving "
                      "this home (its scheduler shares the store)")  # fmt: skip
    return results


def _verify_and_tamper(wf: Any, workdir: Path, results: list[RunResult]) -> None:
    fired = [r.run for r in results if r.fired]
    console.print(f"alert fired on run(s) {fired}" if fired else "no alert fired")
    _step("Verifying the history: every receipt, its log inclusion, the chain, and each "
          "run's input re-checked from the archived feed bytes")  # fmt: skip
    history = wf.history(NAME)
    report = wf.verify(NAME)
    _print_report(history, report, False)
    path = workdir / f"{NAME}.history.json"
    path.write_text(json.dumps(history.to_json(), indent=1) + "\n")
    console.print(f"history exported to {path}")
    _step("Deleting run 5 from a copy of the export, and verifying the copy")
    obj = json.loads(path.read_text())
    del obj["runs"][4]
    gap = workdir / f"{NAME}.history-gap.json"
    gap.write_text(json.dumps(obj, indent=1) + "\n")
    bad = verify_history(History.parse(gap.read_bytes()), audit_verifier(wf.node))
    _print_report(History.parse(gap.read_bytes()), bad, False)
    if not report.verified or bad.verified:
        raise typer.Exit(EXIT_VERIFY_FAILED)
    console.print(f"\n[bold]Done.[/bold] Try: inferproof workflow verify --file {path}  and  "
                  f"inferproof workflow verify --file {gap}")  # fmt: skip
