"""Printing verification reports for people and for machines."""

from __future__ import annotations

import json
import re

from rich.table import Table
from rich.text import Text

from ..verify import CheckStatus, VerificationReport
from ._common import console
from ._view import plain

_MARK = {
    CheckStatus.PASSED: "[green]passed[/green]",
    CheckStatus.FAILED: "[red]FAILED[/red]",
    CheckStatus.NOT_CHECKED: "[yellow]not checked[/yellow]",
}


_DIGEST = re.compile(r"sha256:([0-9a-f]{16})[0-9a-f]{48}")


def _short(text: str) -> str:
    # Full digests are in --json; the table shows 16 hex digits so it stays readable.
    return _DIGEST.sub(r"sha256:\1…", text)


def print_report(report: VerificationReport, as_json: bool = False) -> None:
    if as_json:
        console.print_json(json.dumps(report.to_json()))
        return
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        # Names and details quote the bundle (a nonce, a model name): plain text, never
        # markup ("[/]" in a nonce raised Rich's MarkupError, a traceback).
        table.add_row(plain(check.name), _MARK[check.status], plain(_short(check.detail)))
    console.print(table)
    if report.verified:
        console.print("[bold green]VERIFIED[/bold green]: the policy is satisfied")
    else:
        bad = report.first_failure
        reason = f"{bad.name}: {bad.detail}" if bad else "the policy is not satisfied"
        line = Text.assemble(("NOT VERIFIED", "bold red"), " (", plain(reason), ")")
        console.print(line, soft_wrap=True)
