"""``inferproof mcp`` (the MCP server for agents) and ``inferproof run verify RECORD``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import InputError
from ._common import EXIT_VERIFY_FAILED, console, err_console, fail, handle_errors

__all__ = ["mcp", "run_app"]

run_app = typer.Typer(help="Agent run records: every model call of a run, signed and logged.")

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_MISSING = (
    "the MCP server needs the agents extra: pip install 'inferproof[agents]' "
    "(the README's install includes it)"
)


def _backend(node: str | None, token: str | None, reexecute: bool) -> Any:
    from ..integrations import LocalBackend, RemoteBackend

    if node is None:
        from ..engine import LocalNode

        return LocalBackend(LocalNode(), reexecute=reexecute)
    if reexecute:
        raise InputError("--reexecute applies to the embedded node; a remote node's client "
                         "re-executes as its policy says")  # fmt: skip
    from ..client import Client

    return RemoteBackend(Client(node, token=token))


@handle_errors
def mcp(
    node: Annotated[
        str | None, typer.Option("--node", help="A node's URL (default: the embedded node).")
    ] = None,
    token: Annotated[str | None, typer.Option("--token", envvar="INFERPROOF_TOKEN")] = None,
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP at /mcp instead of stdio.")
    ] = False,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    public: Annotated[
        bool,
        typer.Option("--public", help="Allow a non-loopback --host (no authentication!)."),
    ] = False,
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8765,
    record: Annotated[
        Path | None,
        typer.Option("--record", help="Write the signed run record here when the server stops."),
    ] = None,
    reexecute: Annotated[
        bool, typer.Option("--reexecute", help="Also re-run every answer (embedded node).")
    ] = False,
) -> None:
    """Serve verified inference to agents over the Model Context Protocol.

    stdio by default (how MCP clients launch a server); every answer comes with its
    verified receipt, and the run's calls form one signed run record."""
    try:
        import anyio

        from ..integrations import Tools
        from ..integrations.mcp import create_server, serve_http, serve_stdio
    except ImportError:
        fail(_MISSING)
    if http and host not in _LOOPBACK and not public:
        # The MCP endpoint has no authentication of its own: whoever reaches it spends
        # the node's compute and signs into its log (docs/agents.md).
        raise InputError(f"--host {host} is not loopback and the MCP endpoint has no "
                         "authentication: put it behind an authenticating proxy and pass "
                         "--public")  # fmt: skip
    tools = Tools(_backend(node, token, reexecute), agent={"server": "inferproof mcp"})
    server = create_server(tools)
    try:
        if http:
            err_console.print(f"MCP over streamable HTTP at http://{host}:{port}/mcp")
            serve_http(server, host, port)
        else:
            with contextlib.suppress(KeyboardInterrupt):
                anyio.run(serve_stdio, server)
    finally:
        if record is not None:
            tools.record().write(record)
            err_console.print(f"run record: {record} ({len(tools.run)} call(s))")
        tools.backend.close()


@run_app.command("verify")
@handle_errors
def run_verify(
    record: Annotated[Path, typer.Argument(help="A run record file (inferproof mcp --record).")],
    node: Annotated[
        str | None, typer.Option("--node", help="Trust the node pinned for this URL.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a run record: the node's signature on the chain, the chain itself, its log
    entry, and every call's receipt (signature, digests, log inclusion)."""
    import json

    from ..receipts import RunRecord
    from ..verify import RunVerifier

    parsed = RunRecord.read(record)
    if node is not None:
        from ..client import Client

        with Client(node) as client:
            report = client.check_run(parsed)
    else:
        from ..engine import LocalNode

        with LocalNode() as local:
            report = RunVerifier.for_audit(local.verifier()).check(parsed)
    if as_json:
        console.print_json(json.dumps(report.to_json()))
    else:
        show_run(report)
    if not report.verified:
        bad = report.first_failure
        why = f"{bad.name}: {bad.detail}" if bad else "a signed call has no bundle"
        fail(f"run record NOT verified: {why}", EXIT_VERIFY_FAILED)


def show_run(report: Any) -> None:
    table = Table(title=f"run {report.statement.run_id}")
    for col in ("#", "tool", "model", "receipt", "log index", "verified"):
        table.add_column(col)
    for call in report.calls:
        model = "-"
        if call.report is not None:
            m = call.report.receipt.model
            model = str(m.get("name") or m.get("digest", "-"))
        ok = "[green]yes[/]" if call.verified else "[red]NO[/]"
        if call.report is None:
            ok = "[red]NO: no bundle[/]"
        index = "-" if call.log_index is None else str(call.log_index)
        table.add_row(str(call.index), call.tool, model, call.receipt[:23] + "…", index, ok)
    console.print(table)
    for c in report.checks:
        mark = {"passed": "[green]passed[/]", "failed": "[red]FAILED[/]"}.get(
            c.status.value, "[yellow]not checked[/]"
        )
        console.print(f"{c.name}: {mark} {c.detail}", markup=True, highlight=False)
    verdict = "[green]VERIFIED[/]" if report.verified else "[red]NOT VERIFIED[/]"
    console.print(f"{len(report.calls)} call(s): {verdict}")
