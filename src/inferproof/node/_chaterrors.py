"""OpenAI-style errors for the chat and embedding endpoints.

OpenAI's clients read ``{"error": {"message", "type", "param", "code"}}`` and raise
the exception class that matches the HTTP status (``BadRequestError`` for 400,
``NotFoundError`` for 404...). The library raises :class:`InputError` with a
message that starts with the field at fault; the field becomes ``param``. Codes
follow OpenAI's where one exists: ``model_not_found``, ``context_length_exceeded``,
``unsupported_parameter``, ``invalid_api_key``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import Error, InputError, ModelNotFound, UpstreamError
from ..runtime import openai_shapes

log = logging.getLogger("inferproof.node")

# A message's leading field path, as the request parser writes it: "messages[0].role
# must be ...", "max_tokens 9999 is over ...", "stream_options: ...".
_FIELD = re.compile(r"^([a-z_]+)((?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*)(?=[ :])")
_UNSUPPORTED = re.compile(r"unsupported parameter\(s\) \['([^']+)'")
_FIELDS = frozenset(
    {
        "model", "messages", "prompt", "max_tokens", "max_completion_tokens", "temperature",
        "top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty",
        "seed", "stop", "n", "stream", "stream_options", "user", "nonce", "input",
        "encoding_format",
    }
)  # fmt: skip
# Messages may quote the caller's input; one line, bounded, as the node's other errors.
_MAX_MESSAGE = 1000


class ChatError(Exception):
    """An error answer of a chat endpoint, in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.param, self.code = status, kind, param, code
        self.message = " ".join(message.split())[:_MAX_MESSAGE]
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return openai_shapes.error_body(
            self.message, kind=self.kind, param=self.param, code=self.code
        )

    def response(self) -> Response:
        data = json.dumps(self.body()).encode()
        return Response(data, self.status, self.headers, media_type="application/json")


def chat_unauthorized() -> ChatError:
    """A chat write without a valid token, in OpenAI's shape (the client's api_key)."""
    return ChatError(
        401, "this endpoint needs a node token as the bearer token (the openai "
        "client's api_key); make one with `inferproof token create`",
        code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"},
    )  # fmt: skip


def _param_of(message: str, task: str) -> tuple[str | None, str | None]:
    """(param, code) for a refusal message of the request parser or the runtime."""
    if message.startswith("context overflow"):
        where = {"chat": "messages", "embedding": "input"}.get(task, "prompt")
        return where, "context_length_exceeded"
    m = _FIELD.match(message)
    unsupported = _UNSUPPORTED.search(message)
    if unsupported is not None:
        prefix = f"{m.group(1)}{m.group(2)}." if m and m.group(1) in _FIELDS else ""
        return prefix + unsupported.group(1), "unsupported_parameter"
    if m is not None and m.group(1) in _FIELDS:
        return m.group(1) + m.group(2), None
    return None, None


def chat_error(exc: BaseException, task: str) -> ChatError:
    """The answer for an exception raised while serving a chat request."""
    if isinstance(exc, ChatError):
        return exc
    if isinstance(exc, ModelNotFound):
        return ChatError(404, str(exc), param="model", code="model_not_found")
    if isinstance(exc, InputError):
        param, code = _param_of(str(exc), task)
        return ChatError(400, str(exc), param=param, code=code)
    if isinstance(exc, UpstreamError):
        return ChatError(502, str(exc), kind="server_error", code="upstream_error")
    if isinstance(exc, Error):
        log.error("chat request failed: %s", exc)
        return ChatError(500, f"the node failed: {exc}", kind="server_error", code="internal")
    log.exception("unexpected error in a chat request", exc_info=exc)
    message = "internal error (see the node's log)"
    return ChatError(500, message, kind="server_error", code="internal")


async def handle(_: Request, exc: Exception) -> Response:
    """The app's handler for :class:`ChatError` (raised by the chat dependencies)."""
    assert isinstance(exc, ChatError)  # registered for ChatError only
    return exc.response()
