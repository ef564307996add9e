"""``inferproof receipt show BUNDLE``: what a receipt says, then whether it holds.

A command of its own rather than ``verify --show``: ``verify``'s output (the check
table, or with ``--json`` the report alone) stays what scripts already read, while
``receipt show`` is for people first, and its ``--json`` holds both the summary and
the report. It takes every option ``verify`` takes, checks alike, and exits alike
(1 when the policy is not satisfied), so a shown receipt is never mistaken for a
verified one.
"""

from __future__ import annotations

import json

import typer

from ..receipts import Bundle
from ._common import EXIT_VERIFY_FAILED, console, handle_errors
from ._node import NodeOpt
from ._render import print_report
from ._verify import (
    BundleArg,
    Checking,
    DevSrsOpt,
    InputOpt,
    JsonOpt,
    ModelOpt,
    NonceOpt,
    OpeningOpt,
    PolicyOpt,
    SrsOpt,
    check_bundle,
)
from ._view import bundle_summary, print_summary

__all__ = ["receipt_app"]

receipt_app = typer.Typer(help="Receipts in human form.", no_args_is_help=True)


@receipt_app.command("show")
@handle_errors
def receipt_show(
    bundle_file: BundleArg,
    policy: PolicyOpt = None,
    model: ModelOpt = None,
    input_file: InputOpt = None,
    opening: OpeningOpt = None,
    nonce: NonceOpt = None,
    allow_dev_srs: DevSrsOpt = False,
    srs: SrsOpt = None,
    as_json: JsonOpt = False,
    node_url: NodeOpt = None,
) -> None:
    """Show a receipt (model, input or prompt, output or answer, node, times, mode,
    log entry), then every check as `inferproof verify` prints them.

    Exit 0 only when the policy holds, as `verify` does."""
    bundle = Bundle.read(bundle_file)
    how = Checking(policy, model, input_file, opening, nonce, allow_dev_srs, srs, node_url)
    report = check_bundle(bundle, how)
    summary = bundle_summary(bundle)
    if as_json:
        console.print_json(json.dumps({"receipt": summary, "report": report.to_json()}))
    else:
        print_summary(summary)
        console.print()
        print_report(report)
    if not report.verified:
        raise typer.Exit(EXIT_VERIFY_FAILED)
