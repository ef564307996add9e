"""The `inferproof` command line: one entry point, thin over the library."""

from __future__ import annotations

from typing import Annotated

import typer

from .._version import __version__
from ._agents import mcp, run_app
from ._attest import attest_app
from ._bundle import bundle_app
from ._chain import anchor, chain_app, evm_verifier, settle
from ._chat import chat
from ._core import infer, model_app
from ._demo import demo
from ._identity import node_app
from ._image import image_app
from ._keys import key_app
from ._log import log_app, witness_app
from ._logfind import log_get, log_search
from ._model import model_list, model_show
from ._node import serve, token_app
from ._policy import policy_app
from ._receipt import receipt_app
from ._relay import relay
from ._storage import migrate
from ._verify import verify
from ._workflow import workflow_app
from ._zk import zk_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="inferproof",
    help="Verifiable AI inference: receipts anyone can check offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
model_app.command("list")(model_list)
model_app.command("show")(model_show)
app.add_typer(model_app, name="model")
app.command("infer")(infer)
app.command("verify")(verify)
app.command("chat")(chat)
app.command("demo")(demo)
app.command("serve")(serve)
app.command("relay")(relay)
app.add_typer(token_app, name="token")
app.command("migrate")(migrate)
log_app.command("get")(log_get)
log_app.command("search")(log_search)
app.add_typer(log_app, name="log")
app.add_typer(witness_app, name="witness")
app.add_typer(attest_app, name="attest")
app.add_typer(node_app, name="node")
app.add_typer(policy_app, name="policy")
app.add_typer(zk_app, name="zk")
app.add_typer(receipt_app, name="receipt")
app.add_typer(bundle_app, name="bundle")
app.add_typer(image_app, name="image")
app.add_typer(key_app, name="key")
app.command("mcp")(mcp)
app.add_typer(run_app, name="run")
app.add_typer(workflow_app, name="workflow")
app.add_typer(chain_app, name="chain")
app.command("anchor")(anchor)
app.command("settle")(settle)
zk_app.command("evm-verifier")(evm_verifier)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"inferproof {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    # No docstring: the application's help above stays its description.
    pass


def main() -> None:
    """Console entry point."""
    app()
