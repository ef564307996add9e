"""``POST /v1/runs``: the node signs and logs the chain of an agent run's calls.

An agent that reaches this node through the verifying client (the MCP server with
``--node``, the LangChain adapters) asks for its run record here. The node signs
only receipts it issued under the caller's own token: each listed receipt must be
one of the caller's bundles (as ``GET /v1/bundles`` lists them), so a run record
from this node never chains another caller's answers or a receipt it never made.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..errors import InputError
from ..receipts import MAX_RUN_CALLS
from ._errors import NodeHTTPError, errors
from ._routes import Svc, Writer
from ._schemas import DIGEST
from ._strict import StrictRoute

__all__ = ["router"]

router = APIRouter(prefix="/v1", route_class=StrictRoute)

# What an agent may say about itself in the signed record: a few short strings
# (name, version, framework). Bounded, as everything a caller makes the node sign.
_AgentText = Annotated[str, StringConstraints(max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunCallBody(_Strict):
    tool: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    receipt: str = Field(pattern=DIGEST, description="The call's receipt digest.")


class RunBody(_Strict):
    run: str = Field(min_length=1, max_length=128, description="The run id.")
    started: str = Field(min_length=1, max_length=40, description="RFC 3339, UTC.")
    agent: dict[Annotated[str, StringConstraints(max_length=64)], _AgentText] = Field(
        default_factory=dict, max_length=16
    )
    calls: list[RunCallBody] = Field(max_length=MAX_RUN_CALLS)


class RunSigned(_Strict):
    dsseEnvelope: dict[str, Any]
    tlogEntry: str | None


@router.post(
    "/runs",
    response_model=RunSigned,
    responses=errors(400, 401, 413, 422, 429),
    summary="Sign and log the hash chain of an agent run's receipts (needs a token)",
)
async def sign_run(body: RunBody, svc: Svc, owner: Writer) -> dict[str, Any]:
    for i, call in enumerate(body.calls):
        if svc.bundles.by_digest(call.receipt, owner) is None:
            raise NodeHTTPError(
                400, f"call {i}: receipt {call.receipt} is not one this node issued to this token"
            )
    calls = [(c.tool, c.receipt) for c in body.calls]
    try:
        envelope, entry = await svc.in_pool(
            svc.node.sign_run, body.run, calls, body.started, dict(body.agent)
        )
    except InputError as exc:
        raise NodeHTTPError(400, str(exc)) from exc
    return {"dsseEnvelope": envelope, "tlogEntry": entry}
