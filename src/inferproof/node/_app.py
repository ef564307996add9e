"""The FastAPI application over one LocalNode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .._version import __version__
from ..engine import LocalNode
from . import _chatroutes, _explorer, _logroutes, _ohttproutes, _routes, _zkroutes
from ._bundleroutes import router as bundle_routes
from ._chatservice import ChatService
from ._config import NodeConfig
from ._errors import install_handlers
from ._guard import Guard
from ._runroutes import router as run_routes
from ._service import InferFn, Service
from ._workflowroutes import router as workflow_routes

_DESCRIPTION = """\
A node runs models and returns a signed, logged receipt bundle with every answer.
Writes (model pushes, inferences, chat) need a bearer token; reads are public. Every
error is JSON `{"error": {"code", "message"}}`, except on the OpenAI-compatible chat
endpoints, which answer OpenAI's `{"error": {"message", "type", "param", "code"}}`.
See docs/node.md.
"""


def create_app(
    node: LocalNode, config: NodeConfig | None = None, *, infer: InferFn | None = None
) -> FastAPI:
    """Build the node's HTTP application over ``node``.

    ``infer`` replaces ``node.infer`` (same signature) for tests that need a slow
    inference. The app flushes the log (``node.close()``) when it shuts down.

    Example::

        import uvicorn
        uvicorn.run(create_app(LocalNode()), host="127.0.0.1", port=8080)
    """
    config = config or NodeConfig()
    svc = Service(node, config, infer)
    chat = ChatService(svc, config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Measure the software environment once, before serving: the first measurement
        # reads every installed distribution's metadata (about a second), and
        # concurrent first requests would each pay for it.
        node.environment()
        if node.log_enabled:
            node.log.checkpoint()  # open the log (and create its key) before serving
        svc.open_workflows()  # its scheduler runs only while the app serves
        svc.open_anchoring()  # likewise the anchoring schedule, when configured
        svc.ready = True
        try:
            yield
        finally:
            chat.close()
            svc.close()

    app = FastAPI(
        title="inferproof node",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = svc
    install_handlers(app)
    # Body caps apply inside the routes (so the Guard turns their 413 into JSON); the
    # push route's own model cap overrides this one.
    # GET /v1/models lives in the chat router: the hub's list and OpenAI's in one answer.
    _chatroutes.mount(app, chat, config.max_body_bytes)
    app.include_router(_routes.router, max_body_size=config.max_body_bytes)
    app.include_router(_logroutes.router)
    app.include_router(bundle_routes)  # GET /v1/bundles: the caller's own
    app.include_router(run_routes, max_body_size=config.max_body_bytes)
    app.include_router(_zkroutes.router, max_body_size=config.max_body_bytes)
    app.include_router(workflow_routes, max_body_size=config.max_body_bytes)
    # /.well-known/ohttp-gateway: Oblivious HTTP (docs/confidential.md); its cap leaves
    # room for the encapsulation around a request of the largest body.
    app.include_router(_ohttproutes.router, max_body_size=config.max_body_bytes + 4096)
    _explorer.mount(app)  # /explore: read-only HTML pages (docs/explorer.md)
    app.add_middleware(
        Guard,
        metrics=svc.metrics,
        tokens=svc.tokens,
        max_inflight=config.max_inflight,
        reserved=config.reserved_for_tokens,
        body_idle_timeout=config.body_idle_timeout,
        body_timeout=config.body_timeout,
    )
    return app
