"""The `inferproof` command line: one entry point, thin over the library."""

from __future__ import annotations

import typer

from ._attest import attest_app
from ._chat import chat
from ._core import infer, model_app, verify
from ._demo import demo
from ._identity import node_app
from ._log import log_app, witness_app
from ._node import serve, token_app
from ._policy import policy_app
from ._zk import zk_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="inferproof",
    help="Verifiable AI inference: receipts anyone can check offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(model_app, name="model")
app.command("infer")(infer)
app.command("verify")(verify)
app.command("chat")(chat)
app.command("demo")(demo)
app.command("serve")(serve)
app.add_typer(token_app, name="token")
app.add_typer(log_app, name="log")
app.add_typer(witness_app, name="witness")
app.add_typer(attest_app, name="attest")
app.add_typer(node_app, name="node")
app.add_typer(policy_app, name="policy")
app.add_typer(zk_app, name="zk")


def main() -> None:
    """Console entry point."""
    app()
