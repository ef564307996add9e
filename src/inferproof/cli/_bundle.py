"""``inferproof bundle list`` and ``bundle get``: the bundles a node issued to you.

The listing comes from ``Client.bundles`` (a listing needs no verification: each
bundle is verified when it is read and checked).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import InputError
from ..receipts import Bundle
from ._common import console, err_console, handle_errors
from ._node import NodeOpt, TokenOpt, node_client
from ._view import plain

__all__ = ["bundle_app"]

bundle_app = typer.Typer(help="Bundles a node issued to your token.", no_args_is_help=True)

# The node's cap on one page (node/_bundleroutes.py MAX_PAGE): longer listings page.
_PAGE = 200
_MAX_ANSWER = 4 * 1024 * 1024
# A relative time: a number and a unit, counted back from now.
_AGO = re.compile(r"([0-9]{1,6})([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def when(text: str) -> str:
    """A ``--since``/``--until`` value for the node: ``30m``, ``2h``, ``7d`` ago become
    Unix seconds; anything else (Unix seconds, ISO 8601) is the node's to parse."""
    m = _AGO.fullmatch(text.strip())
    if m is None:
        return text
    return f"{time.time() - int(m.group(1)) * _UNIT[m.group(2)]:.3f}"


@bundle_app.command("list")
@handle_errors
def bundle_list(
    node_url: NodeOpt = None,
    token: TokenOpt = None,
    model: Annotated[
        str | None, typer.Option("--model", help="sha256:DIGEST, NAME or NAME:VERSION.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From: 30m, 2h, 7d ago, Unix seconds or ISO 8601.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before (same forms).")] = None,
    nonce: Annotated[str | None, typer.Option("--nonce", help="The receipt's nonce.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (newest first).")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the bundles a node issued to your token (newest first)."""
    if not node_url:
        raise InputError("bundle list needs --node URL (or INFERPROOF_NODE)")
    if limit < 1:
        raise InputError("--limit must be at least 1")
    start, end = (when(since) if since else None), (when(until) if until else None)
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    with node_client(node_url, token) as client:
        while len(rows) < limit:
            page = client.bundles(
                model=model or None, nonce=nonce or None, since=start, until=end,
                limit=min(_PAGE, limit - len(rows)), cursor=cursor,
            )  # fmt: skip
            rows += page["bundles"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
    if as_json:
        console.print_json(json.dumps({"bundles": rows, "next_cursor": cursor}))
        return
    _print_rows(rows)
    if cursor:
        err_console.print(f"more: raise --limit (at {limit})", style="dim", markup=False)


def _print_rows(rows: list[dict[str, Any]]) -> None:
    # The receipt digests are in --json: 80 columns hold the id and what was asked.
    table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold")
    for column, wraps in (("id", False), ("created (UTC)", False), ("model", True),
                          ("nonce", True), ("log", False)):  # fmt: skip
        table.add_column(column, overflow="fold", no_wrap=not wraps)
    for row in rows:
        given = row.get("model")
        model: dict[str, Any] = given if isinstance(given, dict) else {}
        name = f"{model.get('name')}:{model.get('version')}" if model.get("name") else "?"
        cells = (row.get("id"), name, row.get("nonce") or "", row.get("log_index"))
        ident, model_name, nonce, index = (plain(c) for c in cells)
        table.add_row(ident, _stamp(row.get("created")), model_name, nonce, index)
    console.print(table)


def _stamp(created: Any) -> str:
    if not isinstance(created, int | float) or not 0 <= created < 1e11:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(created))


@bundle_app.command("get")
@handle_errors
def bundle_get(
    ref: Annotated[str, typer.Argument(help="A bundle id (24 hex) or a receipt sha256:DIGEST.")],
    node_url: NodeOpt = None,
    token: TokenOpt = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write it here (default: stdout).")
    ] = None,
) -> None:
    """Fetch a bundle from a node by id (public) or by receipt digest (needs a token).

    The bundle is parsed, not verified: check it with `inferproof verify FILE`."""
    if not node_url:
        raise InputError("bundle get needs --node URL (or INFERPROOF_NODE)")
    with node_client(node_url, token) as client:
        bundle: Bundle = client.bundle_for(ref) if ref.startswith("sha256:") else client.bundle(ref)
    if output is None:
        sys.stdout.write(bundle.dumps())
        return
    bundle.write(output)
    err_console.print(
        f"bundle written to {output}; check it with `inferproof verify {output}`",
        style="dim", markup=False, soft_wrap=True,
    )  # fmt: skip
