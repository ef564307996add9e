"""``inferproof workflow ...``: scheduled, verifiable inference on data feeds.

Every command works on the embedded home, or on a node with ``--node URL``. Runs
happen in whatever process runs the scheduler: ``inferproof workflow serve`` in the
foreground, or ``inferproof serve`` (the node runs its workflows).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ..errors import InputError
from ._common import EXIT_VERIFY_FAILED, console, err_console, fail, handle_errors
from ._view import plain

__all__ = ["workflow_app"]

workflow_app = typer.Typer(
    help="Scheduled inference on data feeds: every run signed, logged and chained.",
    no_args_is_help=True,
)
NodeOpt = Annotated[
    str | None, typer.Option("--node", help="A node's URL (default: the embedded home).")
]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="INFERPROOF_TOKEN")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
FeedsOpt = Annotated[
    Path | None,
    typer.Option("--feeds-dir", help="Folder file feeds are read from (default: HOME/feeds)."),
]


@contextlib.contextmanager
def _local(feeds_dir: Path | None = None) -> Iterator[Any]:
    from ..engine import LocalNode
    from ..workflows import FeedPolicy, open_workflows

    with LocalNode() as node:
        policy = FeedPolicy(root=feeds_dir or node.home.root / "feeds")
        with open_workflows(node, policy=policy) as wf:
            yield wf


@contextlib.contextmanager
def _remote(node: str, token: str | None) -> Iterator[Any]:
    from ..client import Client

    with Client(node, token=token) as client:
        yield client


def _alerts(alert: list[str], webhook: list[str]) -> tuple[Any, ...]:
    from ..workflows import AlertSpec

    if webhook and len(webhook) not in (1, len(alert)):
        raise InputError("give one --webhook for all alerts, or one per --alert, in order")
    hooks: list[str | None] = list(webhook * len(alert) if len(webhook) == 1 else webhook)
    hooks = hooks or [None] * len(alert)
    return tuple(AlertSpec(a, h) for a, h in zip(alert, hooks, strict=True))


@workflow_app.command("create")
@handle_errors
def create(
    name: Annotated[str, typer.Argument(help="The workflow's name.")],
    model: Annotated[str, typer.Option("--model", help="A hub model (name[:version]).")],
    feed: Annotated[
        str, typer.Option("--feed", help="An http(s) URL or a file under the feeds folder.")
    ],
    columns: Annotated[str, typer.Option("--columns", help="Feed columns, comma-separated.")],
    every: Annotated[str | None, typer.Option("--every", help="60s, 5m, 1h ...")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help='UTC, e.g. "*/5 * * * *".')] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339 end time.")] = None,
    window: Annotated[int, typer.Option("--window", help="Rows per run.")] = 1,
    normalise: Annotated[str, typer.Option("--normalise", help="none|zscore|minmax")] = "none",
    input_name: Annotated[
        str | None, typer.Option("--input", help="Model input (default: its only one).")
    ] = None,
    alert: Annotated[
        list[str], typer.Option("--alert", help='e.g. "output.prob > 0.8" (repeatable).')
    ] = [],  # noqa: B006 (typer reads the default)
    webhook: Annotated[
        list[str], typer.Option("--webhook", help="POST firing alerts here (signed).")
    ] = [],  # noqa: B006
    signature: Annotated[
        str | None, typer.Option("--feed-signature", help="ed25519|ecdsa-p256|note")
    ] = None,
    key: Annotated[str | None, typer.Option("--feed-key", help="The feed signer's key.")] = None,
    no_probe: Annotated[
        bool, typer.Option("--no-probe", help="Do not fetch the feed to check it now.")
    ] = False,
    feeds_dir: FeedsOpt = None,
    node: NodeOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create a workflow: refused with the reason if the feed, query or alerts do not
    fit the model."""
    from ..workflows import FeedSpec, Query, Schedule, parse_every

    spec = FeedSpec.parse(feed, signature=signature, key=key)
    schedule = Schedule(None if every is None else parse_every(every), cron, until)
    schedule.check()
    cols = tuple(c.strip() for c in columns.split(",") if c.strip())
    alerts = _alerts(alert, webhook)
    if node is not None:
        with _remote(node, token) as client:
            query = Query(input_name or _only_input(client.model(model)), cols, window, normalise)
            made = client.create_workflow(name, model, spec, query, schedule, alerts)
            digest = made.definition.digest
    else:
        with _local(feeds_dir) as wf:
            record, _ = wf.node.resolve(model)
            if record is None:
                raise InputError(f"no model {model!r:.80} in the hub")
            query = Query(input_name or _only_input(record), cols, window, normalise)
            d = wf.create(name, model, spec, query, schedule, alerts, probe=not no_probe)
            digest = d.digest
    console.print(f"workflow {name} created: definition {digest}", soft_wrap=True)
    if node is None:
        err_console.print("runs happen while a scheduler runs: inferproof workflow serve "
                          "(or inferproof serve)")  # fmt: skip


def _only_input(record: Any) -> str:
    names = [s.name for s in record.inputs]
    if len(names) != 1:
        raise InputError(f"the model takes {names}: name one with --input")
    return str(names[0])


@workflow_app.command("list")
@handle_errors
def list_(node: NodeOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List workflows: state, runs so far, the last run's status, the next run."""
    if node is not None:
        with _remote(node, token) as client:
            infos = [i.to_json() for i in client.workflows()]
    else:
        with _local() as wf:
            infos = [i.to_json() for i in wf.list()]
    if as_json:
        console.print_json(json.dumps(infos))
        return
    table = Table(title="workflows")
    for col in ("name", "state", "model", "schedule", "runs", "last", "next run"):
        table.add_column(col)
    for i in infos:
        d = i["definition"]
        sched = d["schedule"]
        when = f"every {sched['every']:g}s" if "every" in sched else f"cron {sched['cron']}"
        table.add_row(i["name"], i["state"], d["model"]["ref"], when, str(i["runs"]),
                      i["last_status"] or "-", i["next_run"] or "-")  # fmt: skip
    console.print(table)


@workflow_app.command("show")
@handle_errors
def show(name: str, node: NodeOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Show a workflow's definition (with its digest) and state."""
    if node is not None:
        with _remote(node, token) as client:
            info = client.workflow(name).to_json()
    else:
        with _local() as wf:
            info = wf.info(name).to_json()
    if as_json:
        console.print_json(json.dumps(info))
        return
    console.print(f"workflow {name}: {info['state']}, {info['runs']} run(s), "
                  f"next {info['next_run'] or '-'}")  # fmt: skip
    console.print(f"definition {info['digest']}")
    console.print_json(json.dumps(info["definition"]))


def _simple(action: str, name: str, node: str | None, token: str | None) -> None:
    if node is not None:
        with _remote(node, token) as client:
            getattr(client, f"{action}_workflow")(name)
    else:
        with _local() as wf:
            getattr(wf, action)(name)
    console.print(f"workflow {name}: {action.removesuffix('e')}ed")


@workflow_app.command("pause")
@handle_errors
def pause(name: str, node: NodeOpt = None, token: TokenOpt = None) -> None:
    """Stop scheduling a workflow's runs (its history stays)."""
    _simple("pause", name, node, token)


@workflow_app.command("resume")
@handle_errors
def resume(name: str, node: NodeOpt = None, token: TokenOpt = None) -> None:
    """Schedule a paused workflow again (ticks while paused are not run)."""
    _simple("resume", name, node, token)


@workflow_app.command("delete")
@handle_errors
def delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    node: NodeOpt = None,
    token: TokenOpt = None,
) -> None:
    """Delete a workflow, its schedule and stored runs (export its history first)."""
    if not yes and not typer.confirm(f"delete workflow {name} and its stored history?"):
        fail("not deleted")
    _simple("delete", name, node, token)


@workflow_app.command("run")
@handle_errors
def run(
    name: str, feeds_dir: FeedsOpt = None, node: NodeOpt = None, token: TokenOpt = None
) -> None:
    """Run a workflow once now, off schedule, on the same chain."""
    if node is not None:
        with _remote(node, token) as client:
            verified = client.run_workflow(name)  # verified before it is handed over
        console.print(f"{name} run {verified.run}: {verified.status} (receipt verified)")
        return
    with _local(feeds_dir) as wf:
        result = wf.run_now(name)
    if result is None:
        fail(f"workflow {name} is paused or a run is still going")
    _print_run(name, result)


def _print_run(name: str, r: Any) -> None:
    status = "[green]ok[/]" if r.ok else f"[red]failed[/]: {r.reason}"
    alerts = f"  [yellow]alert: {', '.join(r.fired)}[/]" if r.fired else ""
    outputs = ""
    for k, v in (r.outputs or {}).items():
        flat = [f"{x:.4g}" for x in v.ravel()[:4].tolist()]
        outputs += f" {k}={','.join(flat)}{'…' if v.size > 4 else ''}"
    when = r.planned[11:19] if r.planned[10:11] == "T" else r.planned
    console.print(f"{name} run {r.run} (tick {when}): {status}{outputs}{alerts}")


@workflow_app.command("serve")
@handle_errors
def serve(feeds_dir: FeedsOpt = None) -> None:
    """Run the embedded home's workflows on schedule in the foreground (Ctrl-C stops)."""
    with _local(feeds_dir) as wf:
        wf.subscribe(_print_run)
        wf.start()
        names = [i.definition.name for i in wf.list() if i.state == "active"]
        err_console.print(f"scheduling {len(names)} active workflow(s): {', '.join(names) or '-'}"
                          " (Ctrl-C stops)")  # fmt: skip
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


def _history(name: str, node: str | None, token: str | None) -> Any:
    if node is not None:
        with _remote(node, token) as client:
            return client.workflow_history(name)
    with _local() as wf:
        return wf.history(name)


@workflow_app.command("history")
@handle_errors
def history(
    name: str, node: NodeOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Every stored run: number, status, alerts, receipt digest."""
    h = _history(name, node, token)
    rows = [_entry_row(e) for e in h.entries]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"workflow {name}: {len(rows)} run(s)")
    for col in ("run", "status", "when", "entry digest", "detail"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["run"]), r["status"], r["time"] or "-", r["digest"][:23] + "…",
                      (r["reason"] or "")[:60])  # fmt: skip
    console.print(table)


def _entry_row(entry: Any) -> dict[str, Any]:
    fields, reason = entry.workflow()
    when = entry.bundle.receipt.finished if entry.bundle is not None else None
    return {"run": fields.get("run"), "status": "ok" if reason is None else "failed",
            "time": when, "digest": entry.digest, "previous": fields.get("previous"),
            "reason": reason}  # fmt: skip


@workflow_app.command("export")
@handle_errors
def export(
    name: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="The history file to write.")],
    node: NodeOpt = None,
    token: TokenOpt = None,
) -> None:
    """Write a workflow's history (definition and every signed run) to a file."""
    h = _history(name, node, token)
    output.write_text(json.dumps(h.to_json(), indent=1) + "\n")
    console.print(f"{output}: {len(h.entries)} run(s) of workflow {name}")


@workflow_app.command("verify")
@handle_errors
def verify(
    name: Annotated[str | None, typer.Argument(help="A workflow (or give --file).")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="An exported history.")] = None,
    archive: Annotated[
        Path | None,
        typer.Option(
            "--feed-archive",
            help="Feed payloads to re-check each run's input from (default: HOME/feed-archive).",
        ),
    ] = None,
    node: NodeOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a history: every run's signature and log inclusion, one definition, the
    chain (no run skipped, reordered, repeated or forged), and, where the feed's bytes
    are at hand, each run's input re-checked from them (digest, signature, tensors)."""
    from ..engine import LocalNode
    from ..verify import RunVerifier, Verifier
    from ..workflows import History, archive_reader, audit_verifier, verify_history

    if (name is None) == (file is None):
        raise InputError("give a workflow name or --file HISTORY")
    h = History.parse(file.read_bytes()) if file is not None else _history(str(name), node,
                                                                          token)  # fmt: skip
    if node is not None:
        # The node's pinned trust root; the node's own opinion of its history is not asked.
        with _remote(node, token) as client:
            audit = RunVerifier.for_audit(Verifier(client.trust_root())).verifier
            payloads = None if archive is None else archive_reader(archive)
            report = verify_history(h, audit, payloads)
    else:
        with LocalNode() as local:
            folder = archive or local.home.root / "feed-archive"
            report = verify_history(h, audit_verifier(local), archive_reader(folder))
    _print_report(h, report, as_json)
    if not report.verified:
        bad = report.first_failure
        fail(f"history NOT verified: {bad.name}: {bad.detail}" if bad else "history NOT verified",
             EXIT_VERIFY_FAILED)  # fmt: skip


def _print_report(h: Any, report: Any, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps({
            "workflow": h.name, "verified": report.verified,
            "checks": [c.to_json() for c in report.checks],
            "runs": [{"run": r, "kind": k, "verified": ok, "detail": d}
                     for r, k, ok, d in report.runs]}))  # fmt: skip
        return
    for run_no, kind, ok, detail in report.runs:
        # Details quote the history file (a check's detail names its values): plain
        # text, never markup, as the receipt view prints them (cli/_view.plain).
        mark = ("verified", "green") if ok else ("FAILED", "red")
        console.print(Text.assemble(f"run {run_no}: {kind} ", mark, " (", plain(detail), ")"))
    for c in report.checks:
        mark = {"passed": ("passed", "green"), "failed": ("FAILED", "red")}.get(
            c.status.value, ("not checked", "yellow"))  # fmt: skip
        console.print(Text.assemble(plain(c.name), ": ", mark, " ", plain(c.detail)))
    verdict = "[green]VERIFIED[/]" if report.verified else "[red]NOT VERIFIED[/]"
    console.print(f"workflow {h.name}: {len(h.entries)} run(s): {verdict}")
