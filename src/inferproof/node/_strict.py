"""Strict JSON bodies: the project's parser (no duplicate keys, no NaN) behind FastAPI."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from .._canonical import parse_json

# The app's max_body_size has already capped the body; this only satisfies the parser.
_NO_EXTRA_CAP = 1 << 62


class _StrictRequest(Request):
    """Parses JSON bodies with the project's strict parser: no duplicate keys, no NaN."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body(), "request body", _NO_EXTRA_CAP)
        return self._json


class StrictRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictRequest(request.scope, request.receive))

        return strict
