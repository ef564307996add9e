"""An MCP server of verified inference (``inferproof mcp``), on the official MCP SDK.

Tools (their input schemas made from the hub's models, so an agent sees
``X: float32[1, 4]``):

- ``infer``: a tensor (ONNX) model on named tensors;
- ``chat``: a chat (GGUF) model on a prompt or OpenAI messages;
- ``verify_bundle``: verify any receipt bundle; ``show_receipt``: a receipt in human
  form with a fresh verification; ``log_lookup``: a receipt's log inclusion and the
  current checkpoint; ``list_models``; ``run_record``: the node-signed record of
  every model call of this server's run so far.

Every answer carries the receipt digest, the log index and the verification report;
an answer whose receipt failed a check is never returned: the call is an MCP tool
error naming the check. Bad arguments are tool errors too, and the server stays up.
Resources: ``inferproof://models`` and ``inferproof://receipts/{digest}``.

One server process is one agent run: its model calls form one run record, which
``run_record`` returns signed and ``--record FILE`` writes when the server stops.

Example (stdio, as an MCP client such as Claude Desktop launches it)::

    server = create_server(LocalBackend(LocalNode()))
    anyio.run(serve_stdio, server)
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server

from .._canonical import check_digest
from ..errors import InputError
from ._backend import Backend
from ._schemas import chat_schema, infer_schema
from ._tools import ToolFailure, Tools

__all__ = ["RECEIPT_URI", "create_server", "serve_http", "serve_stdio"]

log = logging.getLogger(__name__)
MODELS_URI = "inferproof://models"
RECEIPT_URI = "inferproof://receipts/{digest}"
_RECEIPT_PREFIX = "inferproof://receipts/"
_DIGEST_ARG = {
    "type": "object",
    "properties": {"receipt_digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}},
    "required": ["receipt_digest"],
    "additionalProperties": False,
}
_NO_ARGS = {"type": "object", "properties": {}, "additionalProperties": False}
_READ_ONLY = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)


def _tools(backend: Backend) -> list[types.Tool]:
    records = backend.models()
    return [
        types.Tool(
            name="infer",
            description="Run a tensor model (ONNX) on named inputs. The answer comes only "
            "with a verified receipt: its digest, log index and the checks made.",
            input_schema=infer_schema(records),
        ),
        types.Tool(
            name="chat",
            description="Ask a chat model (GGUF). The answer comes only with a verified "
            "receipt: its digest, log index and the checks made.",
            input_schema=chat_schema(records),
        ),
        types.Tool(
            name="verify_bundle",
            description="Verify a receipt bundle (the JSON object): every check made and "
            "not made, and whether the policy is satisfied.",
            input_schema={
                "type": "object",
                "properties": {"bundle": {"type": "object"}},
                "required": ["bundle"],
                "additionalProperties": False,
            },
            annotations=_READ_ONLY,
        ),
        types.Tool(
            name="list_models",
            description="The models this node serves, with their digests and signatures.",
            input_schema=_NO_ARGS,
            annotations=_READ_ONLY,
        ),
        types.Tool(
            name="show_receipt",
            description="A receipt by its digest: model, input, output, node, times, and "
            "a fresh verification.",
            input_schema=_DIGEST_ARG,
            annotations=_READ_ONLY,
        ),
        types.Tool(
            name="log_lookup",
            description="Where a receipt is in the transparency log, proven against the "
            "current checkpoint.",
            input_schema=_DIGEST_ARG,
            annotations=_READ_ONLY,
        ),
        types.Tool(
            name="run_record",
            description="The record of every model call of this run so far, as a hash "
            "chain signed by the node and appended to its log.",
            input_schema=_NO_ARGS,
        ),
    ]


def _text(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)


def create_server(tools: Tools, *, name: str = "inferproof") -> Server[Any]:
    """The MCP server (the SDK's low-level :class:`Server`) over ``tools``."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=await anyio.to_thread.run_sync(_tools, tools.backend))

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            result = await anyio.to_thread.run_sync(tools.call, params.name, params.arguments)
        except ToolFailure as exc:
            return types.CallToolResult(content=[types.TextContent(text=str(exc))], is_error=True)
        except Exception:  # the server stays up, and tells the agent only that much
            log.exception("tool %s failed", params.name)
            return types.CallToolResult(
                content=[types.TextContent(text=f"internal error in tool {params.name}")],
                is_error=True,
            )
        return types.CallToolResult(
            content=[types.TextContent(text=_text(result))], structured_content=result
        )

    async def list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        listed = [types.Resource(name="models", uri=MODELS_URI, mime_type="application/json")]
        listed += [
            types.Resource(
                name=f"receipt {d}", uri=_RECEIPT_PREFIX + d, mime_type="application/json"
            )
            for d in tools.run.receipts
        ]
        return types.ListResourcesResult(resources=listed)

    async def list_templates(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(
            name="receipt", uri_template=RECEIPT_URI, mime_type="application/json",
            description="A receipt bundle by its digest.",
        )  # fmt: skip
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        text = await anyio.to_thread.run_sync(_read, tools, uri)
        contents = types.TextResourceContents(uri=uri, mime_type="application/json", text=text)
        return types.ReadResourceResult(contents=[contents])

    return Server(
        name,
        version=_version(),
        instructions="Verified inference: every answer comes with a checked receipt.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )


def _read(tools: Tools, uri: str) -> str:
    if uri == MODELS_URI:
        return _text(tools.call("list_models", {}))
    if uri.startswith(_RECEIPT_PREFIX):
        digest = check_digest(uri[len(_RECEIPT_PREFIX) :], "receipt digest")
        bundle = tools.backend.bundle_for(digest)
        if bundle is not None:
            return bundle.dumps()
        raise InputError(f"no receipt {digest} here")
    raise InputError(f"unknown resource {uri!r:.200}")


def _version() -> str:
    from .._version import __version__

    return __version__


async def serve_stdio(server: Server[Any]) -> None:
    """Serve one MCP client over this process's standard input and output."""
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def http_app(server: Server[Any], host: str = "127.0.0.1") -> Any:
    """The streamable-HTTP ASGI app (at ``/mcp``), DNS-rebinding protection on for
    loopback hosts as the SDK sets it."""
    return server.streamable_http_app(host=host)


def serve_http(server: Server[Any], host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve MCP over streamable HTTP at ``http://HOST:PORT/mcp`` until stopped."""
    import uvicorn

    uvicorn.run(http_app(server, host), host=host, port=port, log_level="warning")
