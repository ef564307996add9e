"""The exported history file: a workflow's definition and every run's signed entry.

``application/vnd.inferproof.workflow-history.v1+json``::

    {"mediaType": ..., "workflow": NAME, "definition": {...},
     "runs": [{"bundle": {...}} | {"failure": {...}}, ...]}

Everything in it that matters is signed: the entries by the node (and logged), and
the definition by digest (every entry names it). :func:`verify_history` rebuilds the
definition's digest from the file and requires every run to name that digest, so an
edited definition is caught like an edited run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .._canonical import check_digest, parse_json
from .._checks import Check, CheckStatus, failed, not_checked, passed
from ..errors import InputError
from ..verify import Verifier
from ._chain import HistoryEntry, HistoryReport, check_history
from ._definition import Definition
from ._feeds import MAX_FEED_BYTES
from ._provenance import check_provenance

Payloads = Callable[[str], bytes | None]

__all__ = ["HISTORY_MEDIA_TYPE", "MAX_HISTORY_BYTES", "History", "archive_reader", "verify_history"]

HISTORY_MEDIA_TYPE = "application/vnd.inferproof.workflow-history.v1+json"
# A year of runs a minute is 525,600 entries of a few KiB: far below. The cap bounds
# what a verifier parses from a file someone handed it.
MAX_HISTORY_BYTES = 512 * 1024 * 1024
MAX_HISTORY_RUNS = 1_000_000


class History:
    """A parsed history file (module docs).

    Example::

        h = History.parse(open("risk.history.json", "rb").read())
        report = verify_history(h, node.verifier())
    """

    def __init__(self, definition: Definition, entries: Sequence[HistoryEntry]) -> None:
        self.definition = definition
        self.entries = tuple(entries)

    @property
    def name(self) -> str:
        return self.definition.name

    def to_json(self) -> dict[str, Any]:
        return {
            "mediaType": HISTORY_MEDIA_TYPE,
            "workflow": self.name,
            "definition": self.definition.to_json(),
            "runs": [e.to_json() for e in self.entries],
        }

    @classmethod
    def parse(cls, data: bytes) -> History:
        if len(data) > MAX_HISTORY_BYTES:
            raise InputError(f"a history file is at most {MAX_HISTORY_BYTES} bytes")
        obj = parse_json(data, "workflow history")
        if not isinstance(obj, dict) or set(obj) != {"mediaType", "workflow", "definition", "runs"}:
            raise InputError("a workflow history holds mediaType, workflow, definition and runs")
        if obj["mediaType"] != HISTORY_MEDIA_TYPE:
            raise InputError(f"not a workflow history (mediaType {obj['mediaType']!r:.80})")
        runs = obj["runs"]
        if not isinstance(runs, list) or len(runs) > MAX_HISTORY_RUNS:
            raise InputError(f"a history's runs are a list of at most {MAX_HISTORY_RUNS}")
        d = Definition.from_json(obj["definition"])
        if obj["workflow"] != d.name:
            raise InputError(f"the history names {obj['workflow']!r:.80} but its definition "
                             f"is {d.name!r}")  # fmt: skip
        return cls(d, [HistoryEntry.from_json(r) for r in runs])


def archive_reader(folder: Path) -> Payloads:
    """Feed payloads kept content-addressed in ``folder`` (``sha256-<hex>`` files, as
    the service's ``archive=`` writes them), read by digest, size-capped."""

    def read(digest: str) -> bytes | None:
        path = folder / check_digest(digest, "feed digest").replace(":", "-")
        if not path.is_file():
            return None
        with path.open("rb") as f:
            return f.read(MAX_FEED_BYTES + 1)[: MAX_FEED_BYTES + 1]

    return read


def verify_history(
    history: History, verifier: Verifier, payloads: Payloads | None = None
) -> HistoryReport:
    """:func:`check_history` plus: every run names the file's definition digest, and,
    with ``payloads`` (a feed digest to its bytes, e.g. :func:`archive_reader`), each
    run's provenance re-checked from the feed's own bytes (``workflow.provenance``)."""
    report = check_history(history.name, history.entries, verifier)
    digest = history.definition.digest
    bad = []
    for i, entry in enumerate(history.entries):
        try:
            fields, _ = entry.workflow()
        except InputError:
            continue  # already reported as workflow.entry
        if fields.get("definition") != digest:
            bad.append(i)
    if bad:
        check = failed("workflow.definition", f"entries {bad[:5]} name another definition "
                       f"than the file's ({digest})")  # fmt: skip
    else:
        check = passed("workflow.definition", f"every run names definition {digest}")
    checks = (*report.checks, check, _provenance(history, payloads))
    ok = all(c.status is not CheckStatus.FAILED for c in checks)
    return replace(report, verified=ok, checks=checks)


def _provenance(history: History, payloads: Payloads | None) -> Check:
    name = "workflow.provenance"
    if payloads is None:
        return not_checked(name, "no feed bytes given: each run's provenance is the node's "
                           "record (signed and committed, not re-checked)")  # fmt: skip
    done = missing = 0
    for entry in history.entries:
        if entry.bundle is None or "provenance" not in entry.bundle.proofs:
            continue
        fields, _ = entry.workflow()
        data = payloads(str(entry.bundle.proofs["provenance"].get("digest", "")))
        if data is None:
            missing += 1
            continue
        for c in check_provenance(entry.bundle, data):
            if c.status is CheckStatus.FAILED:
                return failed(name, f"run {fields.get('run')}: {c.name}: {c.detail}")
        done += 1
    if done == 0:
        return not_checked(name, f"none of the {missing} run(s) has its feed bytes here")
    more = f"; {missing} without their bytes here" if missing else ""
    return passed(name, f"{done} run(s) re-checked from the feed's bytes: digest, signature, "
                  f"tensors{more}")  # fmt: skip
