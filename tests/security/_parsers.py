"""Shared by the parser findings' tests: the assets, and the CLI's one-line-error rule."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

from inferproof.cli import app
from inferproof.testing import mlp_model

from ..node.conftest import MLP_SIZES, Running, pushed, start

ASSETS = Path(__file__).parent / "assets"


def asset(name: str) -> bytes:
    return (ASSETS / name).read_bytes()


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, out: str, err: str, needle: str) -> None:
    """Non-zero exit, one ``error: ...`` line naming ``needle``, and no traceback."""
    assert code != 0
    assert "Traceback" not in out + err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err


@contextmanager
def node_with_mlp(home: Path) -> Iterator[Running]:
    """A real node (uvicorn on 127.0.0.1) with the MLP pushed as ``mlp:1``."""
    running = start(home)
    try:
        pushed(running, mlp_model(MLP_SIZES))
        yield running
    finally:
        running.stop()
