"""The explorer's rendering: Jinja2 templates (autoescaped), security headers, errors.

Every page and every error page goes through :func:`page`, so each one carries the
same strict Content-Security-Policy and the same escaping: a value reaches HTML only
through a template, and Jinja escapes it there.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from starlette.responses import HTMLResponse, Response

__all__ = ["HEADERS", "MAX_QUERY", "PageError", "State", "page", "shown"]

FOLDER = Path(__file__).parent / "explorer"
# No inline script or style anywhere: scripts and styles come from /explore/static.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# A search box never needs more: a digest is 71 characters, a model reference 257.
MAX_QUERY = 300
# A value shown in a table cell is cut here (a hostile bundle may carry megabytes).
_MAX_SHOWN = 2000
# Results kept per cache of :class:`State`: a page load repeats no costly check.
_KEPT = 256

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(FOLDER / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


class State:
    """What the explorer keeps while the node serves: when it started, and the results
    of checks a page load would otherwise repeat (receipt reports, workflow chains)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.reports: dict[str, Any] = {}
        self.chains: dict[tuple[str, str, int], tuple[str, str]] = {}

    @staticmethod
    def remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
        """Keep ``value`` under ``key``, dropping the oldest entry past the cap."""
        if len(cache) >= _KEPT:
            cache.pop(next(iter(cache)))
        cache[key] = value


class PageError(Exception):
    """Raised by explorer routes: becomes an HTML error page with this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def shown(value: Any) -> str:
    """A value as one line of text for a table cell: strings as they are, anything
    else as compact JSON, cut at a length a page can hold."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + " …"


def utc(seconds: float) -> str:
    """Unix seconds as an ISO 8601 UTC time to the second."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_ENV.filters["shown"] = shown
_ENV.filters["utc"] = utc


def page(request: Request, template: str, http_status: int = 200, **context: Any) -> Response:
    """Render ``template`` with ``context`` as an HTML answer with the explorer's headers."""
    html = _ENV.get_template(template).render(path=request.url.path, **context)
    return HTMLResponse(html, http_status, headers={**HEADERS, "Cache-Control": "no-cache"})


def error_page(request: Request, exc: Exception) -> Response:
    """The HTML page of a :class:`PageError` (the app's handler for it)."""
    assert isinstance(exc, PageError)
    return page(request, "error.html", exc.status, title="Error", status=exc.status,
                message=exc.message)  # fmt: skip


def query(text: str | None) -> str:
    """A search query, stripped; a 400 page past :data:`MAX_QUERY` characters."""
    text = (text or "").strip()
    if len(text) > MAX_QUERY:
        raise PageError(400, f"the query is {len(text)} characters, over the cap of {MAX_QUERY}")
    return text
