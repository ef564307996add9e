"""The explorer's log and workflow pages: checkpoints, inclusion paths, consistency, runs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..errors import Error
from ..log import Log
from ..workflows import NAME_PATTERN, Workflows
from ._errors import NodeHTTPError
from ._explorer_proofs import consistency_view
from ._explorer_render import PageError, State, page
from ._explorer_views import entry_receipt, path_steps, receipt_rows
from ._service import Service

__all__ = ["router"]

router = APIRouter(prefix="/explore", include_in_schema=False)
# A page lists at most this many checkpoint sizes and workflow runs (the newest).
_SHOWN = 100
# A chain this long is checked by `inferproof workflow verify`, not on a page load.
_MAX_CHECKED_RUNS = 200
# The chart plots at most this many checkpoints (the newest): its data block stays small.
_CHARTED = 2000
_DIGITS = 18  # an index or a tree size: the log's trees stay far below 10**18
_INDEX = re.compile(rf"[0-9]{{1,{_DIGITS}}}")
_NAME = re.compile(NAME_PATTERN.removeprefix("^").removesuffix("$"))


def _svc(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def _log(svc: Service) -> Log:
    if not svc.node.log_enabled:
        raise PageError(404, "this node keeps no transparency log")
    return svc.node.log


@router.get("/log")
async def log_page(request: Request) -> Response:
    log = _log(_svc(request))
    cp = log.checkpoint()
    sizes = log.store.checkpoint_sizes()
    cosigned = [(c.witness.name, c.witness.key_id, c.timestamp) for c in cp.cosignatures]
    return page(request, "log.html", title="Log", origin=cp.origin, size=cp.size,
                root=cp.root_hash.hex(), note=cp.encode().decode(), cosigned=cosigned,
                sizes=list(reversed(sizes[-_SHOWN:])), checkpoints=len(sizes),
                chart=_size_chart(sizes), charted=min(len(sizes), _CHARTED),
                recent=list(range(cp.size - 1, max(-1, cp.size - 11), -1)))  # fmt: skip


def _size_chart(sizes: list[int]) -> dict[str, Any]:
    """Tree size against checkpoint number (static/charts.js): the store keeps each
    checkpoint's size but no time, so the x axis counts checkpoints (0 = the empty tree)."""
    first = max(0, len(sizes) - _CHARTED)
    return {"x": list(range(first, len(sizes))), "time": False,
            "xlabel": "checkpoint number", "ylabel": "tree size",
            "series": [{"label": "tree size", "values": sizes[first:]}], "marks": []}  # fmt: skip


@router.get("/log/consistency")
async def consistency_page(
    request: Request, old: str | None = None, new: str | None = None
) -> Response:
    svc = _svc(request)
    log = _log(svc)
    current = log.checkpoint().size
    old_size = _size("old", old)
    new_size = current if new is None or not new.strip() else _size("new", new)
    if new_size > current:
        raise PageError(400, f"the new size {new_size} is past the log's current size {current}")
    if old_size == 0:
        raise PageError(400, "the old size must be at least 1: every tree extends the empty "
                        "tree, so there is nothing to prove")  # fmt: skip
    if old_size > new_size:
        raise PageError(400, f"the old size {old_size} is larger than the new size {new_size}")
    view = await svc.in_pool(consistency_view, log, old_size, new_size)
    return page(request, "consistency.html", title=f"Consistency {old_size} to {new_size}",
                proof=view, current=current)  # fmt: skip


def _size(name: str, text: str | None) -> int:
    """A tree size from the query, or a 400 page saying what is wrong with it."""
    text = (text or "").strip()
    if not text:
        raise PageError(400, f"choose the {name} size (a number of entries)")
    if len(text) > _DIGITS:
        raise PageError(400, f"the {name} size is {len(text)} characters, over the cap of "
                        f"{_DIGITS} digits")  # fmt: skip
    if not _INDEX.fullmatch(text):
        raise PageError(400, f"the {name} size must be a decimal number, not {text!r}")
    return int(text)


@router.get("/log/entries/{index}")
async def entry_page(request: Request, index: str) -> Response:
    if not _INDEX.fullmatch(index):
        raise PageError(400, "an entry index is a decimal number")
    svc = _svc(request)
    log = _log(svc)
    at, size = int(index), log.checkpoint().size
    if at >= size:
        raise PageError(404, f"no entry {at}: the log's checkpoint has {size} entries")
    leaf, steps, root, ok = await svc.in_pool(path_steps, log, at, size)
    receipt = entry_receipt(log.entry(at))
    rows = receipt_rows(receipt, None) if receipt is not None else None
    return page(request, "entry.html", title=f"Log entry {at}", index=at, size=size, leaf=leaf,
                steps=steps, root=root, ok=ok, rows=rows)  # fmt: skip


# -- workflows ---------------------------------------------------------------------------
def _workflows(svc: Service) -> Workflows:
    try:
        return svc.workflows
    except NodeHTTPError:
        raise PageError(404, "this node's workflow service is not open") from None


@router.get("/workflows")
async def workflows_page(request: Request) -> Response:
    svc = _svc(request)
    infos = await svc.in_pool(_workflows(svc).list)
    return page(request, "workflows.html", title="Workflows", workflows=infos)


@router.get("/workflows/{name}")
async def workflow_page(request: Request, name: str) -> Response:
    if not _NAME.fullmatch(name):
        raise PageError(400, "not a workflow name")
    svc = _svc(request)
    wf = _workflows(svc)
    if wf.store.get(name) is None:
        raise PageError(404, f"no workflow {name!r} on this node")
    view = await svc.in_pool(_workflow_view, request.app.state.explorer, wf, name)
    return page(request, "workflow.html", title=f"Workflow {name}", name=name, **view)


def _workflow_view(state: State, wf: Workflows, name: str) -> dict[str, Any]:
    info = wf.info(name)
    after = max(0, info.runs - _SHOWN)
    runs = [body["data"] for body in wf.events(name, after, _SHOWN)]
    runs.reverse()
    # A chain is checked again only when it has grown (or its definition changed).
    key = (name, info.definition.digest, info.runs)
    if key not in state.chains:
        state.remember(state.chains, key, _chain(wf, name, info.runs))
    return {"info": info, "runs": runs, "chain": state.chains[key], "chart": _chart(runs)}


def _chain(wf: Workflows, name: str, count: int) -> tuple[str, str]:
    """The chain's status as the node's verifier finds it: (status, detail)."""
    if count > _MAX_CHECKED_RUNS:
        return ("not_checked", f"{count} runs: check them with `inferproof workflow verify` "
                f"(a page checks up to {_MAX_CHECKED_RUNS})")  # fmt: skip
    try:
        report = wf.verify(name)
    except Error as exc:
        return ("failed", str(exc))
    if report.verified:
        return ("passed", "every run and link checked")
    bad = report.first_failure
    return ("failed", f"{bad.name}: {bad.detail}" if bad else "the policy is not satisfied")


def _chart(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first output's first value over time, alerts marked (static/charts.js)."""
    x: list[float] = []
    values: list[float | None] = []
    marks: list[int] = []
    label = None
    for run in reversed(runs):
        outputs = run.get("outputs") or {}
        if not outputs:
            continue
        label = label or next(iter(outputs))
        first = _first_number(outputs.get(label))
        try:
            when = datetime.fromisoformat(str(run.get("started"))).timestamp()
        except ValueError:
            continue
        if run.get("alerts"):
            marks.append(len(x))
        x.append(when)
        values.append(first)
    if not x or label is None:
        return None
    return {"x": x, "series": [{"label": label, "values": values}], "marks": marks}


def _first_number(value: Any) -> float | None:
    while isinstance(value, list) and value:
        value = value[0]
    return float(value) if isinstance(value, int | float) else None
