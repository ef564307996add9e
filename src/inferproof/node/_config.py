"""The node's limits, in one frozen value the app is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..errors import InputError

# Model uploads: the same cap as `inferproof zk setup` takes (far above what a node
# serves on one machine, and a guard on memory: the body is held to load the model).
MAX_MODEL_BYTES = 256 * 1024 * 1024
# A model-signing bundle (a Sigstore bundle with one DSSE envelope): a few KiB.
MAX_SIGNATURE_BYTES = 1024 * 1024
# JSON requests (inference inputs): 16 MiB holds a 1 Mi-element float tensor in JSON.
MAX_JSON_BODY_BYTES = 16 * 1024 * 1024
# Per input tensor, below the runtime's own 16 Mi cap: a node shares one process
# among many callers, so one request may not take the whole memory budget.
MAX_TENSOR_ELEMENTS = 1024 * 1024
# Items in one batch request; each gets its own receipt and log entry.
MAX_BATCH_ITEMS = 256


@dataclass(frozen=True)
class NodeConfig:
    """Limits and behaviour of a node server.

    ``job_modes`` are the inference modes run as background jobs (``202`` and a job id);
    the others answer in the request. ``max_jobs`` proving jobs run at once and at most
    ``max_queued_jobs`` wait; more are refused with ``429``. ``max_inflight`` requests
    are served at once; more are refused with ``429`` and ``Retry-After``.

    Example::

        app = create_app(LocalNode(), NodeConfig(max_jobs=1, request_timeout=30))
    """

    max_body_bytes: int = MAX_JSON_BODY_BYTES
    max_model_bytes: int = MAX_MODEL_BYTES
    max_tensor_elements: int = MAX_TENSOR_ELEMENTS
    max_batch_items: int = MAX_BATCH_ITEMS
    max_inflight: int = 256
    # Of max_inflight, the requests only token holders may use: anonymous readers can
    # take the rest, never all (review finding 11.7). None is a quarter.
    reserved_inflight: int | None = None
    max_jobs: int = 1
    max_queued_jobs: int = 16
    job_modes: frozenset[str] = frozenset({"zk"})
    # Seconds an inference answered in the request may take before the caller gets 504.
    request_timeout: float = 60.0
    # A request's headers must arrive within header_timeout seconds, and its body keep
    # arriving: each part within body_idle_timeout, all of it within body_timeout
    # (a 256 MiB model at 1 MB/s takes 256 s); else 408 and the connection closes.
    header_timeout: float = 10.0
    body_idle_timeout: float = 30.0
    body_timeout: float = 300.0
    # A proving job still unfinished after this many seconds is reported failed.
    job_timeout: float = 3600.0
    # Longest ?wait= on a job, so a client cannot hold a connection forever.
    max_wait: float = 60.0
    # Finished jobs are kept this long for polling, then forgotten.
    job_retention: float = 3600.0
    # Worker threads that run inferences (they block on the log's group commit, so
    # more threads than cores let commits batch).
    infer_threads: int = 32
    # Chat (OpenAI-compatible endpoints, see docs/node.md): threads that generate (each
    # holds one request; requests for one model take turns on it), and seconds a chat
    # request may take, from its arrival to its last token, before it is stopped.
    chat_threads: int = 4
    chat_timeout: float = 600.0
    # Relay mode: chat requests for models this node does not hold go to this
    # OpenAI-compatible base URL (".../v1"); receipts say so. The key is sent upstream
    # as a bearer token and kept out of repr().
    relay_url: str | None = None
    relay_api_key: str | None = field(default=None, repr=False)
    # How the relay reaches its upstream: None is the network; an httpx transport
    # (httpx.MockTransport, a WSGI app) replaces it, for tests without sockets.
    relay_transport: httpx.BaseTransport | None = field(default=None, repr=False)
    # Workflows (docs/workflows.md, "Over HTTP"): run their schedules in this process
    # (else only POST .../run runs them); HTTP feeds and webhooks created over the API
    # may reach these lower-case host names only (none by default: the node fetches
    # what a token holder names, so every host is the operator's decision); file
    # feeds only under feeds_dir (None: no file feeds). At most max_event_streams
    # event streams are open at once; more get 429.
    workflows: bool = True
    feed_hosts: frozenset[str] = frozenset()
    feeds_dir: Path | None = None
    max_event_streams: int = 64
    # Anchoring (docs/chain.md): while serving, anchor the log's checkpoint every
    # anchor_every seconds and/or whenever anchor_receipts receipts were logged, with
    # the contract HOME/chain.json names, sent by the operator (anchor_key, a hex
    # private key file, or the account the RPC unlocks). None and None: no anchoring.
    anchor_every: float | None = None
    anchor_receipts: int | None = None
    anchor_key: Path | None = field(default=None, repr=False)
    # Beyond one process (docs/scale.md): keep job state where every worker sees it
    # (the database, else ``node/jobs.sqlite`` in the home; set by ``--workers`` > 1),
    # and prove ZK jobs on Ray: "ray" (a Ray this node starts) or the address of a
    # cluster ("ray://HOST:PORT", "HOST:PORT"); None proves on the node's own threads.
    shared_jobs: bool = False
    zk_backend: str | None = None

    def __post_init__(self) -> None:
        if self.reserved_inflight is not None and not (
            0 <= self.reserved_inflight < self.max_inflight
        ):
            raise InputError("reserved_inflight must be at least 0 and below max_inflight")
        if self.chat_timeout <= 0 or self.chat_threads < 1 or self.max_model_bytes < 1:
            raise InputError("chat_timeout must be > 0, chat_threads and max_model_bytes >= 1")
        if min(self.header_timeout, self.body_idle_timeout, self.body_timeout) <= 0:
            raise InputError("header_timeout, body_idle_timeout and body_timeout must be > 0")
        if any(not h or h != h.strip().lower() for h in self.feed_hosts):
            raise InputError("feed_hosts are lower-case host names, such as feeds.example.com")
        if self.max_event_streams < 1:
            raise InputError("max_event_streams must be >= 1")

    @property
    def reserved_for_tokens(self) -> int:
        """The share of ``max_inflight`` kept for token holders (at least one)."""
        if self.reserved_inflight is not None:
            return self.reserved_inflight
        return max(1, self.max_inflight // 4) if self.max_inflight > 1 else 0
