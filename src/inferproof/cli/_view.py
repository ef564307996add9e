"""What a receipt says, for people: one summary (a JSON-ready dict) of a bundle or of
a bare log entry, and its rendering as a table.

The summary only reads: what it shows is what the receipt *claims*; the checks that
follow it (``print_report``) say which claims held. Every string in it may come
from a hostile bundle, so the table shows them as plain text (never Rich markup)
with control characters escaped (a terminal would obey an escape sequence).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from .._canonical import canonical_json, sha256_digest
from ..errors import Error
from ..log import Checkpoint, Note, TlogProof
from ..proofs import is_chat_receipt, is_embedding_receipt
from ..receipts import Bundle, Receipt
from ..runtime import describe_tensors
from ._common import console

__all__ = ["bundle_summary", "log_entry", "plain", "print_summary", "receipt_summary"]

# C0 and C1 control characters (ESC starts terminal escape sequences), DEL, and the
# Unicode bidirectional overrides, which can make text read otherwise than it is.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# What the summary shows of the receipt's model block (chat receipts add the last two).
_MODEL_KEYS = ("name", "version", "digest", "format", "signature", "publisher", "architecture",
               "chat_template")  # fmt: skip
# Tensors up to this many values are shown whole; larger ones by their first values.
_SHOWN_VALUES = 16


def plain(text: object) -> Text:
    """``text`` as inert terminal text: no markup, control characters made visible."""
    return Text(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text)))


def receipt_summary(receipt: Receipt, bundle: Bundle | None = None) -> dict[str, Any]:
    """The receipt's claims; with its ``bundle``, also the request and answer it carries."""
    chat = is_chat_receipt(receipt)
    if is_embedding_receipt(receipt):
        return _embedding_summary(receipt, bundle)
    model = receipt.model
    return {
        "kind": str(receipt.parameters.get("task", "chat")) if chat else "tensor",
        "mode": receipt.parameters.get("mode"),
        "model": {key: model.get(key) for key in _MODEL_KEYS if key in model},
        "input": _input(receipt, bundle, chat),
        "output": _output(receipt, bundle, chat),
        **_where_and_how(receipt),
    }


def _where_and_how(receipt: Receipt) -> dict[str, Any]:
    """What every receipt's summary ends with: nonce, node, times, runtime, environment,
    proofs."""
    return {
        "nonce": receipt.nonce,
        "node": receipt.node_id,
        "time": {"started": receipt.started, "finished": receipt.finished},
        "runtime": {k: receipt.runtime.get(k) for k in ("engine", "version", "machine")},
        "environment": {
            "type": receipt.environment.get("type"),
            "hardware_backed": receipt.environment.get("hardware_backed"),
        },
        "proofs": [str(p.get("type")) for p in receipt.proofs],
    }


def _embedding_summary(receipt: Receipt, bundle: Bundle | None) -> dict[str, Any]:
    """An embedding receipt: the texts asked about and the vectors' shape."""
    private = receipt.input_commitment is not None
    inputs = bundle.inputs if bundle is not None else None
    outputs = bundle.outputs if bundle is not None else {}
    vectors = outputs.get("embeddings") if isinstance(outputs, dict) else None
    params = receipt.parameters
    return {
        "kind": "embedding",
        "mode": params.get("mode"),
        "model": {key: receipt.model.get(key) for key in _MODEL_KEYS if key in receipt.model},
        "input": {"private": True, "commitment": receipt.input_commitment}
        if private
        else {
            "private": False,
            "digest": receipt.input_digest,
            "texts": (inputs or {}).get("input"),
        },
        "output": {
            "digest": receipt.output_digest,
            "private": private,
            "vectors": f"{params.get('count')} x {params.get('dimensions')} float32"
            if vectors is not None or not private
            else None,
            "usage": params.get("usage"),
        },
        **_where_and_how(receipt),
    }


def bundle_summary(bundle: Bundle) -> dict[str, Any]:
    """:func:`receipt_summary` of a bundle, with its receipt digest and log entry."""
    return {
        "receipt_digest": sha256_digest(canonical_json(bundle.envelope)),
        **receipt_summary(bundle.receipt, bundle),
        "log": log_entry(bundle.tlog_entry),
    }


def log_entry(text: str | None) -> dict[str, Any] | None:
    """Index, origin and checkpoint size of a bundle's tlog-proof (as it claims them)."""
    if text is None:
        return None
    try:
        proof = TlogProof.parse(text)
        cp = Checkpoint.parse(Note.parse(proof.checkpoint).text)
    except Error as exc:
        return {"malformed": str(exc)}
    return {"index": proof.index, "origin": cp.origin, "checkpoint_size": cp.size}


def _input(receipt: Receipt, bundle: Bundle | None, chat: bool) -> dict[str, Any]:
    if receipt.input_commitment is not None:
        return {"private": True, "commitment": receipt.input_commitment}
    out: dict[str, Any] = {"private": False, "digest": receipt.input_digest}
    inputs = bundle.inputs if bundle is not None else None
    if inputs is None:
        return out
    if not chat:
        return {**out, "tensors": inputs}
    if "messages" in inputs:
        return {**out, "messages": inputs.get("messages")}
    return {**out, "prompt": inputs.get("prompt")}


def _output(receipt: Receipt, bundle: Bundle | None, chat: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"digest": receipt.output_digest}
    outputs = bundle.outputs if bundle is not None else {}
    if not outputs:
        # No answer in the bundle: a private receipt keeps it with its caller.
        committed = receipt.parameters.get("output") == "committed" or (
            chat and receipt.input_commitment is not None
        )
        return {**out, "private": committed}
    if not chat:
        return {**out, "private": False, "tensors": outputs}
    return {**out, "private": False, **{k: outputs.get(k) for k in ("text", "finish_reason")},
            "usage": outputs.get("usage")}  # fmt: skip


# -- rendering --------------------------------------------------------------------------
def print_summary(summary: dict[str, Any]) -> None:
    """The summary as a two-column table of plain text."""
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in _rows(summary):
        table.add_row(label, value if isinstance(value, Text) else plain(value))
    console.print(table)


def _rows(s: dict[str, Any]) -> list[tuple[str, Text | str]]:
    m = s["model"]
    rows: list[tuple[str, Text | str]] = []
    if "receipt_digest" in s:
        rows.append(("receipt", s["receipt_digest"]))
    rows += [
        ("model", f"{m.get('name')}:{m.get('version')} ({m.get('format') or 'onnx'})"),
        ("model digest", str(m.get("digest"))),
        ("publisher", _publisher(m)),
    ]
    if m.get("architecture"):
        rows.append(("architecture", f"{m['architecture']}, chat template "
                     f"{m.get('chat_template') or 'none'}"))  # fmt: skip
    rows += _input_rows(s["kind"], s["input"]) + _output_rows(s["kind"], s["output"])
    t, rt, env = s["time"], s["runtime"], s["environment"]
    rows += [
        ("kind", f"{s['kind']}, mode {s.get('mode')}"),
        ("nonce", str(s["nonce"]) if s["nonce"] is not None else "none"),
        ("node", str(s["node"])),
        ("time", f"{t['started']} to {t['finished']}{_took(t['started'], t['finished'])}"),
        ("runtime", " ".join(str(rt[k]) for k in ("engine", "version", "machine") if rt.get(k))),
        ("environment", _environment(env)),
        ("proofs", ", ".join(s["proofs"]) or "none"),
    ]
    if "log" in s:
        rows.append(("log entry", _log_row(s["log"])))
    return rows


def _environment(env: dict[str, Any]) -> str:
    # The node's own word: the environment check below says what backs it.
    backed = "hardware-backed (claimed)" if env["hardware_backed"] else "not hardware-backed"
    return f"{env['type']}, {backed}"


def _publisher(m: dict[str, Any]) -> str:
    if not m.get("signature"):
        return "unsigned"
    # The receipt's publisher field is the node's word; model.signature below checks it.
    who = m.get("publisher") or "a key the node did not trust"
    return f"signature {m['signature']} by {who} (see model.signature below)"


def _input_rows(kind: str, block: dict[str, Any]) -> list[tuple[str, Text | str]]:
    label = "input" if kind == "tensor" else "request"
    if block.get("private"):
        return [(label, f"private: committed ({block['commitment']})")]
    if "messages" in block:
        return [(f"{label} {_safe_get(msg, 'role')}", plain(_safe_get(msg, "content")))
                for msg in block["messages"] or []]  # fmt: skip
    if "prompt" in block:
        return [(f"{label} prompt", plain(block["prompt"]))]
    if "tensors" in block:
        return [
            (f"{label} {name}", text)
            for name, text in describe_tensors(block["tensors"], _SHOWN_VALUES)
        ]
    return [(label, f"{block.get('digest')} (only its digest here)")]


def _output_rows(kind: str, block: dict[str, Any]) -> list[tuple[str, Text | str]]:
    label = "output" if kind == "tensor" else "answer"
    if "text" in block:
        usage = block.get("usage") or {}
        tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        return [(label, plain(block["text"])),
                ("finish", f"{block.get('finish_reason')}, {tokens} tokens")]  # fmt: skip
    if "tensors" in block:
        return [
            (f"{label} {name}", text)
            for name, text in describe_tensors(block["tensors"], _SHOWN_VALUES)
        ]
    if block.get("private"):
        return [(label, f"private: committed ({block['digest']})")]
    return [(label, f"{block['digest']} (only its digest here)")]


def _safe_get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else obj


def _took(started: str, finished: str) -> str:
    try:
        took = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
    except (TypeError, ValueError):
        return ""
    return f" ({took.total_seconds() * 1000:.1f} ms)"


def _log_row(log: dict[str, Any] | None) -> str:
    if log is None:
        return "none (not logged)"
    if "malformed" in log:
        return f"malformed: {log['malformed']}"
    return f"index {log['index']} in {log['origin']}, checkpoint size {log['checkpoint_size']}"
