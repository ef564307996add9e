"""Implementations of the storage Protocols the stages define.

The embedded default is SQLite under the home folder. :class:`SQLWorkflowStore` is
written against SQLAlchemy Core, so the same code serves SQLite and PostgreSQL.

Example::

    from inferproof.stores import SQLWorkflowStore
    store = SQLWorkflowStore("sqlite:///" + str(home / "workflows.sqlite"))
"""

from __future__ import annotations

from ._workflows import Claim, SQLWorkflowStore, StoredRun, StoredWorkflow

__all__ = ["Claim", "SQLWorkflowStore", "StoredRun", "StoredWorkflow"]
