"""``inferproof model list`` and ``model show``: people get tables, ``--json`` machines.

For a GGUF model in the local hub, ``show`` also reads the file's header (architecture,
context length, chat template digest) with the runtime's own parser. The header is
read for display only, without re-hashing a file that may be gigabytes: every run of
the model checks its bytes against the digest.
"""

from __future__ import annotations

import json
import mmap
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from ..engine import LocalNode
from ..errors import Error
from ..hub import ModelRecord
from ..runtime import gguf_signature
from ._common import console, handle_errors
from ._node import NodeOpt, node_client
from ._view import plain

__all__ = ["model_list", "model_show"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
_MB = 1_000_000


def _megabytes(size: int) -> str:
    if size >= _MB:
        return f"{size / _MB:.1f} MB"
    return f"{size / 1000:.1f} kB" if size >= 1000 else f"{size} B"


def _when(seconds: float, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    return time.strftime(fmt, time.gmtime(seconds))


def _signed(r: ModelRecord) -> str:
    return "verified" if r.publisher else ("unverified" if r.signature_digest else "no")


@handle_errors
def model_list(node_url: NodeOpt = None, as_json: JsonOpt = False) -> None:
    """List the models in the hub (or on a node)."""
    if node_url:
        with node_client(node_url) as client:
            records = client.models()
    else:
        records = LocalNode().hub.list()
    if as_json:
        console.print_json(json.dumps([r.to_json() for r in records]))
        return
    # Borderless, as `docker image ls` is: an 80-column terminal keeps the names whole.
    table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold")
    for column in ("name", "version", "format"):
        table.add_column(column, overflow="fold")
    for column in ("size", "created", "signed", "digest"):
        table.add_column(column, no_wrap=True)
    for r in records:
        # Names come from whoever pushed: plain text, never markup.
        table.add_row(plain(r.name), plain(r.version), plain(r.format), _megabytes(r.size),
                      _when(r.created_at, "%Y-%m-%d"), _signed(r), r.digest[:19] + "…")  # fmt: skip
    console.print(table)


@handle_errors
def model_show(
    ref: Annotated[str, typer.Argument(help="NAME[:VERSION] or sha256:DIGEST")],
    node_url: NodeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one model: digest, format, size, signature, tensors or GGUF header."""
    header: dict[str, Any] | None = None
    if node_url:
        with node_client(node_url) as client:
            record = client.model(ref)
    else:
        node = LocalNode()
        record = node.hub.resolve(ref)
        header = _gguf_header(node, record) if record.format == "gguf" else None
    if as_json:
        doc = record.to_json() | ({"gguf": header} if header is not None else {})
        console.print_json(json.dumps(doc))
        return
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in _rows(record, header):
        table.add_row(label, plain(value))
    console.print(table)


def _rows(r: ModelRecord, header: dict[str, Any] | None) -> list[tuple[str, str]]:
    rows = [
        ("name", f"{r.name}:{r.version}"),
        ("digest", r.digest),
        ("format", r.format),
        ("size", f"{_megabytes(r.size)} ({r.size} bytes)"),
        ("created", _when(r.created_at)),
        ("signature", r.signature_digest or "none"),
        ("publisher", r.publisher or ("not a trusted key" if r.signature_digest else "none")),
    ]
    rows += [(f"input {t.name}", _spec(t.to_json())) for t in r.inputs]
    rows += [(f"output {t.name}", _spec(t.to_json())) for t in r.outputs]
    if header is not None and "unreadable" in header:
        rows.append(("gguf header", f"unreadable: {header['unreadable']}"))
    elif header is not None:
        rows += [
            ("architecture", str(header.get("architecture"))),
            ("context length", str(header.get("context_length"))),
            ("chat template", str(header.get("chat_template") or "none (the file has none)")),
            ("tokenizer", f"{header.get('tokenizer')}, {header.get('vocab_size')} tokens"),
            ("tensors", str(header.get("tensor_count"))),
        ]
    elif r.format == "gguf":
        rows.append(("gguf header", "read from the local hub only (not with --node)"))
    return rows


def _spec(spec: dict[str, Any]) -> str:
    dims = ["?" if d is None else str(d) for d in spec.get("shape") or []]
    return f"{spec.get('dtype')}[{', '.join(dims)}]"


def _gguf_header(node: LocalNode, record: ModelRecord) -> dict[str, Any] | None:
    """The GGUF header's facts (:func:`gguf_signature`), read through a memory map."""
    path = node.hub.blobs.path(record.digest)
    if path is None:
        return None
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return gguf_signature(data)
    except (Error, OSError, ValueError) as exc:
        return {"unreadable": str(exc)}
