"""Routes: models, inference, jobs and issued bundles."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, Response

from .._canonical import is_digest
from ..errors import InputError
from ._config import MAX_SIGNATURE_BYTES
from ._errors import NodeHTTPError, errors, unauthorized
from ._jobs import JobState
from ._schemas import (
    DIGEST,
    MODEL_REF,
    BatchRequest,
    BatchResponse,
    InferRequest,
    InferResponse,
    Job,
    ModelRecordJSON,
    ModelShown,
)
from ._service import Call, Issued, Service
from ._strict import StrictRoute

# Dependencies and light handlers are async: FastAPI runs sync ones on a worker thread,
# and each such hop costs GIL hand-offs that dominated request latency.
router = APIRouter(prefix="/v1", route_class=StrictRoute)
bearer = HTTPBearer(
    auto_error=False, description="A token from `inferproof token create` (writes only)."
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
_JSON = "application/json"
_ID = r"^[0-9a-f]{24}$"
# FastAPI's route body limit, set out of the way of the node's own model cap (it only
# takes a constant at import time; the node's cap is configured per server).
_NO_FRAMEWORK_CAP = 1 << 62
_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
# Answers that need a token are never kept by shared caches.
_PRIVATE = {"Cache-Control": "private, no-store"}


async def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


Svc = Annotated[Service, Depends(service)]


async def caller(svc: Svc, creds: Credentials) -> str | None:
    """The hash of the caller's token when it is valid (None for anonymous readers)."""
    return svc.tokens.check(creds.credentials if creds else None)


async def writer(owner: Annotated[str | None, Depends(caller)]) -> str:
    if owner is None:
        raise unauthorized()
    return owner


Writer = Annotated[str, Depends(writer)]


# -- models ------------------------------------------------------------------------------
_PUSH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            **_BINARY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["model"],
                    "properties": {
                        "model": {"type": "string", "format": "binary"},
                        "signature": {
                            "type": "string",
                            "format": "binary",
                            "description": "OpenSSF model-signing bundle (JSON) over the model.",
                        },
                    },
                }
            },
        },
    }
}


def _too_large(max_bytes: int) -> NodeHTTPError:
    return NodeHTTPError(
        413,
        f"the model is over this node's {max_bytes}-byte cap (raise it with "
        "`inferproof serve --max-model-bytes N`)",
    )


async def _spool(chunks: AsyncIterator[bytes], target: BinaryIO, max_bytes: int) -> int:
    """Copy an upload to disk as it arrives, refusing it past ``max_bytes``."""
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        await asyncio.to_thread(target.write, chunk)
    return size


async def _push_body(
    request: Request, max_bytes: int, target: BinaryIO
) -> tuple[int, bytes | None]:
    """Write the pushed model to ``target`` (never held whole in memory); return its
    size and the signature part, if any."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        # Starlette spools file parts to disk; the model part is copied from there.
        form = await request.form(max_files=2, max_fields=0)
        model, signature = form.get("model"), form.get("signature")
        for key, value in (("model", model), ("signature", signature)):
            if value is not None and not isinstance(value, UploadFile):
                raise NodeHTTPError(400, f"multipart part {key!r} must be a file")
        if not isinstance(model, UploadFile):
            raise NodeHTTPError(400, "multipart body needs a 'model' file part")
        size = await _spool(_file_chunks(model), target, max_bytes)
        sig = (
            await signature.read(MAX_SIGNATURE_BYTES + 1)
            if isinstance(signature, UploadFile)
            else None
        )
        if sig is not None and len(sig) > MAX_SIGNATURE_BYTES:
            raise NodeHTTPError(413, f"the signature is over {MAX_SIGNATURE_BYTES} bytes")
    elif kind == "application/octet-stream":
        size, sig = await _spool(request.stream(), target, max_bytes), None
    else:
        raise NodeHTTPError(
            415, "send the model as application/octet-stream or multipart/form-data"
        )
    if size == 0:
        raise NodeHTTPError(400, "the request body (the model file) is empty")
    return size, sig


async def _file_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(1 << 20):
        yield chunk


@router.post(
    "/models",
    status_code=201,
    response_model=ModelRecordJSON,
    responses=errors(400, 401, 409, 413, 415, 422, 429),
    openapi_extra=_PUSH_BODY,
    # No framework cap: the node's own (NodeConfig.max_model_bytes, a serve option)
    # is applied while the upload streams to disk, and named when it is hit.
    max_body_size=_NO_FRAMEWORK_CAP,
    summary="Push a model (ONNX or GGUF), optionally with its publisher's signature",
)
async def push_model(
    request: Request,
    svc: Svc,
    _: Writer,
    name: Annotated[str, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")],
    version: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")] = None,
) -> Response:
    with svc.upload() as (path, target):
        _size, signature = await _push_body(request, svc.config.max_model_bytes, target)
        target.flush()
        record = await svc.in_pool(svc.push, path, name, version, signature)
    return JSONResponse(record.to_json(), 201)


@router.get("/models/{ref}", response_model=ModelShown, responses=errors(404, 422, 429))
async def show_model(svc: Svc, ref: Annotated[str, Path(pattern=MODEL_REF)]) -> dict[str, Any]:
    try:
        record = svc.node.hub.resolve(ref)
    except InputError as exc:
        raise NodeHTTPError(404, str(exc), "model_not_found") from exc
    # OpenAI's model object beside ours: the official client's models.retrieve(ref).
    openai = {"id": ref, "object": "model", "created": int(record.created_at)}
    return {**record.to_json(), **openai, "owned_by": record.publisher or "inferproof"}


@router.get(
    "/blobs/{digest}",
    response_class=Response,
    responses={200: {"content": _BINARY}, **errors(404, 422, 429)},
    summary="Download a model, signature or proving artifact by digest (checked on read)",
)
def get_blob(svc: Svc, digest: Annotated[str, Path(pattern=DIGEST)]) -> Response:
    if not svc.node.hub.blobs.has(digest):
        raise NodeHTTPError(404, f"no blob {digest} on this node")
    data = svc.node.hub.blobs.get(digest)
    headers = {**_IMMUTABLE, "ETag": f'"{digest}"'}
    return Response(data, media_type="application/octet-stream", headers=headers)


# -- inference ---------------------------------------------------------------------------
def job_json(svc: Service, job: JobState, owner: str | None) -> dict[str, Any]:
    snap = svc.jobs.snapshot(job)
    out: dict[str, Any] = {
        "id": snap.id, "mode": snap.mode, "status": snap.status, "created": snap.created,
        "started": snap.started, "finished": snap.finished, "progress": snap.progress,
    }  # fmt: skip
    if isinstance(snap.result, Issued):
        out["result"] = json.loads(snap.result.json(owner == snap.owner))
    elif isinstance(snap.result, dict):  # a ZK setup: public facts about a model
        out["result"] = snap.result
    if snap.error is not None:
        out["error"] = {"code": snap.error[0], "message": snap.error[1]}
    return out


@router.post(
    "/infer",
    response_model=InferResponse,
    responses={
        202: {"model": Job, "description": "a job"},
        **errors(400, 401, 404, 413, 422, 429, 504),
    },
    summary="Run a verifiable inference; long modes (zk) answer 202 with a job",
)
async def infer(
    body: InferRequest,
    svc: Svc,
    owner: Writer,
    log_size: Annotated[
        int | None,
        Header(
            alias="X-Inferproof-Log-Size",
            ge=0,
            le=2**62,
            description="The tree size the caller last saw: the answer then carries "
            "the consistency proof from it (docs/node.md).",
        ),
    ] = None,
) -> Response:
    if body.mode in svc.config.job_modes:
        # Inputs and model are checked before a job exists: a bad request is a 4xx.
        call: Call = await svc.in_pool(svc.prepare, body.model, body.mode, body, owner)
        job = svc.jobs.submit(body.mode, owner, lambda progress: svc.run(call, progress))
        headers = {"Location": f"/v1/jobs/{job.id}"}
        return JSONResponse(job_json(svc, job, owner), 202, headers=headers)
    issued: Issued = await svc.in_pool(svc.prepare_and_run, body.model, body.mode, body, owner,
                                       log_size)  # fmt: skip
    return Response(issued.json(True), media_type=_JSON)


@router.post(
    "/infer/batch",
    response_model=BatchResponse,
    responses=errors(400, 401, 404, 413, 422, 429, 504),
    summary="Run several inferences of one model; each item gets its own receipt",
)
async def infer_batch(body: BatchRequest, svc: Svc, owner: Writer) -> Response:
    if len(body.items) > svc.config.max_batch_items:
        raise NodeHTTPError(
            413, f"{len(body.items)} items, over this node's cap of {svc.config.max_batch_items}"
        )
    if body.mode in svc.config.job_modes:
        raise NodeHTTPError(400, f"mode {body.mode!r} runs as a job: use POST /v1/infer")
    svc.check_model(body.model)
    calls = [
        Call(
            body.model,
            svc.parse_inputs(item.inputs),
            body.mode,
            item.nonce,
            item.private_input,
            item.private_output,
            owner,
        )
        for item in body.items
    ]
    data = await svc.run_batch(calls)
    return Response(data, media_type=_JSON)


@router.get("/jobs/{job_id}", response_model=Job, responses=errors(404, 422, 429))
async def get_job(
    svc: Svc,
    job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{24}$")],
    owner: Annotated[str | None, Depends(caller)],
    wait: Annotated[float, Query(ge=0, le=600, description="Seconds to wait for the end")] = 0,
) -> dict[str, Any]:
    job = svc.jobs.get(job_id)
    if job is None:
        raise NodeHTTPError(404, f"no job {job_id} (finished jobs are kept for a while only)")
    await svc.jobs.wait(job, min(wait, svc.config.max_wait))
    return job_json(svc, job, owner)


@router.delete("/jobs/{job_id}", response_model=Job, responses=errors(401, 403, 404, 409, 422))
async def cancel_job(
    svc: Svc, job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{24}$")], owner: Writer
) -> dict[str, Any]:
    """Cancel a queued or running job of the caller's token (see Jobs.cancel)."""
    job = svc.jobs.cancel(job_id, owner)
    if job is None:
        raise NodeHTTPError(404, f"no job {job_id} (finished jobs are kept for a while only)")
    return job_json(svc, job, owner)


# -- issued bundles ----------------------------------------------------------------------
@router.get(
    "/bundles/{bundle_id}", responses={200: {"content": {_JSON: {}}}, **errors(404, 422, 429)}
)
async def bundle_by_id(
    svc: Svc, bundle_id: Annotated[str, Path(pattern=r"^[0-9a-f]{24}$")]
) -> Response:
    data = svc.bundles.by_id(bundle_id)
    if data is None:
        raise NodeHTTPError(404, f"no bundle {bundle_id} on this node")
    return Response(data, media_type=_JSON, headers=_IMMUTABLE)


@router.get(
    "/receipts/{digest}/bundle",
    responses={200: {"content": {_JSON: {}}}, **errors(401, 404, 422, 429)},
    summary="The bundle of a receipt, by the digest of its envelope (its log entry); needs a token",
)
async def bundle_by_digest(
    svc: Svc, owner: Writer, digest: Annotated[str, Path(pattern=DIGEST)]
) -> Response:
    # Log entries are public, so their digests are too: reading a bundle by one needs
    # the token it was issued under (review finding 11.6); its id is the capability.
    data = svc.bundles.by_digest(digest, owner) if is_digest(digest) else None
    if data is None:
        raise NodeHTTPError(404, f"no bundle for receipt {digest} on this node")
    return Response(data, media_type=_JSON, headers=_PRIVATE)
