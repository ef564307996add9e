"""Verified inference where agents are: an MCP server and LangChain components.

- :mod:`inferproof.integrations.mcp`: ``inferproof mcp``, the MCP server (stdio and
  streamable HTTP) with ``infer``, ``chat``, ``verify_bundle``, ``list_models``,
  ``show_receipt``, ``log_lookup`` and ``run_record``;
- :mod:`inferproof.integrations.langchain`: a chat model, a tool per tensor model and
  a callback handler that collects a run's receipts (``pip install 'inferproof[agents]'``).

Both sit on a backend: :class:`LocalBackend` (a :class:`~inferproof.LocalNode` in this
process) or :class:`RemoteBackend` (a node over HTTP through the verifying client).
Neither signs nor verifies by itself; an answer is handed over only once its receipt
verified, and every model call of a run joins its run record (docs/agents.md).

Example::

    from inferproof.integrations import LocalBackend, Tools
    tools = Tools(LocalBackend(LocalNode()))
    answer = tools.call("infer", {"model": "credit:1", "inputs": {"X": [[52, 0.41, 34, 2]]}})
    print(answer["outputs"], answer["receipt_digest"], answer["verification"]["verified"])
"""

from __future__ import annotations

from ._backend import Backend, LocalBackend, RemoteBackend, Verified
from ._tools import ToolFailure, Tools

__all__ = ["Backend", "LocalBackend", "RemoteBackend", "ToolFailure", "Tools", "Verified"]
