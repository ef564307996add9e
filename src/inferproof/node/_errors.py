"""Every error the node answers is JSON ``{"error": {"code", "message"}}``.

Library errors are mapped here, once: :class:`InputError` is a ``400``, anything
unexpected a ``500`` whose message reveals nothing of the server's internals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ..errors import Error, InputError, StoreUnavailable
from ._schemas import ErrorResponse

log = logging.getLogger("inferproof.node")

_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "busy",
    503: "unavailable",
    504: "timeout",
}


class NodeHTTPError(Exception):
    """Raised by routes: becomes an error answer with this status and code."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.headers = headers


def unauthorized() -> NodeHTTPError:
    """The answer to a write without a valid token."""
    return NodeHTTPError(
        401, "this endpoint needs a bearer token (inferproof token create)",
        headers={"WWW-Authenticate": "Bearer"},
    )  # fmt: skip


def error_body(code: str, message: str) -> dict[str, Any]:
    # One line, bounded: messages may quote the caller's input.
    return {"error": {"code": code, "message": " ".join(message.split())[:1000]}}


def error_response(
    status: int, message: str, code: str | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    body = error_body(code or _CODES.get(status, "error"), message)
    return Response(
        json.dumps(body).encode(), status, headers=headers, media_type="application/json"
    )


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry documenting these error statuses on a route."""
    return {s: {"model": ErrorResponse, "description": _CODES.get(s, "error")} for s in statuses}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _database_down(exc: BaseException) -> bool:
    """Whether ``exc`` is a database driver's "cannot reach or write now" error:
    SQLAlchemy's OperationalError, psycopg's OperationalError (connection lost, server
    shutting down, read-only transaction), sqlite3's (locked, disk full)."""
    import sqlite3

    from ..stores import sqlite_outage  # the stores' own rule, so both answer alike

    if isinstance(exc, sqlite3.OperationalError):
        return sqlite_outage(exc)
    return isinstance(exc, _driver_errors()[1:])


def _driver_errors() -> tuple[type[Exception], ...]:
    """sqlite3's, SQLAlchemy's and psycopg's errors for "cannot reach or write now"."""
    import sqlite3

    import sqlalchemy.exc

    kinds: tuple[type[Exception], ...] = (sqlite3.OperationalError,
                                              sqlalchemy.exc.OperationalError)  # fmt: skip
    try:
        import psycopg
    except ImportError:  # the scale extra is not installed
        return kinds
    return (*kinds, psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction)


def install_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""

    @app.exception_handler(NodeHTTPError)
    async def _node(_: Request, exc: NodeHTTPError) -> Response:
        return error_response(exc.status, exc.message, exc.code, exc.headers)

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> Response:
        return error_response(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        return error_response(422, _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> Response:
        # FastAPI wraps a body-parsing failure in a generic 400; our strict parser's
        # message (duplicate key, NaN, size) is the useful one.
        cause = exc.__cause__
        message = str(cause) if isinstance(cause, InputError) else str(exc.detail)
        return error_response(exc.status_code, message, headers=exc.headers)

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(_: Request, exc: StoreUnavailable) -> Response:
        log.warning("a store is unavailable: %s", exc)
        return error_response(503, str(exc), "unavailable", {"Retry-After": "1"})

    @app.exception_handler(Error)
    async def _ours(_: Request, exc: Error) -> Response:
        log.error("request failed: %s", exc)
        return error_response(500, f"the node failed: {exc}", "internal")

    async def _unexpected(_: Request, exc: Exception) -> Response:
        if _database_down(exc):  # a driver's error a store did not translate
            log.warning("the database is unavailable: %s", exc.__class__.__name__)
            message = "the node's database is unavailable; retry later"
            return error_response(503, message, "unavailable", {"Retry-After": "1"})
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "internal error (see the node's log)", "internal")

    # The driver's errors get handlers of their own: Starlette re-raises whatever the
    # catch-all ``Exception`` handler answered (after sending it), so uvicorn logged a
    # traceback and closed the keep-alive connection (the client's next request on it
    # was reset) for every 503 of a full disk or a database that went away.
    for kind in _driver_errors():
        app.add_exception_handler(kind, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
