"""The inference node: an HTTP server (FastAPI on uvicorn) over one LocalNode.

Models, inference (with jobs for long modes), issued bundles, the transparency log
as tlog-tiles with proofs, the node's identity, health and Prometheus metrics.
Writes need a bearer token; reads are public. See docs/node.md.

Example::

    from inferproof import LocalNode
    from inferproof.node import NodeConfig, TokenStore, create_app, serve

    token = TokenStore(home).create("ci")     # print it once, keep it secret
    serve("127.0.0.1", 8080, home=home)       # or: uvicorn.run(create_app(LocalNode(home)))
"""

from __future__ import annotations

from ._app import create_app
from ._auth import TokenInfo, Tokens, TokenStore
from ._config import MAX_MODEL_BYTES, NodeConfig
from ._migrate import Migrated, migrate
from ._relay import create_relay
from ._workers import serve

__all__ = [
    "MAX_MODEL_BYTES",
    "Migrated",
    "NodeConfig",
    "TokenInfo",
    "TokenStore",
    "Tokens",
    "create_app",
    "create_relay",
    "migrate",
    "serve",
]
