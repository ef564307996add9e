"""``inferproof relay``: an Oblivious HTTP relay in front of one node's gateway."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from ..errors import InputError
from ..node import create_relay
from ._common import console, handle_errors


@handle_errors
def relay(
    gateway: Annotated[
        str,
        typer.Option(
            "--gateway", help="The node's gateway: https://node/.well-known/ohttp-gateway"
        ),
    ],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8443,
) -> None:
    """Relay sealed requests (POST /: message/ohttp-req, or chunked
    message/ohttp-chunked-req) to the node's gateway and their sealed answers back as
    they arrive; GET / hands out the gateway's keys. The relay reads none of them and
    forwards no header of the client's, so the node does not learn who asked
    (docs/confidential.md)."""
    if not gateway.startswith(("http://", "https://")):
        raise InputError("--gateway must be the http(s) URL of the node's gateway")
    console.print(f"relaying to {gateway} on http://{host}:{port}/", markup=False)
    uvicorn.run(create_relay(gateway), host=host, port=port, log_level="warning", access_log=False)
