"""``/v1/workflows``: scheduled inference on data feeds, over HTTP (docs/workflows.md).

Thin, as every route here: requests become :class:`~inferproof.workflows.Workflows`
calls, and the library decides what a definition, a run or a history is. Writes need
a token; reads are public, as the node's other reads. What a token holder may make
the node fetch is the node's :class:`~inferproof.workflows.FeedPolicy` (the
``feed_hosts`` and ``feeds_dir`` of its config).

``GET /v1/workflows/{name}/events`` is a server-sent event stream: every finished
run as ``event: workflow.run``, ``id: RUN``, ``data: {event body}`` (the webhook's
body, :func:`~inferproof.workflows.event_body`). The runs after ``Last-Event-ID``
(or ``?after=``) are replayed from the store first, then live ones follow. The
store is the one source: a run's notification only wakes the stream, which then
reads what was stored after the last run it sent, so nothing is sent twice or out
of order, and runs another process on the same database made arrive too (at the
latest with the next keep-alive).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StringConstraints
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..errors import InputError
from ..workflows import (
    HISTORY_MEDIA_TYPE,
    NAME_PATTERN,
    AlertSpec,
    FeedSpec,
    RunResult,
    Schedule,
    Workflows,
    event_body,
)
from ..workflows import Query as WorkflowQuery
from ._errors import NodeHTTPError, errors
from ._routes import Svc, Writer
from ._schemas import MODEL_REF
from ._service import Service
from ._strict import StrictRoute

__all__ = ["router"]

router = APIRouter(prefix="/v1", route_class=StrictRoute)
NAME = NAME_PATTERN
Name = Annotated[str, Path(pattern=NAME)]
# A comment line this often keeps proxies and clients from closing an idle stream.
KEEPALIVE_SECONDS = 15.0
# Stored runs read per step of a replay: a long history streams in pieces.
REPLAY_BATCH = 100
_EVENTS = "text/event-stream"
# Intermediaries must neither buffer nor cache an event stream (as the chat routes).
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_Text = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeedBody(_Strict):
    kind: Literal["http", "file"]
    source: str = Field(min_length=1, max_length=2048, description="URL or path.")
    format: Literal["json", "csv", "jsonl"] = "json"
    signature: Literal["ed25519", "ecdsa-p256", "note"] | None = None
    key: str | None = Field(default=None, max_length=4096, description="The signer's key.")


class QueryBody(_Strict):
    input: _Text
    columns: list[_Text] = Field(min_length=1, max_length=256)
    window: StrictInt = Field(ge=1, le=10_000)
    normalise: Literal["none", "zscore", "minmax"] = "none"


class ScheduleBody(_Strict):
    every: StrictInt | StrictFloat | None = Field(default=None, description="Seconds.")
    cron: str | None = Field(default=None, max_length=128, description="Five fields, UTC.")
    until: str | None = Field(default=None, max_length=40, description="RFC 3339.")


class AlertBody(_Strict):
    expr: str = Field(min_length=1, max_length=500, examples=["output.prob > 0.8"])
    webhook: str | None = Field(default=None, max_length=2048)


class WorkflowBody(_Strict):
    name: str = Field(pattern=NAME)
    model: str = Field(pattern=MODEL_REF, description="sha256:DIGEST or NAME[:VERSION].")
    feed: FeedBody
    query: QueryBody
    schedule: ScheduleBody
    alerts: list[AlertBody] = Field(default_factory=list, max_length=16)


class WorkflowShown(_Strict):
    name: str
    state: str
    digest: str
    definition: dict[str, Any]
    created: float
    runs: int
    last_status: str | None
    next_run: str | None


class WorkflowList(_Strict):
    workflows: list[WorkflowShown]


class RunEvent(_Strict):
    type: str
    timestamp: str
    data: dict[str, Any]


def _known(wf: Workflows, name: str) -> None:
    if wf.store.get(name) is None:
        raise NodeHTTPError(404, f"no workflow {name!r} on this node")


def _create(wf: Workflows, body: WorkflowBody) -> dict[str, Any]:
    # The library's own parsers check the parts again, with its messages (400).
    feed = FeedSpec.from_json(body.feed.model_dump(exclude_none=True))
    query = WorkflowQuery.from_json(body.query.model_dump())
    schedule = Schedule.from_json(body.schedule.model_dump(exclude_none=True))
    alerts = tuple(AlertSpec(a.expr, a.webhook) for a in body.alerts)
    wf.create(body.name, body.model, feed, query, schedule, alerts)
    return wf.info(body.name).to_json()


@router.post(
    "/workflows",
    status_code=201,
    response_model=WorkflowShown,
    responses=errors(400, 401, 404, 409, 413, 422, 429, 504),
    summary="Define and schedule a workflow (needs a token; feeds and webhooks only to "
    "the node's allowed hosts; webhooks are signed with the identity's webhook_key)",
)
async def create_workflow(body: WorkflowBody, svc: Svc, _: Writer) -> Response:
    wf = svc.workflows
    svc.check_model(body.model)
    if wf.store.get(body.name) is not None:
        raise NodeHTTPError(409, f"workflow {body.name!r} exists; delete it first")
    info = await svc.in_pool(_create, wf, body)
    return JSONResponse(info, 201, headers={"Location": f"/v1/workflows/{body.name}"})


@router.get("/workflows", response_model=WorkflowList, responses=errors(429),
            summary="Every workflow of this node, by name")  # fmt: skip
async def list_workflows(svc: Svc) -> dict[str, Any]:
    infos = await svc.in_pool(svc.workflows.list)
    return {"workflows": [i.to_json() for i in infos]}


@router.get("/workflows/{name}", response_model=WorkflowShown, responses=errors(404, 422, 429))
async def show_workflow(svc: Svc, name: Name) -> dict[str, Any]:
    _known(svc.workflows, name)
    info = await svc.in_pool(svc.workflows.info, name)
    return info.to_json()  # type: ignore[no-any-return]


async def _change(svc: Service, name: str, change: Callable[[str], None]) -> dict[str, Any]:
    _known(svc.workflows, name)
    await svc.in_pool(change, name)
    info = await svc.in_pool(svc.workflows.info, name)
    return info.to_json()  # type: ignore[no-any-return]


@router.post("/workflows/{name}/pause", response_model=WorkflowShown,
             responses=errors(401, 404, 422, 429), summary="Stop running on schedule")  # fmt: skip
async def pause_workflow(svc: Svc, _: Writer, name: Name) -> dict[str, Any]:
    return await _change(svc, name, svc.workflows.pause)


@router.post("/workflows/{name}/resume", response_model=WorkflowShown,
             responses=errors(401, 404, 422, 429), summary="Run on schedule again")  # fmt: skip
async def resume_workflow(svc: Svc, _: Writer, name: Name) -> dict[str, Any]:
    return await _change(svc, name, svc.workflows.resume)


@router.post(
    "/workflows/{name}/run",
    response_model=RunEvent,
    responses=errors(401, 404, 409, 422, 429, 504),
    summary="Run now, off schedule, on the same chain: the run's event body",
)
async def run_workflow(svc: Svc, _: Writer, name: Name) -> dict[str, Any]:
    _known(svc.workflows, name)
    result: RunResult | None = await svc.in_pool(svc.workflows.run_now, name)
    if result is None:
        raise NodeHTTPError(409, f"workflow {name!r} is paused or a run of it is going")
    return event_body(name, result)


@router.delete("/workflows/{name}", status_code=204, response_class=Response,
               responses=errors(401, 404, 422, 429),
               summary="Delete a workflow with its schedule and stored runs")  # fmt: skip
async def delete_workflow(svc: Svc, _: Writer, name: Name) -> Response:
    _known(svc.workflows, name)
    await svc.in_pool(svc.workflows.delete, name)
    return Response(status_code=204)


def _history_bytes(wf: Workflows, name: str) -> bytes:
    return json.dumps(wf.history(name).to_json(), separators=(",", ":")).encode()


@router.get(
    "/workflows/{name}/history",
    response_class=Response,
    responses={200: {"content": {HISTORY_MEDIA_TYPE: {}}}, **errors(404, 422, 429, 504)},
    summary="The history file: the definition and every run's signed entry",
)
async def workflow_history(svc: Svc, name: Name) -> Response:
    _known(svc.workflows, name)
    data = await svc.in_pool(_history_bytes, svc.workflows, name)
    return Response(data, media_type=HISTORY_MEDIA_TYPE)


@router.get(
    "/workflows/{name}/events",
    response_class=Response,
    responses={200: {"content": {_EVENTS: {}}}, **errors(404, 422, 429)},
    summary="Server-sent events: each run as event workflow.run, id RUN, data its event "
    "body; the runs after Last-Event-ID (or ?after=) first",
)
async def workflow_events(
    svc: Svc,
    name: Name,
    after: Annotated[int, Query(ge=0, le=10**12, description="Replay the runs after this")] = 0,
    last_event_id: Annotated[
        str | None, Header(alias="last-event-id", pattern=r"^[0-9]{1,12}$")
    ] = None,
) -> Response:
    wf = svc.workflows
    _known(wf, name)
    if svc.event_streams >= svc.config.max_event_streams:
        raise NodeHTTPError(
            429, f"this node has {svc.event_streams} event streams open; retry later",
            headers={"Retry-After": "5"},
        )  # fmt: skip
    # An EventSource reconnecting sends the last id it saw, the newer word.
    stream = _Stream(svc, name, int(last_event_id) if last_event_id is not None else after)
    return StreamingResponse(stream.events(), media_type=_EVENTS, headers=_SSE_HEADERS,
                             background=BackgroundTask(stream.close))  # fmt: skip


def sse(body: dict[str, Any]) -> bytes:
    """One run as a server-sent event (its JSON on one ``data`` line)."""
    data = json.dumps(body, separators=(",", ":"))
    return f"event: {body['type']}\nid: {body['data']['run']}\ndata: {data}\n\n".encode()


class _Stream:
    """One subscriber: holds a slot of ``max_event_streams`` and a subscription, both
    given back once by :meth:`close` (from the stream's end or the response's
    background task, whichever comes first: a disconnect may skip the first)."""

    def __init__(self, svc: Service, name: str, after: int) -> None:
        self.svc, self.name, self.after = svc, name, after
        self.wake = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_run(workflow: str, _result: RunResult) -> None:
            if workflow == name and not loop.is_closed():
                loop.call_soon_threadsafe(self.wake.set)

        svc.event_streams += 1
        self._unsubscribe: Callable[[], None] | None = svc.workflows.subscribe(on_run)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
            self.svc.event_streams -= 1

    async def events(self) -> AsyncIterator[bytes]:
        try:
            yield b": workflow " + self.name.encode() + b"\n\n"
            while True:
                self.wake.clear()  # before reading: a run stored meanwhile wakes us again
                try:
                    bodies = await self.svc.in_pool(self.svc.workflows.events, self.name,
                                                    self.after, REPLAY_BATCH)  # fmt: skip
                except (InputError, NodeHTTPError, RuntimeError):
                    return  # the workflow was deleted, or the node is stopping
                for body in bodies:
                    self.after = body["data"]["run"]
                    yield sse(body)
                if len(bodies) == REPLAY_BATCH:
                    continue
                try:
                    await asyncio.wait_for(self.wake.wait(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keep-alive\n\n"
        finally:
            self.close()
