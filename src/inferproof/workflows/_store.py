"""The storage a workflow service needs, as a Protocol; ``stores/`` implements it.

A store keeps definitions (with their state), runs (with their signed entries) and
the claims that make each tick run once across processes. ``engine`` and
``database_id`` are there because the scheduler's job table lives in the same
database: a store is, for now, an SQL database SQLAlchemy reaches.
"""

from __future__ import annotations

from typing import Protocol

import sqlalchemy as sa

from ..stores import Claim, StoredRun, StoredWorkflow

__all__ = ["WorkflowStore"]


class WorkflowStore(Protocol):
    """Definitions, runs and tick claims (see :class:`~inferproof.stores.SQLWorkflowStore`)."""

    engine: sa.Engine
    database_id: str

    def put(self, name: str, definition: str, digest: str, *, created: float) -> None: ...
    def get(self, name: str) -> StoredWorkflow | None: ...
    def definitions(self) -> list[StoredWorkflow]: ...
    def set_state(self, name: str, state: str) -> bool: ...
    def delete(self, name: str) -> bool: ...
    def claim(
        self, name: str, tick: str, *, owner: str, planned: str, started: str,
        now: float, lease: float,
    ) -> Claim | None: ...  # fmt: skip
    def finish(
        self, name: str, run: int, *, owner: str, status: str, digest: str, entry: str,
        reason: str | None, alerts: str, finished: str,
    ) -> bool: ...  # fmt: skip
    def abandon(self, name: str, run: int) -> None: ...
    def set_deliveries(self, name: str, run: int, deliveries: str) -> None: ...
    def runs(self, name: str, *, after: int = 0, limit: int = 10_000) -> list[StoredRun]: ...
    def close(self) -> None: ...
