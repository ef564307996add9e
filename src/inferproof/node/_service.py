"""The node's one LocalNode, its issued bundles, jobs and tokens: what the routes call.

Everything here is a thin adapter: requests become library calls, library results
become JSON bytes. The library decides what a model, an input or a receipt is.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import orjson

from .._canonical import canonical_json, sha256_digest
from ..confidential import Gateway
from ..engine import InferenceResult, LocalNode, opening_json
from ..errors import Error, InputError
from ..hub import ModelRecord, parse_model_signature
from ..log import Checkpoint, Note, TlogProof
from ..runtime import NamedInputs, parse_json_tensors
from ..workflows import FeedPolicy, WebhookSigner, Workflows, open_workflows
from ._auth import Tokens, TokenStore
from ._bundles import BundleStore, IssuedBundles
from ._config import NodeConfig
from ._errors import NodeHTTPError, error_body
from ._groupstore import GroupedBundles
from ._jobs import Jobs, JobStore
from ._metrics import NodeMetrics
from ._schemas import InferItem

if TYPE_CHECKING:
    from ..stores import SQLReplayStore

# The callable that runs one inference: LocalNode.infer's signature.
InferFn = Callable[..., InferenceResult]


@dataclass(frozen=True)
class Call:
    """One checked inference request, ready for the library."""

    model: str
    inputs: NamedInputs
    mode: str
    nonce: str | None
    private_input: bool
    private_output: bool | None = None
    # The hash of the token that asked (its bundle is listed to that token only).
    owner: str | None = None


@dataclass(frozen=True)
class Issued:
    """An inference's answer as stored and sent: the response without the opening."""

    body: bytes
    opening: dict[str, Any] | None
    # The size of the checkpoint the receipt is proven against (None: not logged), and
    # the consistency proof the caller asked for (X-Inferproof-Log-Size), as JSON.
    tree_size: int | None = None
    consistency: bytes | None = None

    def json(self, with_opening: bool) -> bytes:
        """The InferResponse bytes; the opening only for its caller."""
        opening = json.dumps(self.opening if with_opening else None).encode()
        extra = b',"consistency":' + self.consistency if self.consistency else b""
        return self.body[:-1] + b',"opening":' + opening + extra + b"}"


class IssuedCodec:
    """How a job store keeps an inference job's answer: its JSON body and opening
    (the store is a database table when workers share jobs; the opening stays there,
    for its owner, until the job's retention ends)."""

    def encode(self, result: Any) -> Any:
        if isinstance(result, Issued):
            return {"issued": result.body.decode(), "opening": result.opening}
        return result

    def decode(self, data: Any) -> Any:
        if isinstance(data, dict) and set(data) == {"issued", "opening"}:
            return Issued(data["issued"].encode(), data["opening"])
        return data


@dataclass(frozen=True)
class _Pending:
    """An issued bundle not yet stored: its JSON bytes, receipt digest, log index."""

    data: bytes
    digest: str
    index: int | None
    outputs: dict[str, Any]
    opening: dict[str, Any] | None
    owner: str | None = None
    tree_size: int | None = None


class Service:
    """One LocalNode behind the HTTP routes (see :func:`inferproof.node.create_app`)."""

    def __init__(self, node: LocalNode, config: NodeConfig, infer: InferFn | None = None):
        self.node, self.config = node, config
        self._infer = infer or node.infer
        self.bundles, self.tokens = _open_stores(node)
        self._writer = GroupedBundles(self.bundles)  # stores what _store gives it
        self.jobs = Jobs(config.max_jobs, config.max_queued_jobs, config.job_timeout,
                         config.job_retention, store=_job_store(node, config),
                         codec=IssuedCodec())  # fmt: skip
        self.pool = ThreadPoolExecutor(config.infer_threads, thread_name_prefix="infer")
        self.ready = False
        self.metrics = NodeMetrics(self._log_size, self.jobs.counts)
        # The workflow service runs scheduler threads, so it opens with the app's
        # lifespan (open_workflows) rather than with the app.
        self._workflows: Workflows | None = None
        self.event_streams = 0
        self._webhook_key: str | None = None
        self._ohttp: tuple[Gateway, bytes, bytes] | None = None
        self._replays: SQLReplayStore | None = None
        self._replays_lock = threading.Lock()
        self._anchoring: Any = None

    # -- workflows ------------------------------------------------------------------------
    @property
    def workflows(self) -> Workflows:
        if self._workflows is None:
            raise NodeHTTPError(503, "the node's workflow service is not open")
        return self._workflows

    def open_workflows(self) -> None:
        """Open the workflow service under the config's feed policy; run its schedules
        when ``config.workflows`` (one scheduler per database per process)."""
        policy = FeedPolicy(hosts=self.config.feed_hosts, root=self.config.feeds_dir)
        url = _sql_url(self.node.storage.database)
        wf = open_workflows(self.node, url, policy=policy)
        try:
            if self.config.workflows:
                wf.start()
        except BaseException:
            wf.close()
            raise
        self._workflows = wf

    def open_anchoring(self) -> None:
        """Start anchoring the log on the config's schedule (none by default)."""
        cfg = self.config
        if cfg.anchor_every is None and cfg.anchor_receipts is None:
            return
        try:
            from ..chain import anchoring
        except ImportError:
            raise Error(
                "anchoring needs the chain extra: pip install 'inferproof[chain]'"
            ) from None
        schedule = anchoring(self.node.home.root, self.node.log, every=cfg.anchor_every,
                             receipts=cfg.anchor_receipts, key=cfg.anchor_key,
                             report=_log_anchor)  # fmt: skip
        schedule.start()
        self._anchoring = schedule

    @property
    def webhook_key(self) -> str:
        """The public key that signs this node's webhooks, as ``whpk_`` text."""
        if self._webhook_key is None:
            self._webhook_key = WebhookSigner(self.node.home.webhook_key()).key_text
        return self._webhook_key

    def ohttp(self) -> tuple[Gateway, bytes, bytes]:
        """The node's Oblivious HTTP gateway, its ``application/ohttp-keys`` body, and the
        node key's signature binding that body to this node (attest/_keybinding.py)."""
        if self._ohttp is None:
            gateway = Gateway(self.node.home.ohttp_key(), key_id=1)
            config = gateway.config.encode()
            keys = len(config).to_bytes(2, "big") + config
            self._ohttp = (gateway, keys, self.node.issuer.sign_ohttp_keys(keys))
        return self._ohttp

    def replays(self) -> SQLReplayStore:
        """The sealed requests this node's gateway has seen (node/_replays.py), shared by
        every worker on its database or its home; opened on first use, so a node that
        serves no Oblivious HTTP opens nothing."""
        with self._replays_lock:
            if self._replays is None:
                self._replays = _replay_store(self.node)
            return self._replays

    def _log_size(self) -> float:
        return float(self.node.log.size) if self.node.log_enabled else 0.0

    # -- requests -> calls --------------------------------------------------------------
    def parse_inputs(self, inputs: dict[str, Any]) -> NamedInputs:
        named = parse_json_tensors(json.dumps(inputs).encode())
        cap = self.config.max_tensor_elements
        for name, arr in named.tensors.items():
            if arr.size > cap:
                raise NodeHTTPError(
                    413, f"tensor {name!r} has {arr.size} elements, over this node's cap of {cap}"
                )
        return named

    def check_model(self, ref: str) -> None:
        try:
            self.node.hub.resolve(ref)
        except InputError as exc:
            raise NodeHTTPError(404, str(exc), "model_not_found") from exc

    def prepare(self, model: str, mode: str, item: InferItem, owner: str | None = None) -> Call:
        self.check_model(model)
        return Call(model, self.parse_inputs(item.inputs), mode, item.nonce, item.private_input,
                    item.private_output, owner)  # fmt: skip

    def prepare_and_run(
        self,
        model: str,
        mode: str,
        item: InferItem,
        owner: str | None = None,
        known_size: int | None = None,
    ) -> Issued:
        """Both steps in one worker-thread hop (each hop costs GIL hand-offs); with
        ``known_size`` (the tree size the caller last saw), the consistency proof that
        links it with the receipt's checkpoint, so the caller needs no second request."""
        issued = self.run(self.prepare(model, mode, item, owner))
        if known_size is None or issued.tree_size is None:
            return issued
        return replace(issued, consistency=self._consistency(known_size, issued.tree_size))

    def _consistency(self, known: int, size: int) -> bytes | None:
        """JSON of the proof between ``known`` and ``size`` (either order), or None when
        none is needed (equal sizes, an empty tree) or possible (past the log's size)."""
        old, new = min(known, size), max(known, size)
        if old == new or old == 0 or new > self.node.log.size:
            return None
        hashes = [base64.b64encode(h).decode() for h in self.node.log.consistency_proof(old, new)]
        return _dumps({"old_size": old, "new_size": new, "hashes": hashes})

    # -- running ------------------------------------------------------------------------
    def run(self, call: Call, progress: Callable[[str], None] | None = None) -> Issued:
        """Run one inference through the library and store the bundle it issued."""
        return self._store([self._issue(call, progress)])[0]

    def _issue(self, call: Call, progress: Callable[[str], None] | None = None) -> _Pending:
        result = self._infer(
            call.model,
            call.inputs,
            nonce=call.nonce,
            private_input=call.private_input,
            private_output=call.private_output,
            mode=call.mode,
            progress=progress,
        )
        bundle = result.bundle
        data = _dumps(bundle.to_json())
        digest = sha256_digest(canonical_json(bundle.envelope))
        index = size = None
        if bundle.tlog_entry:
            proof = TlogProof.parse(bundle.tlog_entry)
            index, size = proof.index, Checkpoint.parse(Note.parse(proof.checkpoint).text).size
        opening = opening_json(result.salt, bundle, result.outputs) if result.salt else None
        self.metrics.inferences.labels(call.mode).inc()
        return _Pending(data, digest, index, bundle.outputs, opening, call.owner, size)

    def _store(self, issued: list[_Pending]) -> list[Issued]:
        ids = self._writer.add_many(
            [(p.digest, p.index, p.data) for p in issued], owners=[p.owner for p in issued]
        )
        out = []
        for bundle_id, p in zip(ids, issued, strict=True):
            rest = {"bundle_id": bundle_id, "log_index": p.index, "outputs": p.outputs,
                    "receipt_digest": p.digest}  # fmt: skip
            body = b'{"bundle":' + p.data + b"," + _dumps(rest)[1:]
            out.append(Issued(body, p.opening, p.tree_size))
        return out

    @contextlib.contextmanager
    def upload(self) -> Iterator[tuple[Path, BinaryIO]]:
        """A temporary file under the node's home for an upload, removed afterwards."""
        folder = self.node.home.root / "node" / "uploads"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(dir=folder, prefix="push-", suffix=".part") as fh:
            yield Path(fh.name), cast(BinaryIO, fh)

    def push(
        self, model: Path, name: str, version: str | None, signature: bytes | None
    ) -> ModelRecord:
        """Store a model; with a signature, record it too (the hub checks it names the model)."""
        data = model.read_bytes()
        if signature is not None:
            # Checked before anything is stored, so a bad signature leaves no trace.
            over = parse_model_signature(signature).model_digest
            if over != sha256_digest(data):
                raise InputError(f"the signature is over {over}, not this model")
        return self.node.push(data, name=name, version=version, signature=signature)

    async def in_pool(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the inference threads, bounded by the request timeout."""
        future = self.pool.submit(fn, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.config.request_timeout)
        except TimeoutError:
            raise NodeHTTPError(
                504, f"the inference did not finish within {self.config.request_timeout:.0f} s"
            ) from None

    async def run_batch(self, calls: list[Call]) -> bytes:
        """Run every item concurrently (their log appends share commits), store their
        bundles in one transaction; one result or error per item."""
        futures = [asyncio.wrap_future(self.pool.submit(self._issue, call)) for call in calls]
        try:
            done = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), self.config.request_timeout
            )
        except TimeoutError:
            raise NodeHTTPError(
                504, f"the batch did not finish within {self.config.request_timeout:.0f} s"
            ) from None
        issued = [d for d in done if isinstance(d, _Pending)]
        stored = iter(await asyncio.wrap_future(self.pool.submit(self._store, issued)))
        parts = []
        for outcome in done:
            if isinstance(outcome, _Pending):
                parts.append(b'{"result":' + next(stored).json(True) + b"}")
            elif isinstance(outcome, InputError):
                parts.append(json.dumps(error_body("invalid_request", str(outcome))).encode())
            else:
                message = f"the node failed: {outcome}"
                parts.append(json.dumps(error_body("internal", message)).encode())
        return b'{"results":[' + b",".join(parts) + b"]}"

    def close(self) -> None:
        """Finish running work, then flush the log (LocalNode.close) and close the stores."""
        self.ready = False
        if self._anchoring is not None:
            self._anchoring.stop()
            self._anchoring = None
        if self._workflows is not None:  # first: a scheduled run uses the node
            self._workflows.close()
            self._workflows = None
        self.jobs.shutdown()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.node.close()
        self._writer.close()  # and the bundle store
        with self._replays_lock:
            if self._replays is not None:
                self._replays.close()
                self._replays = None


def _open_stores(node: LocalNode) -> tuple[BundleStore, Tokens]:
    """The node's issued bundles and tokens: in its database when it has one (shared
    by every worker and node on it), else SQLite and a file under its home."""
    database = node.storage.database
    if database is None:
        root = node.home.root
        return IssuedBundles(root / "node" / "bundles.sqlite"), TokenStore(root)
    from ..stores import SQLBundleStore, SQLTokenStore

    return SQLBundleStore(database), SQLTokenStore(database)


def _replay_store(node: LocalNode) -> SQLReplayStore:
    """The gateway's seen requests: in the node's database when it has one, else in
    ``node/ohttp-replays.sqlite`` under its home (workers share the home, and a
    restarted node finds what it saw before)."""
    from ..stores import SQLReplayStore

    database = node.storage.database
    if database is None:
        folder = node.home.root / "node"
        folder.mkdir(parents=True, exist_ok=True)
        return SQLReplayStore("sqlite:///" + str(folder / "ohttp-replays.sqlite"))
    return SQLReplayStore(database)


def _dumps(value: Any) -> bytes:
    """Compact JSON bytes, by orjson on the hot path (13x json.dumps on a bundle: 1.6
    against 20.8 us, docs/benchmarks.md); json for what orjson refuses (an integer
    past 64 bits). Both write the same JSON values (a receipt holds no NaN: RFC 8785
    has none), so what a client parses is unchanged."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, separators=(",", ":")).encode()


def _job_store(node: LocalNode, config: NodeConfig) -> JobStore | None:
    """Jobs in the database, or in ``node/jobs.sqlite`` when workers share the home;
    None keeps them in this process (one worker)."""
    database = node.storage.database
    if database is None and not config.shared_jobs:
        return None
    from ..stores import SQLJobStore

    if database is None:
        folder = node.home.root / "node"
        folder.mkdir(parents=True, exist_ok=True)
        return SQLJobStore("sqlite:///" + str(folder / "jobs.sqlite"))
    return SQLJobStore(database)


def _sql_url(database: str | None) -> str | None:
    """The database in SQLAlchemy's form (stores/ is imported only when there is one:
    the embedded default needs none of its drivers)."""
    if database is None:
        return None
    from ..stores import sqlalchemy_url

    return sqlalchemy_url(database)


def _log_anchor(result: Any) -> None:
    """Where the node's scheduled anchors are reported: its log, one line each."""
    import logging

    logger = logging.getLogger("inferproof.node.anchor")
    if isinstance(result, Error):
        logger.warning("anchoring failed: %s", result)
    elif result.receipt is not None:
        logger.info("anchored size %d (from %d) in block %s", result.new, result.old,
                    result.receipt["blockNumber"])  # fmt: skip
