"""``GET /v1/bundles``: a token holder's own bundles, newest first, a page at a time.

A token holder lists only the bundles issued under its own token (the owner the
node records with each bundle: the token's hash, as jobs record theirs). A bundle
id is a capability (docs/security.md, review 11.6): handing every caller every
other caller's ids would give each token holder the others' public inputs and
outputs, which the threat model does not trust them with. Bundles whose owner was
never recorded (issued before the node recorded owners) are listed to nobody; they
stay readable by id.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from ._bundles import BundleQuery
from ._errors import NodeHTTPError, errors
from ._routes import Svc, Writer
from ._schemas import MAX_NONCE, MODEL_REF
from ._strict import StrictRoute

__all__ = ["MAX_PAGE", "router"]

router = APIRouter(prefix="/v1", route_class=StrictRoute)
# A page is at most this many summaries (each about 300 bytes of JSON).
MAX_PAGE = 200
DEFAULT_PAGE = 50
# Unix seconds, or an ISO 8601 date or date-time (a time without an offset is UTC).
_UNIX = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
_PRIVATE = {"Cache-Control": "private, no-store"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BundleModel(_Strict):
    digest: str | None
    name: str | None
    version: str | None


class BundleItem(_Strict):
    id: str = Field(description="Read the bundle with GET /v1/bundles/{id}.")
    receipt_digest: str = Field(description="sha256 of the envelope: its log entry's digest.")
    log_index: int | None
    created: float = Field(description="When the node stored it (Unix seconds).")
    model: BundleModel
    nonce: str | None


class BundleList(_Strict):
    bundles: list[BundleItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


def parse_time(text: str, what: str) -> float:
    """Unix seconds from ``text``: Unix seconds, or an ISO 8601 date or date-time."""
    if _UNIX.fullmatch(text):
        return float(text)
    try:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp()
    except (ValueError, OverflowError, OSError):
        raise NodeHTTPError(
            400, f"{what} must be Unix seconds or an ISO 8601 date or date-time"
        ) from None
    if not math.isfinite(seconds):
        raise NodeHTTPError(400, f"{what} is out of range")
    return seconds


Time = Annotated[
    str | None,
    Query(max_length=40, description="Unix seconds, or ISO 8601 (`2026-01-31`, "
          "`2026-01-31T12:00:00Z`); a time without an offset is UTC."),
]  # fmt: skip


@router.get(
    "/bundles",
    response_model=BundleList,
    responses=errors(400, 401, 422, 429),
    summary="The caller's own bundles, newest first (needs a token)",
)
async def list_bundles(
    svc: Svc,
    owner: Writer,
    model: Annotated[
        str | None,
        Query(pattern=MODEL_REF, description="sha256:DIGEST, NAME (any version) or NAME:VERSION"),
    ] = None,
    since: Time = None,
    until: Time = None,
    nonce: Annotated[str | None, Query(min_length=1, max_length=MAX_NONCE)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[
        str | None, Query(pattern=r"^[1-9][0-9]{0,17}$", description="From `next_cursor`.")
    ] = None,
) -> JSONResponse:
    """Summaries of the bundles issued under the caller's token (``since`` inclusive,
    ``until`` exclusive, by when the node stored them); read one by its id."""
    query = BundleQuery(
        owner=owner,
        model=model,
        nonce=nonce,
        since=parse_time(since, "since") if since is not None else None,
        until=parse_time(until, "until") if until is not None else None,
        limit=limit,
        before=int(cursor) if cursor is not None else None,
    )
    # A few indexed SQLite reads: cheaper on the event loop than a hop to a thread.
    page, after = svc.bundles.find(query)
    body: dict[str, Any] = {
        "bundles": [item.to_json() for item in page],
        "next_cursor": str(after) if after is not None else None,
    }
    return JSONResponse(body, headers=_PRIVATE)
