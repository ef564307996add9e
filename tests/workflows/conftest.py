"""A JSON feed server on loopback whose routes a test sets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest

from inferproof.testing import LoopbackHandler, serve_loopback


class _Feed(LoopbackHandler):
    routes: ClassVar[dict[str, tuple[int, bytes, dict[str, str]]]] = {}

    def do_GET(self) -> None:
        self.answer(*self.routes.get(self.path, (404, b"no", {})))


@pytest.fixture()
def server() -> Iterator[tuple[str, dict[str, tuple[int, bytes, dict[str, str]]]]]:
    routes: dict[str, tuple[int, bytes, dict[str, str]]] = {}
    with serve_loopback(type("Handler", (_Feed,), {"routes": routes})) as url:
        yield url, routes
