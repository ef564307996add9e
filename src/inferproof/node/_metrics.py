"""Prometheus metrics of the node (the request guard that records them is in ._guard).

Each app has its own registry, so several nodes (tests) can run in one process.
Routes are labelled by their path template, never the raw path, so label
cardinality stays bounded whatever paths callers send.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
