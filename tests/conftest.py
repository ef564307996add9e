"""Shared fixtures: an isolated INFERPROOF_HOME and small real models."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from inferproof.testing import credit_risk_model, mlp_model

VECTORS = Path(__file__).resolve().parents[1] / ".." / "shared" / "vectors"


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    monkeypatch.setenv("INFERPROOF_HOME", str(root))
    return root


@pytest.fixture(scope="session")
def credit_model() -> tuple[bytes, dict[str, list[list[float]]]]:
    return credit_risk_model()


@pytest.fixture(scope="session")
def mlp_bytes() -> bytes:
    return mlp_model((8, 32, 16, 2))


@pytest.fixture()
def node(home: Path):  # type: ignore[no-untyped-def]
    from inferproof import LocalNode

    return LocalNode(home)


@pytest.fixture()
def credit_files(
    tmp_path: Path, credit_model: tuple[bytes, dict[str, object]]
) -> tuple[Path, Path]:
    model_bytes, sample = credit_model
    model = tmp_path / "credit.onnx"
    model.write_bytes(model_bytes)
    inp = tmp_path / "input.json"
    inp.write_text(json.dumps(sample))
    return model, inp


def mlp_input(seed: int = 1, batch: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((batch, 8)).astype(np.float32)}


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A real PostgreSQL server for the session (tests/_postgres.py)."""
    from tests._postgres import Postgres

    with Postgres() as pg:
        yield pg


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store's database: SQLite in a file (the embedded default), or a
    fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "workflows.sqlite")
    import psycopg

    pg = request.getfixturevalue("postgres")
    name = "wf_" + uuid.uuid4().hex[:16]
    with psycopg.connect(pg.url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg.url.rsplit("/", 1)[0] + "/" + name
