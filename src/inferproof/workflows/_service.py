"""Workflows as a service: create, list, pause, delete, run on schedule, export, verify.

:class:`Workflows` joins the pieces: definitions and runs in a
:class:`WorkflowStore`, APScheduler (``_scheduler.py``) deciding when, ``run_once``
doing a run, then the consumers: in-process subscribers (the node's server-sent
events) and signed webhooks. What an outsider may name is bounded by a
:class:`FeedPolicy`: HTTP feeds and webhooks only to allowed hosts, files only under
the feed folder; the local command line (the machine's own user) allows any host.
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .._canonical import sha256_digest
from ..engine import LocalNode
from ..errors import Error, InputError
from ..receipts import utc_now
from ..runtime import decode_tensors
from ..stores import SQLWorkflowStore, StoredRun
from ..verify import RunVerifier, Verifier
from ._chain import HistoryEntry, HistoryReport
from ._definition import AlertSpec, Definition, Schedule
from ._feeds import FeedSpec, fetch
from ._history import History, archive_reader, verify_history
from ._query import Query
from ._runner import RunResult, run_once
from ._scheduler import Scheduler, planned_tick, trigger_of
from ._store import WorkflowStore
from ._webhooks import Delivery, WebhookSigner, deliver

__all__ = ["FeedPolicy", "WorkflowInfo", "Workflows"]

log = logging.getLogger("inferproof.workflows")
# A run is a bounded fetch (10 s), an inference and a log append; a run still marked
# running after this long belonged to a process that died, and its number is reused.
RUN_LEASE_SECONDS = 600.0
# Each workflow is a scheduler job and at most a run a second: a bound on what holders
# of a write token can make the node do on its own.
MAX_WORKFLOWS = 1000
Subscriber = Callable[[str, RunResult], None]


@dataclass(frozen=True)
class FeedPolicy:
    """Which feeds and webhooks a creator may name: ``hosts`` None allows any host
    (the local user), a set allows those host names only; ``root`` is the folder file
    feeds are read from (None: no file feeds)."""

    hosts: frozenset[str] | None = None
    root: Path | None = None

    def check(self, d: Definition) -> None:
        urls = [d.feed.source] if d.feed.kind == "http" else []
        urls += [a.webhook for a in d.alerts if a.webhook]
        for url in urls:
            host = (urlsplit(url).hostname or "").lower()
            if self.hosts is not None and host not in self.hosts:
                raise InputError(f"host {host!r:.80} is not in this node's feed allow-list "
                                 "(--feed-host)")  # fmt: skip
        if d.feed.kind == "file" and self.root is None:
            raise InputError("file feeds are not allowed here (no feed folder is configured)")


@dataclass(frozen=True)
class WorkflowInfo:
    """A workflow as listed: definition, state, runs so far, the last run's status."""

    definition: Definition
    state: str
    created: float
    runs: int
    last_status: str | None
    next_run: str | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.definition.name, "state": self.state,
                "digest": self.definition.digest, "definition": self.definition.to_json(),
                "created": self.created, "runs": self.runs, "last_status": self.last_status,
                "next_run": self.next_run}  # fmt: skip


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Workflows:
    """Workflows over one node and one store (module docs).

    Example::

        with LocalNode() as node, Workflows(node, store) as wf:
            wf.create("risk", "credit", FeedSpec.parse(url), Query("X", cols, 1),
                      Schedule(every=60))
            wf.start()          # runs on schedule until close()
    """

    def __init__(
        self,
        node: LocalNode,
        store: WorkflowStore,
        *,
        policy: FeedPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        archive: Path | None = None,
        owns_store: bool = False,
    ) -> None:
        self.node, self.store, self._owns_store = node, store, owns_store
        self.archive = archive
        self.policy = policy or FeedPolicy(root=node.home.root / "feeds")
        self.transport = transport
        self.owner = uuid.uuid4().hex
        self.signer = WebhookSigner(node.home.webhook_key())
        self._scheduler = Scheduler(store.engine, store.database_id, self._fire)
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._scheduler.start(paused=True)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Run workflows on schedule in background threads, until :meth:`close`."""
        self._scheduler.shutdown()
        self._scheduler = Scheduler(self.store.engine, self.store.database_id, self._fire)
        self._scheduler.start()

    @property
    def running(self) -> bool:
        return self._scheduler.running

    def close(self) -> None:
        self._scheduler.shutdown()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Workflows:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- definitions -------------------------------------------------------------------
    def create(
        self, name: str, model: str, feed: FeedSpec, query: Query, schedule: Schedule,
        alerts: tuple[AlertSpec, ...] = (), *, probe: bool = True,
    ) -> Definition:  # fmt: skip
        """Define and schedule a workflow. Refused with the reason when the model does
        not take the query's tensor, an alert does not read an output, the policy
        forbids the feed or a webhook, or (``probe``) the feed's rows do not fit now."""
        record, _ = self.node.resolve(model)
        if record is None:
            raise InputError(f"no model {model!r:.80} in the hub")
        d = Definition.create(name, record, feed, query, schedule, alerts)
        self.policy.check(d)
        if len(self.store.definitions()) >= MAX_WORKFLOWS:
            raise InputError(f"this node has {MAX_WORKFLOWS} workflows, its limit: delete some")
        if trigger_of(schedule, time.time()).get_next_fire_time(None, datetime.now(UTC)) is None:
            raise InputError(f"the schedule never fires (until {schedule.until} has passed)")
        if probe:
            self._probe(d, record)
        created = time.time()
        self.store.put(d.name, json.dumps(d.to_json()), d.digest, created=created)
        self._scheduler.add(d.name, d.schedule, created=created)
        return d

    def _probe(self, d: Definition, record: Any) -> None:
        try:
            fetched = fetch(d.feed, root=self.policy.root, transport=self.transport)
            spec = next(s for s in record.inputs if s.name == d.query.input)
            d.query.tensors(fetched.rows, spec)
        except Error as exc:
            raise InputError(f"the feed does not give the model's input now: {exc}") from None

    def definition(self, name: str) -> Definition:
        stored = self.store.get(name)
        if stored is None:
            raise InputError(f"no workflow {name!r:.80}")
        return Definition.from_json(json.loads(stored.definition))

    def info(self, name: str) -> WorkflowInfo:
        stored = self.store.get(name)
        if stored is None:
            raise InputError(f"no workflow {name!r:.80}")
        runs = self.store.runs(name)
        nxt = self._scheduler.next_run(name) if stored.state == "active" else None
        return WorkflowInfo(Definition.from_json(json.loads(stored.definition)), stored.state,
                            stored.created, len(runs), runs[-1].status if runs else None,
                            None if nxt is None else _iso(nxt))  # fmt: skip

    def list(self) -> builtins.list[WorkflowInfo]:
        return [self.info(s.name) for s in self.store.definitions()]

    def pause(self, name: str) -> None:
        self.definition(name)
        self.store.set_state(name, "paused")
        self._scheduler.pause(name)

    def resume(self, name: str) -> None:
        self.definition(name)
        self.store.set_state(name, "active")
        self._scheduler.resume(name)

    def delete(self, name: str) -> None:
        """Remove a workflow, its schedule and stored runs (export first to keep them)."""
        self.definition(name)
        self._scheduler.remove(name)
        self.store.delete(name)

    # -- runs --------------------------------------------------------------------------
    def _fire(self, name: str) -> None:
        self.tick(name)

    def tick(self, name: str, *, now: datetime | None = None) -> RunResult | None:
        """Run the tick of ``name`` due at ``now`` if this process wins its claim."""
        stored = self.store.get(name)
        if stored is None or stored.state != "active":
            return None
        d = Definition.from_json(json.loads(stored.definition))
        when = now or datetime.now(UTC)
        planned = planned_tick(trigger_of(d.schedule, stored.created), when)
        if planned is None:
            return None
        return self._run(d, _iso(planned), _iso(planned), when)

    def run_now(self, name: str) -> RunResult | None:
        """Run ``name`` once now, off schedule (its own tick), on the same chain."""
        d = self.definition(name)
        now = datetime.now(UTC)
        return self._run(d, f"manual:{uuid.uuid4().hex}", _iso(now), now)

    def _run(self, d: Definition, tick: str, planned: str, when: datetime) -> RunResult | None:
        claim = self.store.claim(d.name, tick, owner=self.owner, planned=planned,
                                 started=utc_now(), now=when.timestamp(),
                                 lease=RUN_LEASE_SECONDS)  # fmt: skip
        if claim is None:
            return None
        try:
            result = run_once(self.node, d, claim.run, claim.previous, planned=planned,
                              root=self.policy.root, transport=self.transport)  # fmt: skip
        except Exception:
            log.exception("workflow %s run %d could not be signed", d.name, claim.run)
            self.store.abandon(d.name, claim.run)
            return None
        kept = self.store.finish(
            d.name, claim.run, owner=self.owner, status="ok" if result.ok else "failed",
            digest=result.entry.digest, entry=json.dumps(result.entry.to_json()),
            reason=result.reason, alerts=json.dumps(list(result.fired)), finished=utc_now(),
        )  # fmt: skip
        if not kept:
            # Signed and logged, but too late: the lease ran out and the number went to
            # another run. Its receipt stays in the log; the history holds the other.
            log.warning("workflow %s run %d outlived its lease; not stored", d.name, claim.run)
            return None
        if self.archive is not None and result.payload is not None:
            self._keep(result.payload)
        self._notify(d.name, result)
        if result.webhooks:
            self._deliver(d.name, result)
        return result

    def _keep(self, payload: bytes) -> None:
        assert self.archive is not None
        self.archive.mkdir(parents=True, exist_ok=True)
        path = self.archive / sha256_digest(payload).replace(":", "-")
        if not path.exists():
            tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(payload)
            tmp.replace(path)  # atomic: a reader never sees half a file

    def payload(self, digest: str) -> bytes | None:
        """The archived feed bytes of digest ``digest`` (``archive=``), or None."""
        return None if self.archive is None else archive_reader(self.archive)(digest)

    # -- consumers ---------------------------------------------------------------------
    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(name, result)`` after every run this process makes; returns the
        function that unsubscribes."""
        with self._lock:
            self._subscribers.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subscribers:
                    self._subscribers.remove(fn)

        return unsubscribe

    def _notify(self, name: str, result: RunResult) -> None:
        with self._lock:
            subs = list(self._subscribers)
        for fn in subs:
            try:
                fn(name, result)
            except Exception:  # a consumer's bug must not stop the schedule
                log.exception("workflow subscriber failed")

    def _deliver(self, name: str, result: RunResult) -> builtins.list[Delivery]:
        body = json.dumps(event_body(name, result), separators=(",", ":")).encode()
        done = [deliver(url, body, self.signer, transport=self.transport)
                for url in dict.fromkeys(result.webhooks)]  # fmt: skip
        self.store.set_deliveries(name, result.run, json.dumps([
            {"url": d.url, "id": d.msg_id, "status": d.status, "attempts": d.attempts,
             "error": d.error} for d in done]))  # fmt: skip
        return done

    # -- history -----------------------------------------------------------------------
    def history(self, name: str) -> History:
        """Every finished run of ``name``, in order, as an exportable :class:`History`."""
        d = self.definition(name)
        entries: builtins.list[HistoryEntry] = []
        after = 0
        while page := self.store.runs(name, after=after):
            entries += [HistoryEntry.from_json(json.loads(r.entry)) for r in page if r.entry]
            after = page[-1].run
        return History(d, entries)

    def events(self, name: str, after: int = 0, limit: int = 100) -> builtins.list[dict[str, Any]]:
        """The consumer bodies (:func:`event_body`) of the stored runs of ``name``
        numbered above ``after``, in order, up to ``limit`` and never past a run still
        going: what a server-sent event stream replays, or sends of runs another
        process made.

        Example::

            for body in wf.events("risk", after=41):
                print(body["data"]["run"], body["data"]["status"])
        """
        self.definition(name)
        out = []
        for r in self.store.runs(name, after=after, limit=limit):
            if r.entry is None:
                break  # running: the runs after it wait, so the order holds
            out.append(event_body(name, _result_of(r)))
        return out

    def verify(self, name: str) -> HistoryReport:
        """Verify the stored history of ``name`` with this node's trust root, each run's
        provenance re-checked from the archived feed bytes where there are some."""
        payloads = None if self.archive is None else archive_reader(self.archive)
        return verify_history(self.history(name), audit_verifier(self.node), payloads)


def _result_of(r: StoredRun) -> RunResult:
    """A finished stored run as the :class:`RunResult` it was (the outputs from its bundle)."""
    entry = HistoryEntry.from_json(json.loads(str(r.entry)))
    outputs = None if entry.bundle is None else decode_tensors(entry.bundle.outputs, "outputs")
    fired = tuple(str(a) for a in json.loads(r.alerts or "[]"))
    return RunResult(r.run, entry, r.planned, r.started, outputs, fired, r.reason)


def audit_verifier(node: LocalNode) -> Verifier:
    """The node's verifier with an audit's policy: log inclusion required, no nonce."""
    return RunVerifier.for_audit(node.verifier()).verifier


def event_body(name: str, result: RunResult) -> dict[str, Any]:
    """A run as consumers get it (webhook body, server-sent event): Standard Webhooks'
    ``{type, timestamp, data}`` with the signed entry in ``data``."""
    return {
        "type": "workflow.run",
        "timestamp": result.started,
        "data": {"workflow": name} | result.to_json() | {"entry": result.entry.to_json()},
    }


def open_workflows(
    node: LocalNode,
    database: str | None = None,
    *,
    policy: FeedPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
    archive: Path | bool | None = True,
) -> Workflows:
    """The workflow service of ``node`` on ``database`` (an SQLAlchemy URL; by default
    ``workflows.sqlite`` in the node's home). Closing it closes the store too.

    ``archive`` keeps every fetched feed payload, content-addressed, in a folder (by
    default ``feed-archive`` in the home; ``False`` keeps none), so each run's
    provenance can be checked again from the bytes (:func:`check_provenance`)."""
    url = database or "sqlite:///" + str(node.home.root / "workflows.sqlite")
    folder = node.home.root / "feed-archive" if archive is True else archive or None
    return Workflows(node, SQLWorkflowStore(url), policy=policy, transport=transport,
                     archive=folder, owns_store=True)  # fmt: skip
