"""``/explore``: the node's read-only web explorer, rendered on the server (docs/explorer.md).

Public data only, as the node's other reads: the node's keys, its models, the log,
workflows, and a receipt by its bundle id (the id is the capability, as for
``GET /v1/bundles/{id}``). A receipt digest is public (it is a log entry's), so a
digest search finds the log entry, never the bundle. Path and query parameters are
plain strings checked here, so a bad one is an HTML 4xx page, not the API's JSON.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import RedirectResponse, Response

from .._keys import key_id
from .._version import __version__
from ..errors import Error
from ..hub import ModelRecord
from ..proofs import is_chat_receipt, is_embedding_receipt
from ..receipts import Bundle, Receipt
from ..verify import Material, VerificationReport
from . import _explorer_log
from ._explorer_render import FOLDER, HEADERS, PageError, State, error_page, page, query
from ._explorer_views import (
    MAX_MATCHES,
    SCAN_ENTRIES,
    find_in_log,
    log_row,
    receipt_digest,
    search_log,
)
from ._explorer_views import receipt_rows as rows_of
from ._service import Service

__all__ = ["mount"]

router = APIRouter(prefix="/explore", include_in_schema=False)
# The only files /explore/static serves: names fixed here, never a path from a request.
_STATIC = {
    "explore.css": "text/css; charset=utf-8",
    "explore.js": "text/javascript; charset=utf-8",
    "verify.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "uplot.css": "text/css; charset=utf-8",
    # uPlot's MIT licence asks for its notice beside every copy; the bundle's banner names it.
    "uplot-LICENSE.txt": "text/plain; charset=utf-8",
}
_BUNDLE_ID = re.compile(r"[0-9a-f]{24}")
_HEX = re.compile(r"(sha256:)?[0-9a-f]{64}")
# A receipt's times are RFC 3339 UTC ("2026-12-02T17:52:20.772379Z"): a search gives a
# prefix of one, from the year on, to the whole time.
_TIME_PREFIX = re.compile(r"\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d{0,9})?Z?)?)?)?)?)?")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def mount(app: FastAPI) -> None:
    """Serve the explorer under ``/explore`` in ``app`` (a node's app: its service is
    ``app.state.service``), with HTML error pages for its own errors."""
    app.state.explorer = State()
    app.add_exception_handler(PageError, error_page)
    app.include_router(router)
    app.include_router(_explorer_log.router)
    app.include_router(_fallback)


def _svc(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


# -- static files ------------------------------------------------------------------------
@router.get("/static/{name}")
async def static(name: str) -> Response:
    kind = _STATIC.get(name)
    path = FOLDER / "static" / name if kind is not None else None
    if path is None or not path.is_file():
        raise PageError(404, "no such file")
    return Response(path.read_bytes(), media_type=kind,
                    headers={**HEADERS, "Cache-Control": "no-cache"})  # fmt: skip


# -- the node ----------------------------------------------------------------------------
@router.get("")
async def node_page(request: Request) -> Response:
    svc = _svc(request)
    node = svc.node
    log: dict[str, Any] | None = None
    if node.log_enabled:
        cp = node.log.checkpoint()
        cosigned = [(c.witness.name, c.timestamp) for c in cp.cosignatures]
        log = {"origin": node.log.origin, "vkey": str(node.log.verifier_key), "size": cp.size,
               "cosignatures": cosigned}  # fmt: skip
    trust = node.trust_root()
    ident = node.identity
    return page(
        request,
        "node.html",
        title="Node",
        node_id=node.node_id,
        key_id=key_id(node.public_key),
        node_key=base64.b64encode(node.public_key).decode(),
        webhook_key=svc.webhook_key,
        environment=node.environment(),
        attestation=ident.doc if ident is not None else None,
        log=log,
        witnesses=[w.name for w in trust.witness_keys],
        uptime=_duration(time.time() - request.app.state.explorer.started),
        version=__version__,
        models=len(node.hub.list()),
    )


def _duration(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    return f"{days} d {hours} h {s // 60} min" if days else f"{hours} h {s // 60} min {s % 60} s"


# -- models ------------------------------------------------------------------------------
@router.get("/models")
async def models_page(request: Request, q: str | None = None) -> Response:
    text = query(q).lower()
    records = _svc(request).node.hub.list()
    found = [r for r in records if not text or text in r.name.lower() or text in r.digest]
    names = sorted({r.name for r in found})
    latest = [max((r for r in found if r.name == n), key=lambda r: r.created_at) for n in names]
    versions = {n: sum(r.name == n for r in found) for n in names}
    return page(request, "models.html", title="Models", q=text, models=latest,
                total=len(records), versions=versions)  # fmt: skip


@router.get("/models/{name}")
async def model_page(request: Request, name: str) -> Response:
    if not _MODEL_NAME.fullmatch(name):
        raise PageError(400, "a model name is letters, digits, '.', '_' and '-' (up to 128)")
    svc = _svc(request)
    versions = sorted((r for r in svc.node.hub.list() if r.name == name),
                      key=lambda r: r.created_at, reverse=True)  # fmt: skip
    if not versions:
        raise PageError(404, f"no model named {name!r} on this node")
    setups = {r.digest: _setups(svc, r) for r in versions}
    return page(request, "model.html", title=f"Model {name}", name=name, versions=versions,
                setups=setups)  # fmt: skip


def _setups(svc: Service, record: ModelRecord) -> list[dict[str, Any]]:
    if record.format != "onnx":
        return []
    try:
        found = svc.node.zk_setups(record.digest)
    except Error:
        return []
    return [{"digest": s.digest(), "logrows": s.logrows, "srs": s.srs_kind,
             "input": s.input_visibility, "params": s.param_visibility} for s in found]  # fmt: skip


# -- receipts ----------------------------------------------------------------------------
@router.get("/receipts")
async def receipts_page(request: Request, q: str | None = None) -> Response:
    text = query(q)
    svc = _svc(request)
    results: list[tuple[str, str, str]] = []  # (what, link, text)
    if text:
        results = await svc.in_pool(_search, svc, text)
    return page(request, "receipts.html", title="Receipts", q=text, results=results,
                scanned=SCAN_ENTRIES, matches=MAX_MATCHES, searched=bool(text))  # fmt: skip


def _search(svc: Service, text: str) -> list[tuple[str, str, str]]:
    """What ``text`` names: a bundle (by id), a log entry (by receipt digest), models
    and their logged receipts, receipts by nonce (``nonce:VALUE``) or by time (an ISO
    8601 prefix such as ``2026-12-02T17``, or ``time:PREFIX``)."""
    out: list[tuple[str, str, str]] = []
    if _BUNDLE_ID.fullmatch(text) and svc.bundles.by_id(text) is not None:
        out.append(("bundle", f"/explore/receipts/{text}", f"bundle {text}"))
    logged = svc.node.log_enabled
    if _HEX.fullmatch(text) and logged:
        digest = text if text.startswith("sha256:") else "sha256:" + text
        index = find_in_log(svc.node.log, digest)
        if index is not None:
            out.append(("log entry", f"/explore/log/entries/{index}",
                        f"receipt {digest}: log entry {index}"))  # fmt: skip
    lowered = text.lower()
    models = [
        r for r in svc.node.hub.list() if lowered in (r.digest, r.name.lower(), r.ref.lower())
    ]
    for r in models:
        out.append(("model", f"/explore/models/{r.name}", f"model {r.ref} ({r.digest})"))
    match = _receipt_match(text, {r.digest for r in models})
    if match is not None and logged:
        for index, receipt in search_log(svc.node.log, match):
            out.append(("log entry", f"/explore/log/entries/{index}", _entry_text(index, receipt)))
    return out


def _receipt_match(text: str, digests: set[str]) -> Callable[[Receipt], bool] | None:
    """The test a logged receipt must pass for ``text``, or None when ``text`` names
    no receipts (a bundle id or a receipt digest is found above)."""
    if text.startswith("nonce:"):
        nonce = text.removeprefix("nonce:")
        return lambda r: r.nonce == nonce
    prefix = text.removeprefix("time:")
    if _TIME_PREFIX.fullmatch(prefix):
        return lambda r: r.started.startswith(prefix)
    if digests:
        return lambda r: r.model_digest in digests
    return None


def _entry_text(index: int, receipt: Receipt) -> str:
    name = receipt.model.get("name") or receipt.model_digest
    nonce = f", nonce {receipt.nonce}" if receipt.nonce is not None else ""
    return f"log entry {index}: {name}, {receipt.started}{nonce}"


@router.get("/receipts/{bundle_id}")
async def receipt_page(request: Request, bundle_id: str) -> Response:
    if not _BUNDLE_ID.fullmatch(bundle_id):
        raise PageError(400, "a bundle id is 24 lowercase hex digits")
    svc = _svc(request)
    data = svc.bundles.by_id(bundle_id)
    if data is None:
        raise PageError(404, f"no bundle {bundle_id} on this node")
    try:
        bundle = Bundle.loads(data)
    except Error as exc:
        raise PageError(500, f"the stored bundle does not parse: {exc}") from None
    report = await svc.in_pool(_report, request.app.state.explorer, svc, bundle_id, bundle)
    index, log_text = log_row(bundle)
    return page(request, "receipt.html", title="Receipt", bundle_id=bundle_id,
                digest=receipt_digest(bundle), rows=rows_of(bundle.receipt, bundle),
                log_index=index, log_text=log_text, report=report)  # fmt: skip


def _report(state: State, svc: Service, bundle_id: str, bundle: Bundle) -> VerificationReport:
    """The node's own verifier over the bundle; an ONNX receipt is re-run from the hub's
    copy of its model (an LLM's would take minutes: those are left to the CLI)."""
    if bundle_id in state.reports:
        known: VerificationReport = state.reports[bundle_id]
        return known
    llm = is_chat_receipt(bundle.receipt) or is_embedding_receipt(bundle.receipt)
    model = None if llm else svc.node.model_bytes(bundle.receipt.model_digest)
    report = svc.node.verifier().check(bundle, Material(model_bytes=model))
    state.remember(state.reports, bundle_id, report)
    return report


# -- the in-browser verifier -------------------------------------------------------------
@router.get("/verify")
async def verify_page(request: Request) -> Response:
    node = _svc(request).node
    vkey = str(node.log.verifier_key) if node.log_enabled else ""
    return page(request, "verify.html", title="Verify in your browser",
                node_key=base64.b64encode(node.public_key).decode(), log_vkey=vkey)  # fmt: skip


# -- anything else under /explore --------------------------------------------------------
_fallback = APIRouter(prefix="/explore", include_in_schema=False)


@_fallback.get("/{rest:path}")
async def not_found(rest: str) -> Response:
    if rest == "":  # /explore/ is the node page
        return RedirectResponse("/explore", 308, headers=HEADERS)
    raise PageError(404, "no such page in the explorer")
