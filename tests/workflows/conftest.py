"""A JSON feed server on loopback whose routes a test sets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
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


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A real PostgreSQL server for the session (tests/_postgres.py)."""
    from tests._postgres import Postgres

    with Postgres() as pg:
        yield pg


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The workflow store's database: SQLite in a file (the embedded default), or a
    fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "workflows.sqlite")
    import psycopg

    pg = request.getfixturevalue("postgres")
    name = "wf_" + uuid.uuid4().hex[:16]
    with psycopg.connect(pg.url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg.url.rsplit("/", 1)[0] + "/" + name
