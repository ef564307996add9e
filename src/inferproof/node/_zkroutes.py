"""Route: set a hub model up for zero-knowledge proofs, as a job (issue 12).

Setting up takes seconds to minutes (calibration, circuit compilation, key
generation), so it runs on the proving pool like ``mode: zk`` inferences and is
polled at ``GET /v1/jobs/{id}``. The SRS is the caller's choice, from what the
node may use: a dev SRS (development only), the public one downloaded by EZKL, or
a public ceremony file the node's blob store already holds (named by digest).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from ..runtime import NamedInputs
from ._errors import NodeHTTPError, errors
from ._routes import Svc, Writer, job_json
from ._schemas import Job, ZkSetupRequest
from ._service import Service
from ._strict import StrictRoute

__all__ = ["router"]

router = APIRouter(prefix="/v1", route_class=StrictRoute)


def _srs_options(svc: Service, srs: str) -> dict[str, Any]:
    if srs == "dev":
        return {"dev_srs": True}
    if srs == "online":
        return {"online_srs": True}
    path = svc.node.hub.blobs.path(srs)
    if path is None:
        raise NodeHTTPError(404, f"no SRS {srs} in this node's blob store")
    return {"srs_path": path}


def _setup(
    svc: Service,
    model: str,
    samples: list[NamedInputs],
    options: dict[str, Any],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """A job's work: set ``model`` up; the public facts of the setup are its result."""
    setup = svc.node.zk_setup(model, samples, progress=progress, **options)
    return {
        "setup": setup.digest(),
        "model": setup.model_digest,
        "logrows": setup.logrows,
        "srs": setup.srs_kind,
        "input_visibility": setup.input_visibility,
        "param_visibility": setup.param_visibility,
    }


@router.post(
    "/zk/setups",
    status_code=202,
    response_model=Job,
    responses=errors(400, 401, 404, 413, 422, 429),
    summary="Set a model up for ZK proofs (a job; poll GET /v1/jobs/{id})",
)
async def zk_setup(body: ZkSetupRequest, svc: Svc, owner: Writer) -> Response:
    # Everything that can be checked before a job exists is: a bad request is a 4xx.
    svc.check_model(body.model)
    samples = [svc.parse_inputs(sample) for sample in body.samples]
    options = {
        **_srs_options(svc, body.srs),
        "target": body.target,
        "input_visibility": body.input_visibility,
        "param_visibility": body.param_visibility,
    }
    job = svc.jobs.submit(
        "zk-setup", owner, lambda progress: _setup(svc, body.model, samples, options, progress)
    )
    headers = {"Location": f"/v1/jobs/{job.id}"}
    return JSONResponse(job_json(svc, job, owner), 202, headers=headers)
