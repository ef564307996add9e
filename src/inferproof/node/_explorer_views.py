"""What the explorer's pages show, as plain data: a receipt in rows, a log entry's
inclusion path, a found digest. No HTML here; the templates escape every value.

Every string in a bundle may be hostile: it is only ever handed to a template (which
escapes it) and cut to a length a page can hold.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._canonical import canonical_json, sha256_digest
from ..errors import Error
from ..log import Checkpoint, Log, Note, TlogProof, hash_children, hash_leaf, verify_inclusion
from ..proofs import is_chat_receipt, is_embedding_receipt
from ..receipts import Bundle, Receipt, envelope_payload, parse_statement
from ..runtime import describe_tensors

__all__ = ["SCAN_ENTRIES", "Step", "entry_receipt", "find_in_log", "path_steps", "receipt_rows"]

# A digest search reads at most this many of the newest log entries (about 2 KB each):
# the log keeps no index by digest, and a page must stay cheap.
SCAN_ENTRIES = 10_000
_SCAN_BATCH = 256
# Tensors up to this many values are shown whole; larger ones by their first values.
_SHOWN_VALUES = 16

Row = tuple[str, str]


def receipt_rows(receipt: Receipt, bundle: Bundle | None) -> list[Row]:
    """The receipt in human form: what it claims (the checks say which claims held)."""
    m = receipt.model
    chat, embedding = is_chat_receipt(receipt), is_embedding_receipt(receipt)
    kind = "embedding" if embedding else "chat" if chat else "tensor"
    rows: list[Row] = [
        ("model", f"{m.get('name')}:{m.get('version')} ({m.get('format') or 'onnx'})"),
        ("model digest", str(m.get("digest"))),
        ("publisher", _publisher(m)),
        ("kind", f"{kind}, mode {receipt.parameters.get('mode')}"),
    ]
    rows += _input_rows(receipt, bundle, kind) + _output_rows(receipt, bundle, kind)
    rt, env = receipt.runtime, receipt.environment
    backed = "hardware-backed (claimed)" if env.get("hardware_backed") else "not hardware-backed"
    rows += [
        ("nonce", receipt.nonce if receipt.nonce is not None else "none"),
        ("node", receipt.node_id),
        ("started", receipt.started),
        ("finished", receipt.finished),
        ("runtime", " ".join(str(rt[k]) for k in ("engine", "version", "machine") if rt.get(k))),
        ("environment", f"{env.get('type')}, {backed}"),
        ("proofs", ", ".join(str(p.get("type")) for p in receipt.proofs) or "none"),
    ]
    return rows


def _publisher(m: dict[str, Any]) -> str:
    if not m.get("signature"):
        return "unsigned"
    # The receipt's publisher field is the node's word; the model.signature check says more.
    return f"signature {m['signature']} by {m.get('publisher') or 'a key the node did not trust'}"


def _input_rows(receipt: Receipt, bundle: Bundle | None, kind: str) -> list[Row]:
    label = "input" if kind == "tensor" else "request"
    if receipt.input_commitment is not None:
        return [(label, f"private: committed ({receipt.input_commitment})")]
    inputs = bundle.inputs if bundle is not None else None
    if not isinstance(inputs, dict):
        return [(label, f"{receipt.input_digest} (only its digest here)")]
    if kind == "tensor":
        lines = describe_tensors(inputs, _SHOWN_VALUES)
        return [(f"{label} {name}", text) for name, text in lines]
    if isinstance(inputs.get("messages"), list):
        return [(f"{label} {_get(msg, 'role')}", str(_get(msg, "content")))
                for msg in inputs["messages"]]  # fmt: skip
    if "prompt" in inputs:
        return [(f"{label} prompt", str(inputs["prompt"]))]
    return [(f"{label} texts", json.dumps(inputs.get("input")))]


def _output_rows(receipt: Receipt, bundle: Bundle | None, kind: str) -> list[Row]:
    label = "output" if kind == "tensor" else "answer"
    outputs = bundle.outputs if bundle is not None else None
    if not outputs or not isinstance(outputs, dict):
        # No answer here: a private receipt keeps it with its caller.
        return [(label, f"{receipt.output_digest} (only its digest here)")]
    if kind == "tensor":
        return [
            (f"{label} {name}", text) for name, text in describe_tensors(outputs, _SHOWN_VALUES)
        ]
    if kind == "embedding":
        params = receipt.parameters
        return [(label, f"{params.get('count')} x {params.get('dimensions')} float32")]
    return [(label, str(outputs.get("text"))), ("finish", str(outputs.get("finish_reason")))]


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else obj


def log_row(bundle: Bundle) -> tuple[int | None, str]:
    """The bundle's log entry as it claims it: (index, text)."""
    if bundle.tlog_entry is None:
        return None, "none (not logged)"
    try:
        proof = TlogProof.parse(bundle.tlog_entry)
        cp = Checkpoint.parse(Note.parse(proof.checkpoint).text)
    except Error as exc:
        return None, f"malformed: {exc}"
    return proof.index, f"index {proof.index} in {cp.origin}, checkpoint size {cp.size}"


def receipt_digest(bundle: Bundle) -> str:
    return sha256_digest(canonical_json(bundle.envelope))


def entry_receipt(entry: bytes) -> Receipt | None:
    """The receipt a log entry holds (its envelope's statement), or None when the
    entry is something else (an agent run's record) or unreadable."""
    try:
        return parse_statement(envelope_payload(json.loads(entry)))
    except (Error, ValueError, KeyError, TypeError):
        return None


def find_in_log(log: Log, digest: str) -> int | None:
    """The index of the entry whose sha256 is ``digest``, among the newest
    :data:`SCAN_ENTRIES` entries (newest first), or None."""
    want = digest.removeprefix("sha256:")
    end = log.size
    stop = max(0, end - SCAN_ENTRIES)
    while end > stop:
        start = max(stop, end - _SCAN_BATCH)
        entries = log.store.read_entries(start, end)
        for offset in range(len(entries) - 1, -1, -1):
            if hashlib.sha256(entries[offset]).hexdigest() == want:
                return start + offset
        end = start
    return None


# The most entries one search lists: a page of results, never a dump of the log.
MAX_MATCHES = 50


def search_log(log: Log, match: Callable[[Receipt], bool]) -> list[tuple[int, Receipt]]:
    """The receipts among the newest :data:`SCAN_ENTRIES` log entries that ``match``,
    newest first, at most :data:`MAX_MATCHES`. Log entries are public (anyone may
    fetch them by index), so this lists entries, never bundles."""
    found: list[tuple[int, Receipt]] = []
    end = log.size
    stop = max(0, end - SCAN_ENTRIES)
    while end > stop and len(found) < MAX_MATCHES:
        start = max(stop, end - _SCAN_BATCH)
        entries = log.store.read_entries(start, end)
        for offset in range(len(entries) - 1, -1, -1):
            receipt = entry_receipt(entries[offset])
            if receipt is not None and match(receipt):
                found.append((start + offset, receipt))
                if len(found) == MAX_MATCHES:
                    break
        end = start
    return found


@dataclass(frozen=True)
class Step:
    """One level of an inclusion path: the sibling hash and the hash it yields."""

    level: int
    side: str  # where the sibling sits: "left" or "right"
    sibling: str
    result: str


def path_steps(log: Log, index: int, size: int) -> tuple[str, list[Step], str, bool]:
    """Entry ``index``'s path to the root of the tree of ``size``: the leaf hash, each
    level's sibling and result (RFC 9162 section 2.1.3.2, the order the library's
    verify_inclusion folds them), the root, and whether the library's check passed."""
    proof = log.inclusion_proof(index, size)
    root = log.root(size)
    leaf = hash_leaf(log.entry(index))
    fn, sn, r, steps = index, size - 1, leaf, []
    for level, p in enumerate(proof):
        if fn & 1 or fn == sn:
            r, side = hash_children(p, r), "left"
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r, side = hash_children(r, p), "right"
        fn, sn = fn >> 1, sn >> 1
        steps.append(Step(level, side, _b64(p), _b64(r)))
    try:
        verify_inclusion(leaf, index, size, proof, root)
        ok = True
    except Error:
        ok = False
    return _b64(leaf), steps, _b64(root), ok


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
