"""Run records through a node: ``POST /v1/runs`` signs the chain of an agent run.

The node signs only receipts it issued to this client's token (node/_runroutes.py);
the record is assembled here from the bundles the client already verified, and is
verified again, as a whole, by :class:`~inferproof.verify.RunVerifier`.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ._core import Flow, Req, body_of

__all__ = ["sign_run_flow"]


def sign_run_flow(
    run_id: str, calls: list[tuple[str, str]], started: str, agent: dict[str, Any]
) -> Flow[tuple[dict[str, Any], str | None]]:
    body = {
        "run": run_id,
        "started": started,
        "agent": agent,
        "calls": [{"tool": tool, "receipt": receipt} for tool, receipt in calls],
    }
    obj = body_of((yield Req("POST", "/v1/runs", True, {"json": body})))
    if not isinstance(obj, dict) or not isinstance(obj.get("dsseEnvelope"), dict):
        raise InputError("the node sent a malformed signed run")
    entry = obj.get("tlogEntry")
    if entry is not None and not isinstance(entry, str):
        raise InputError("the node sent a malformed run log entry")
    return obj["dsseEnvelope"], entry
