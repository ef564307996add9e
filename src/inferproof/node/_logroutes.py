"""Routes: the transparency log (tlog-tiles, proofs), node identity, health, metrics."""

from __future__ import annotations

import base64
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from .._version import __version__
from ..engine import MODES
from ..log import (
    MAX_TILE_LEVEL,
    TILE_WIDTH,
    Log,
    bundle_path,
    encode_bundle,
    tile_levels,
    tile_path,
    tile_widths,
)
from ._errors import NodeHTTPError, errors
from ._routes import Svc
from ._schemas import ConsistencyProof, Health, Identity, InclusionProof
from ._service import Service

# Handlers here are async on purpose: each is a few small SQLite reads, cheaper on the
# event loop than a hop to a worker thread (and the GIL hand-offs that come with it).
router = APIRouter()
_TEXT = "text/plain; charset=utf-8"
_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
# c2sp.org/tlog-tiles: the tile and entry bundle endpoints are "immutable, so [their]
# caching headers SHOULD be long-lived"; a partial tile at its own path (.p/<W>) never
# changes either (the next size is another path). One year, immutable (RFC 8246).
_FOREVER = {"Cache-Control": "public, max-age=31536000, immutable"}
# tlog-tiles: the checkpoint "is mutable, so its headers SHOULD prevent caching beyond
# a few seconds": every use revalidates.
_NO_CACHE = {"Cache-Control": "no-cache"}
# A tile that does not exist yet will exist after the next appends: a cache must not
# keep the 404 (RFC 9111 lets caches keep a 404 by heuristics).
_MISSING = {"Cache-Control": "no-store"}
# tlog-tiles "<N>" path: x-prefixed groups of three digits, then the last three, then
# an optional ".p/<W>" for a partial tile.
_INDEX = re.compile(r"^((?:x[0-9]{3}/)*)([0-9]{3})(?:\.p/([0-9]{1,3}))?$")
# tlog-tiles "<L>": a decimal 0..63 with no leading zeroes, ASCII digits only (str.isdigit
# also accepts digits that int() rejects, such as "²").
_LEVEL = re.compile(r"0|[1-9][0-9]?")


def _log(svc: Svc) -> Log:
    if not svc.node.log_enabled:
        raise NodeHTTPError(404, "this node keeps no transparency log")
    return svc.node.log


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


def _parse_index(text: str) -> tuple[int, int | None]:
    m = _INDEX.match(text)
    if m is None:
        raise _missing("not a tlog-tiles path")
    digits = m.group(1).replace("x", "").replace("/", "") + m.group(2)
    width = int(m.group(3)) if m.group(3) else None
    if width is not None and not 1 <= width < TILE_WIDTH:
        raise _missing("partial tile width must be 1..255")
    return int(digits), width


def _missing(message: str) -> NodeHTTPError:
    return NodeHTTPError(404, message, headers=_MISSING)


def _tile_width(log: Log, level: int, index: int, width: int | None) -> int:
    """The width to serve, or 404 when the tree has no such tile (yet).

    Every partial width of a tile is served, also once the tile is full: the partial
    tiles of every checkpointed size stay available (tlog-tiles "Partial Tiles"), so a
    client holding an older checkpoint reads the tree at that size."""
    full, partial = tile_widths(log.size, level)
    if index < full:
        return width or TILE_WIDTH
    if index == full and width is not None and width <= partial:
        return width
    raise _missing("no such tile in the current tree")


@router.get("/v1/log/checkpoint", response_class=Response,
            responses={200: {"content": {_TEXT: {}}}, **errors(404, 429)})  # fmt: skip
async def checkpoint(svc: Svc) -> Response:
    """The latest signed checkpoint (c2sp.org/tlog-checkpoint signed note)."""
    return Response(_log(svc).checkpoint().encode(), media_type=_TEXT, headers=_NO_CACHE)


@router.get("/v1/log/tile/entries/{path:path}", response_class=Response,
            responses={200: {"content": _BINARY}, **errors(404, 429)})  # fmt: skip
async def entry_bundle(svc: Svc, path: str) -> Response:
    """An entry bundle (tlog-tiles "Log entries"): each entry as uint16 length || bytes."""
    log = _log(svc)
    index, width = _parse_index(path)
    if bundle_path(index, width or TILE_WIDTH) != f"tile/entries/{path}":
        raise _missing("not a canonical tlog-tiles path")
    count = _tile_width(log, 0, index, width)
    entries = log.store.read_entries(index * TILE_WIDTH, index * TILE_WIDTH + count)
    data = encode_bundle(entries)
    return Response(data, media_type="application/octet-stream", headers=_FOREVER)


@router.get("/v1/log/tile/{level}/{path:path}", response_class=Response,
            responses={200: {"content": _BINARY}, **errors(404, 429)})  # fmt: skip
async def tile(svc: Svc, level: str, path: str) -> Response:
    """A Merkle tree tile (tlog-tiles "Merkle Tree"): up to 256 hashes of one level."""
    log = _log(svc)
    if not _LEVEL.fullmatch(level) or int(level) > MAX_TILE_LEVEL:
        raise _missing("tile level must be a decimal 0..63")
    lv = int(level)
    index, width = _parse_index(path)
    if tile_path(lv, index, width or TILE_WIDTH) != f"tile/{level}/{path}":
        raise _missing("not a canonical tlog-tiles path")
    if lv >= tile_levels(log.size):
        raise _missing("no such tile in the current tree")
    count = _tile_width(log, lv, index, width)
    row = log.store.read_tile(lv, index)
    if row is None or row[0] < count:
        raise _missing("no such tile in the current tree")
    data = row[1][: count * 32]
    return Response(data, media_type="application/octet-stream", headers=_FOREVER)


@router.get(
    "/v1/log/inclusion", response_model=InclusionProof, responses=errors(400, 404, 422, 429)
)
async def inclusion(
    svc: Svc,
    index: Annotated[int, Query(ge=0)],
    size: Annotated[int | None, Query(ge=1, description="Tree size (default: latest)")] = None,
) -> dict[str, Any]:
    """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size``."""
    log = _log(svc)
    size = log.size if size is None else size
    return {"index": index, "tree_size": size, "hashes": _b64(log.inclusion_proof(index, size))}


@router.get("/v1/log/consistency", response_model=ConsistencyProof,
            responses=errors(400, 404, 422, 429))  # fmt: skip
async def consistency(
    svc: Svc,
    old: Annotated[int, Query(ge=0)],
    new: Annotated[int | None, Query(ge=0, description="Tree size (default: latest)")] = None,
) -> dict[str, Any]:
    """RFC 9162 consistency proof between two tree sizes."""
    log = _log(svc)
    new = log.size if new is None else new
    return {"old_size": old, "new_size": new, "hashes": _b64(log.consistency_proof(old, new))}


@router.get(
    "/v1/identity",
    response_model=Identity,
    responses=errors(429),
    summary="The node's keys (receipts, log, webhooks), measurement and attestation",
)
async def identity(svc: Svc) -> dict[str, Any]:
    """Who signs this node's receipts, log and webhooks: keys (``webhook_key`` verifies
    the workflow alerts it POSTs), measurement, attestation if any."""
    node = svc.node
    log = None
    if node.log_enabled:
        log = {"origin": node.log.origin, "verifier_key": str(node.log.verifier_key),
               "size": node.log.size}  # fmt: skip
    ident = node.identity
    return {
        "node_id": node.node_id,
        "node_key": base64.b64encode(node.public_key).decode(),
        "log": log,
        "environment": node.environment(),
        "attestation": ident.doc if ident is not None else None,
        "version": __version__,
        "modes": list(MODES),
        "job_modes": sorted(svc.config.job_modes),
        "webhook_key": svc.webhook_key,
        "ohttp": _ohttp_info(svc),
    }


def _ohttp_info(svc: Service) -> dict[str, str]:
    _, keys, binding = svc.ohttp()
    b64 = base64.b64encode
    return {"keys": b64(keys).decode(), "binding": b64(binding).decode()}


@router.get("/healthz", response_model=Health, responses=errors(503))
async def healthz(svc: Svc) -> dict[str, Any]:
    """200 once the node is ready to serve (503 while starting or stopping)."""
    if not svc.ready:
        raise NodeHTTPError(503, "the node is not ready")
    size = svc.node.log.size if svc.node.log_enabled else None
    return {"status": "ok", "log_size": size}


@router.get("/metrics", response_class=Response, responses={200: {"content": {_TEXT: {}}}})
async def metrics(svc: Svc) -> Response:
    """Prometheus metrics: requests, latencies, log size, proving queue."""
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)
