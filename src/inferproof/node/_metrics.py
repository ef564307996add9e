"""Prometheus metrics and the request guard (in-flight limit), as one ASGI middleware.

Each app has its own registry, so several nodes (tests) can run in one process.
Routes are labelled by their path template, never the raw path, so label
cardinality stays bounded whatever paths callers send.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._errors import error_response

# Paths that stay answerable when the node is at its in-flight limit.
_UNGUARDED = ("/healthz", "/metrics")
# Latency buckets (seconds) from sub-millisecond receipts to minute-long proofs.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)


class NodeMetrics:
    """The node's metrics in their own registry."""

    def __init__(self, log_size: Callable[[], float], jobs: Callable[[], dict[str, int]]):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "inferproof_http_requests", "HTTP requests answered",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "inferproof_http_request_duration_seconds", "Time to answer a request",
            ["method", "route"], buckets=_BUCKETS, registry=r,
        )  # fmt: skip
        self.inferences = Counter("inferproof_inferences", "Receipts issued", ["mode"], registry=r)
        self.inflight = Gauge("inferproof_http_inflight", "Requests being served", registry=r)
        Gauge("inferproof_log_size", "Entries in the transparency log", registry=r).set_function(
            log_size
        )
        queue = Gauge("inferproof_jobs", "Proving jobs by state", ["state"], registry=r)
        for state in ("queued", "running"):
            queue.labels(state).set_function(functools.partial(_count, jobs, state))


def _count(jobs: Callable[[], dict[str, int]], state: str) -> float:
    return float(jobs()[state])


class Guard:
    """Pure ASGI middleware: refuse over ``max_inflight`` with 429, count and time requests."""

    def __init__(self, app: ASGIApp, metrics: NodeMetrics, max_inflight: int) -> None:
        self.app, self.metrics, self.max_inflight = app, metrics, max_inflight
        self._inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guarded = not scope["path"].startswith(_UNGUARDED)
        if guarded and self._inflight >= self.max_inflight:
            response = error_response(
                429, f"the node is serving {self._inflight} requests; retry shortly",
                headers={"Retry-After": "1"},
            )  # fmt: skip
            self._count(scope, 429, 0.0)
            await response(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()
        replaced = False

        async def watch(message: Message) -> None:
            nonlocal status, replaced
            if message["type"] == "http.response.start":
                status = message["status"]
                if status == 413 and (b"content-type", b"application/json") not in message.get(
                    "headers", []
                ):
                    # Starlette's body limit answers in plain text; every error here is JSON.
                    replaced = True
                    body = error_response(413, "the request body is over this node's cap")
                    await body(scope, receive, send)
                    return
            if not replaced:
                await send(message)

        self._inflight += guarded
        self.metrics.inflight.inc()
        try:
            await self.app(scope, receive, watch)
        finally:
            self._inflight -= guarded
            self.metrics.inflight.dec()
            self._count(scope, status, time.perf_counter() - started)

    def _count(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        label = getattr(route, "path", "unmatched")
        method = scope.get("method", "")
        self.metrics.requests.labels(method, label, str(status)).inc()
        if seconds:
            self.metrics.latency.labels(method, label).observe(seconds)
