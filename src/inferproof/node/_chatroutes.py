"""OpenAI-compatible routes: ``POST /v1/chat/completions``, ``POST /v1/completions``,
``POST /v1/embeddings`` and ``GET /v1/models`` (one listing for both the inferproof
client and OpenAI's).

The official ``openai`` client works unchanged with ``base_url`` set to the
node's ``/v1`` and a node token as its ``api_key`` (it sends it as a bearer
token, the node's rule for writes). Every answer carries its receipt in the
``inferproof`` field (of the response, or of the last stream event) and names
its bundle in the ``Inferproof-Bundle-Id`` header. Errors are OpenAI's error
bodies. See docs/node.md, "Chat".
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from starlette.responses import Response, StreamingResponse

from .._canonical import parse_json
from ..errors import InputError
from . import _chaterrors
from ._chaterrors import ChatError, chat_unauthorized
from ._chatschemas import (
    BUNDLE_ID_HEADER,
    ChatCompletion,
    EmbeddingList,
    ModelListing,
    TextCompletion,
    embeddings_body,
    error_responses,
    json_response,
    ok_response,
    request_body,
)
from ._chatservice import ChatService
from ._routes import Credentials, Svc
from ._strict import StrictRoute

router = APIRouter(prefix="/v1", route_class=StrictRoute)
_JSON = "application/json"
# Intermediaries must neither buffer nor cache an event stream (X-Accel-Buffering is
# nginx's switch; Cache-Control covers the rest).
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_ERRORS = error_responses(400, 401, 404, 413, 429, 502, 504)


async def chat_service(request: Request) -> ChatService:
    chat: ChatService = request.app.state.chat
    return chat


Chat = Annotated[ChatService, Depends(chat_service)]


async def chat_writer(svc: Svc, creds: Credentials) -> str:
    """A valid node token, as for every write; OpenAI's 401 body otherwise."""
    owner = svc.tokens.check(creds.credentials if creds else None)
    if owner is None:
        raise chat_unauthorized()
    return owner


Writer = Annotated[str, Depends(chat_writer)]
Nonce = Annotated[str | None, Header(alias="inferproof-nonce", include_in_schema=False)]
Private = Annotated[str | None, Header(alias="inferproof-private", include_in_schema=False)]


def _private(value: str | None) -> bool:
    if value is None or value.lower() == "false":
        return False
    if value.lower() == "true":
        return True
    raise InputError("the Inferproof-Private header must be true or false")


async def _answer(
    request: Request,
    chat: ChatService,
    task: str,
    nonce: str | None,
    private: str | None,
    owner: str,
) -> Response:
    try:
        # The strict parser: no duplicate keys, no NaN (the route's cap bounds the body).
        body = parse_json(await request.body(), "request body", chat.svc.config.max_body_bytes)
        ask = chat.parse(task, body, nonce, _private(private), owner)
    except InputError as exc:
        raise _chaterrors.chat_error(exc, task) from exc
    if ask.stream:
        events, bundle_id = await chat.stream(ask)
        headers = {**_SSE_HEADERS, BUNDLE_ID_HEADER: bundle_id}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    data, bundle_id = await chat.answer(ask)
    return Response(data, media_type=_JSON, headers={BUNDLE_ID_HEADER: bundle_id})


@router.post(
    "/chat/completions",
    response_model=None,
    responses={**ok_response(ChatCompletion), **_ERRORS},
    openapi_extra=request_body("chat"),
    summary="OpenAI chat completion with a receipt (stream or not)",
)
async def chat_completions(
    request: Request, chat: Chat, owner: Writer, nonce: Nonce = None, private: Private = None
) -> Response:
    return await _answer(request, chat, "chat", nonce, private, owner)


@router.post(
    "/completions",
    response_model=None,
    responses={**ok_response(TextCompletion), **_ERRORS},
    openapi_extra=request_body("completion"),
    summary="OpenAI text completion with a receipt (stream or not)",
)
async def completions(
    request: Request, chat: Chat, owner: Writer, nonce: Nonce = None, private: Private = None
) -> Response:
    return await _answer(request, chat, "completion", nonce, private, owner)


@router.post(
    "/embeddings",
    response_model=None,
    responses={**json_response(EmbeddingList), **error_responses(400, 401, 404, 413, 429, 504)},
    openapi_extra=embeddings_body(),
    summary="OpenAI embeddings of a GGUF model with a receipt",
)
async def embeddings(
    request: Request, chat: Chat, owner: Writer, nonce: Nonce = None, private: Private = None
) -> Response:
    try:
        body = parse_json(await request.body(), "request body", chat.svc.config.max_body_bytes)
        ask = chat.parse_embedding(body, nonce, _private(private), owner)
    except InputError as exc:
        raise _chaterrors.chat_error(exc, "embedding") from exc
    data, bundle_id = await chat.embed(ask)
    return Response(data, media_type=_JSON, headers={BUNDLE_ID_HEADER: bundle_id})


@router.get(
    "/models",
    response_model=ModelListing,
    responses=error_responses(429),
    summary="The hub's models (`models`) and its chat models as OpenAI's list (`data`)",
)
async def list_models(svc: Svc) -> dict[str, Any]:
    records = svc.node.hub.list()
    return {**svc.node.chat_models(), "models": [r.to_json() for r in records]}


def mount(app: FastAPI, chat: ChatService, max_body_bytes: int) -> None:
    """Add the chat routes (among them ``GET /v1/models``: the hub's list and OpenAI's
    in one answer) and their error handler to ``app``."""
    app.state.chat = chat
    app.add_exception_handler(ChatError, _chaterrors.handle)
    app.include_router(router, max_body_size=max_body_bytes)
