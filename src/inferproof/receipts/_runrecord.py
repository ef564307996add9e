"""The run record: every model call of one agent run, in order, signed and logged.

An agent run (an MCP session, a LangChain run) makes model calls, each with its own
receipt. The run record lists their receipt digests in call order, each linked to
the one before by a hash chain::

    link[0] = sha256(prefix || JCS({"index": 0, "previous": null,    "receipt": r0, "run": id}))
    link[i] = sha256(prefix || JCS({"index": i, "previous": link[i-1], "receipt": ri, "run": id}))

The node signs the chain as an in-toto statement of its own predicate type (so it
can never pass for an inference receipt, nor a receipt for it) whose subject is
the last link, and appends the envelope to its transparency log. The record file
carries that envelope, its log proof, and the bundle of every call. Because the
signed statement fixes the count, the order and every receipt digest, a call
dropped, reordered or inserted after signing, or a bundle swapped for another,
no longer matches (``verify/_runcheck.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._canonical import canonical_json, check_digest, parse_json, sha256_digest
from ..errors import InputError
from ._bundle import Bundle
from ._dsse import envelope_payload
from ._statement import STATEMENT_TYPE, statement_parts

RUN_PREDICATE_TYPE = "https://inferproof.dev/run-record/v1"
RUN_RECORD_MEDIA_TYPE = "application/vnd.inferproof.run-record.v1+json"
# A run of an agent is tens to hundreds of calls; this bounds what a verifier loads.
MAX_RUN_CALLS = 10_000
MAX_RUN_RECORD_BYTES = 256 * 1024 * 1024
MAX_RUN_ID_CHARS = 128
MAX_TOOL_CHARS = 64
# Domain separation: a link is never the digest of anything else signed here.
_LINK_PREFIX = b"inferproof/run-link/v1\x00"
_RECORD_FIELDS = {"mediaType", "dsseEnvelope", "tlogEntry", "calls"}
_PREDICATE_FIELDS = {"run", "node", "calls", "time", "agent"}
_CALL_FIELDS = {"index", "tool", "receipt", "link"}


def chain_link(run_id: str, index: int, previous: str | None, receipt: str) -> str:
    """The link of call ``index``: its receipt digest bound to the run, its place
    and the link before it (module docs)."""
    body = {"index": index, "previous": previous, "receipt": receipt, "run": run_id}
    return "sha256:" + hashlib.sha256(_LINK_PREFIX + canonical_json(body)).hexdigest()


def chain(run_id: str, receipts: list[str]) -> list[str]:
    """Every link of a run whose calls have ``receipts``, in order."""
    links: list[str] = []
    for i, receipt in enumerate(receipts):
        links.append(chain_link(run_id, i, links[-1] if links else None, receipt))
    return links


def chain_head(run_id: str, links: list[str]) -> str:
    """The statement's subject: the last link, or for a run without calls a digest of
    the run id alone (domain-separated like the links)."""
    if links:
        return links[-1]
    return "sha256:" + hashlib.sha256(_LINK_PREFIX + canonical_json({"run": run_id})).hexdigest()


def receipt_digest(bundle: Bundle) -> str:
    """``sha256`` of the envelope's RFC 8785 bytes: a receipt's digest and log entry."""
    return sha256_digest(canonical_json(bundle.envelope))


@dataclass(frozen=True)
class RunCall:
    """One call as the signed statement lists it."""

    index: int
    tool: str
    receipt: str
    link: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "tool": self.tool, "receipt": self.receipt, "link": self.link}


@dataclass(frozen=True)
class RunStatement:
    """The typed predicate of a run-record statement."""

    statement: dict[str, Any]
    run_id: str
    node_id: str
    calls: tuple[RunCall, ...]
    started: str
    finished: str
    agent: dict[str, Any]
    subject: str  # the signed subject digest: the chain's head, if the links hold

    @property
    def head(self) -> str | None:
        """The last link (the statement's subject), None for a run without calls."""
        return self.calls[-1].link if self.calls else None


def check_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not 0 < len(run_id) <= MAX_RUN_ID_CHARS:
        raise InputError(f"run id must be 1 to {MAX_RUN_ID_CHARS} characters")
    if not run_id.isprintable():
        raise InputError("run id must be printable text")
    return run_id


def check_tool(tool: Any) -> str:
    if not isinstance(tool, str) or not 0 < len(tool) <= MAX_TOOL_CHARS or not tool.isprintable():
        raise InputError(f"a call's tool must be 1 to {MAX_TOOL_CHARS} printable characters")
    return tool


def build_run_statement(
    *,
    run_id: str,
    node_id: str,
    calls: list[tuple[str, str]],
    started: str,
    finished: str,
    agent: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The statement a node signs for a run whose calls are ``(tool, receipt digest)``."""
    check_run_id(run_id)
    if len(calls) > MAX_RUN_CALLS:
        raise InputError(f"a run record holds at most {MAX_RUN_CALLS} calls")
    receipts = [check_digest(r, "call receipt digest") for _, r in calls]
    links = chain(run_id, receipts)
    listed = [
        RunCall(i, check_tool(tool), receipts[i], links[i]).to_json()
        for i, (tool, _) in enumerate(calls)
    ]
    head = chain_head(run_id, links)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"run:{run_id}", "digest": {"sha256": head.split(":", 1)[1]}}],
        "predicateType": RUN_PREDICATE_TYPE,
        "predicate": {
            "run": run_id,
            "node": {"id": node_id},
            "calls": listed,
            "time": {"started": started, "finished": finished},
            "agent": agent or {},
        },
    }


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"run record {what} must be an object")
    return value


def parse_run_statement(payload: bytes) -> RunStatement:
    """Parse a run-record statement's canonical bytes and check its shape (the links
    are checked by the verifier, which reports a broken chain as a failed check)."""
    st = _obj(parse_json(payload, "run record statement", MAX_RUN_RECORD_BYTES), "statement")
    if canonical_json(st) != payload:
        raise InputError("run record statement is not in RFC 8785 canonical form")
    head, pred = statement_parts(st, RUN_PREDICATE_TYPE, "run record", "the chain's head")
    if set(pred) != _PREDICATE_FIELDS:
        raise InputError(f"run record predicate must hold exactly {sorted(_PREDICATE_FIELDS)}")
    raw = pred["calls"]
    if not isinstance(raw, list) or len(raw) > MAX_RUN_CALLS:
        raise InputError(f"run record calls must be a list of at most {MAX_RUN_CALLS}")
    calls = []
    for i, c in enumerate(raw):
        c = _obj(c, "call")
        if set(c) != _CALL_FIELDS or c["index"] != i or isinstance(c["index"], bool):
            raise InputError(f"run record call {i} must be exactly {sorted(_CALL_FIELDS)}")
        receipt = check_digest(c["receipt"], "call receipt digest")
        calls.append(RunCall(i, check_tool(c["tool"]), receipt, check_digest(c["link"], "link")))
    node = _obj(pred["node"], "node").get("id")
    times = _obj(pred["time"], "time")
    if not isinstance(node, str) or not all(
        isinstance(times.get(k), str) for k in ("started", "finished")
    ):
        raise InputError("run record node id and times must be strings")
    return RunStatement(
        st, check_run_id(pred["run"]), node, tuple(calls), times["started"], times["finished"],
        _obj(pred["agent"], "agent"), head,
    )  # fmt: skip


@dataclass(frozen=True)
class RunRecord:
    """A run record file: the node's signed chain, its log proof, each call's bundle.

    Example::

        record = RunRecord.read("run.json")
        print(record.statement.run_id, len(record.bundles))
        report = RunVerifier(verifier).check(record)    # inferproof.verify
    """

    envelope: dict[str, Any]
    statement: RunStatement
    bundles: tuple[Bundle, ...]
    tlog_entry: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": RUN_RECORD_MEDIA_TYPE,
            "dsseEnvelope": self.envelope,
            "calls": [b.to_json() for b in self.bundles],
        }
        if self.tlog_entry is not None:
            out["tlogEntry"] = self.tlog_entry
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    def write(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.dumps())

    @classmethod
    def from_json(cls, obj: Any) -> RunRecord:
        obj = _obj(obj, "file")
        if obj.get("mediaType") != RUN_RECORD_MEDIA_TYPE:
            raise InputError(f"not a run record (mediaType must be {RUN_RECORD_MEDIA_TYPE})")
        if unknown := set(obj) - _RECORD_FIELDS:
            raise InputError(f"run record has unknown field(s) {sorted(unknown)}")
        envelope = obj.get("dsseEnvelope")
        statement = parse_run_statement(envelope_payload(envelope))
        assert isinstance(envelope, dict)  # envelope_payload checked all of it
        calls = obj.get("calls")
        if not isinstance(calls, list) or len(calls) > MAX_RUN_CALLS:
            raise InputError(f"run record calls must be a list of at most {MAX_RUN_CALLS} bundles")
        entry = obj.get("tlogEntry")
        if entry is not None and not isinstance(entry, str):
            raise InputError("run record tlogEntry must be a string")
        bundles = []
        for i, b in enumerate(calls):
            try:
                bundles.append(Bundle.from_json(b))
            except InputError as exc:
                raise InputError(f"run record call {i}: {exc}") from None
        return cls(envelope, statement, tuple(bundles), entry)

    @classmethod
    def loads(cls, data: bytes | str) -> RunRecord:
        return cls.from_json(parse_json(data, "run record", MAX_RUN_RECORD_BYTES))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> RunRecord:
        """Read and check the shape of a run record file."""
        path = Path(path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"cannot read run record {path}: {exc.strerror}") from None
        if size > MAX_RUN_RECORD_BYTES:
            raise InputError(f"run record {path} is over {MAX_RUN_RECORD_BYTES} bytes")
        return cls.loads(path.read_bytes())
