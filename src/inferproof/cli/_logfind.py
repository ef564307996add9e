"""``inferproof log get INDEX`` and ``log search``: read receipts back out of a log.

The log holds bytes (log/ knows no receipts); here an entry is read as what the node
appends: the RFC 8785 bytes of a receipt's DSSE envelope, so the entry's SHA-256 is
the receipt digest. Every entry shown is checked against a signed checkpoint first:
locally by an inclusion proof from the log's own tree, with ``--node`` through the
node's public tiles (the checkpoint signed by the pinned log key and consistent with
every checkpoint this machine saw before, each entry by its tile hashes).

A search scans the whole log (like ``rekor-cli search``, but without a server-side
index: the log indexes nothing), matching on the statement each entry carries. It
shows what the node logged; a found receipt's bundle says, with ``verify``, what holds.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from .._canonical import check_digest, is_digest, parse_json, sha256_digest
from ..client import Client
from ..errors import Error, InputError, VerificationError
from ..log import (
    Log,
    SignedCheckpoint,
    TileClient,
    TlogProof,
    b64encode,
    consistency_proof,
    hash_leaf,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from ..receipts import BUNDLE_MEDIA_TYPE, Bundle, Receipt
from ._common import console, handle_errors
from ._node import NodeOpt
from ._storage import home_log
from ._view import plain, print_summary, receipt_summary

__all__ = [
    "entry_receipt",
    "log_get",
    "log_search",
    "node_consistency",
    "node_info",
    "node_proof",
]

# A log entry is at most this large (the log's own cap on entries is 1 MiB).
_MAX_ENTRY = 1024 * 1024
# Entries read from the local store per query while scanning.
_SCAN_BATCH = 256
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@dataclass(frozen=True)
class Entry:
    """A log entry whose inclusion in ``checkpoint``'s tree was verified."""

    index: int
    data: bytes
    proof: tuple[bytes, ...]
    checkpoint: SignedCheckpoint


def entry_receipt(data: bytes) -> Receipt | None:
    """The receipt statement an entry holds, or None for an entry of other bytes."""
    try:
        envelope = parse_json(data, "log entry", _MAX_ENTRY)
        # The bundle parser is the one parser of envelopes: a bundle of just the envelope.
        shell = {"mediaType": BUNDLE_MEDIA_TYPE, "dsseEnvelope": envelope, "outputs": {}}
        return Bundle.from_json(shell).receipt
    except InputError:
        return None


# -- where entries come from --------------------------------------------------------------
def _local_entry(log: Log, cp: SignedCheckpoint, index: int, data: bytes | None = None) -> Entry:
    if not 0 <= index < cp.size:
        raise InputError(f"index {index} is outside the log of size {cp.size}")
    data = log.entry(index) if data is None else data
    proof = tuple(log.inclusion_proof(index, cp.size))
    verify_inclusion(hash_leaf(data), index, cp.size, proof, cp.root_hash)
    return Entry(index, data, proof, cp)


def _local_scan(log: Log, cp: SignedCheckpoint) -> Iterator[tuple[int, bytes]]:
    for start in range(0, cp.size, _SCAN_BATCH):
        end = min(start + _SCAN_BATCH, cp.size)
        yield from enumerate(log.store.read_entries(start, end), start)


class _NodeLog:
    """A node's log through its public tiles, checked against its pinned log key."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        with Client(url) as client:  # pins the node on first use; remembers checkpoints
            self.checkpoint = client.checkpoint()
            key = client.trust_root().log_keys.get(self.checkpoint.origin)
        if key is None:
            raise VerificationError("log.checkpoint_signature", "the node's log is not pinned")
        self.key = key
        self._http = httpx.Client(base_url=f"{self.url}/v1/log/", timeout=30)
        self.tiles = TileClient(self._fetch, key, self.checkpoint.encode())

    def _fetch(self, path: str) -> bytes:
        try:
            response = self._http.get(path)
        except httpx.HTTPError as exc:
            raise Error(f"cannot reach the node at {self.url}: {exc}") from exc
        if response.status_code != 200:
            raise Error(f"the node answered {response.status_code} for {path}")
        return response.content

    def entry(self, index: int) -> Entry:
        got = self.tiles.entry(index)
        return Entry(got.index, got.data, got.proof, self.checkpoint)

    def close(self) -> None:
        self._http.close()


# -- log info, proof and consistency with --node --------------------------------------------
def node_info(url: str) -> list[str]:
    """``log info`` of a node: its latest checkpoint, checked, and its pinned log key."""
    remote = _NodeLog(url)
    remote.close()
    cp = remote.checkpoint
    return [f"origin: {cp.origin}", f"size: {cp.size}", f"root: {b64encode(cp.root_hash)}",
            f"verifier key: {remote.key}"]  # fmt: skip


def node_proof(url: str, index: int, size: int | None) -> str:
    """A c2sp.org/tlog-proof for entry ``index`` of a node's log, made from its tiles and
    checked against its latest checkpoint (the only one a node serves)."""
    remote = _NodeLog(url)
    try:
        _latest_only(remote.checkpoint, size, "--size")
        entry = remote.entry(index)
    finally:
        remote.close()
    return TlogProof(entry.index, entry.proof, entry.checkpoint.encode()).encode()


def node_consistency(url: str, old: int, new: int) -> list[bytes]:
    """The RFC 9162 consistency proof from ``old`` to a node's latest checkpoint, made
    from its tiles and checked: the old tree they hash to is a prefix of the signed one."""
    remote = _NodeLog(url)
    try:
        cp = remote.checkpoint
        _latest_only(cp, new, "NEW")
        if not 0 <= old <= new:
            raise InputError(f"old size {old} is outside 0..{new}")
        nodes = remote.tiles.nodes
        proof = consistency_proof(nodes, old, new)
        verify_consistency(old, new, root_hash(nodes, old), cp.root_hash, proof)
    finally:
        remote.close()
    return proof


def _latest_only(cp: SignedCheckpoint, size: int | None, what: str) -> None:
    if size is not None and size != cp.size:
        raise InputError(
            f"with --node, {what} must be the node's latest checkpoint size {cp.size}, "
            f"not {size} (a node serves only its latest checkpoint)"
        )


# -- log get ----------------------------------------------------------------------------
@handle_errors
def log_get(
    index: Annotated[int, typer.Argument(help="Entry index.")],
    node_url: NodeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show entry INDEX, its inclusion proof checked against the latest checkpoint.

    Locally from INFERPROOF_HOME's log; with --node from the node's public tiles."""
    if node_url:
        remote = _NodeLog(node_url)
        try:
            entry = remote.entry(index)
        finally:
            remote.close()
    else:
        with _home_log() as log:
            entry = _local_entry(log, log.checkpoint(), index)
    _print_entry(entry, as_json)


def _home_log() -> Log:
    return home_log()


def _entry_json(entry: Entry) -> dict[str, Any]:
    receipt = entry_receipt(entry.data)
    cp = entry.checkpoint
    doc: dict[str, Any] = {
        "index": entry.index,
        "receipt_digest": sha256_digest(entry.data),
        "leaf_hash": b64encode(hash_leaf(entry.data)),
        "checkpoint": {"origin": cp.origin, "size": cp.size, "root": b64encode(cp.root_hash)},
        "inclusion": "verified",
        "proof": [b64encode(h) for h in entry.proof],
        "receipt": receipt_summary(receipt) if receipt is not None else None,
    }
    if receipt is not None:
        doc["envelope"] = json.loads(entry.data)
    else:
        doc["entry_base64"] = base64.b64encode(entry.data).decode()
    return doc


def _print_entry(entry: Entry, as_json: bool) -> None:
    doc = _entry_json(entry)
    if as_json:
        console.print_json(json.dumps(doc))
        return
    cp = doc["checkpoint"]
    lines = [
        f"index        {entry.index}",
        f"receipt      {doc['receipt_digest']}",
        f"leaf hash    {doc['leaf_hash']}",
        f"checkpoint   {cp['origin']}, size {cp['size']}, root {cp['root']}",
        f"inclusion    verified ({len(entry.proof)} hashes to the signed root)",
    ]
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)
    if doc["receipt"] is None:
        console.print(f"entry        {len(entry.data)} bytes, not a receipt", markup=False)
        return
    console.print()
    print_summary(doc["receipt"])


# -- log search -------------------------------------------------------------------------
@dataclass(frozen=True)
class Wanted:
    """What a search matches: every field given must match (None: any)."""

    model: str | None = None
    nonce: str | None = None
    receipt: str | None = None

    def matches(self, data: bytes) -> Receipt | None:
        """The entry's receipt when it matches, else None."""
        if self.receipt is not None and sha256_digest(data) != self.receipt:
            return None
        receipt = entry_receipt(data)
        if receipt is None:
            return None
        if self.nonce is not None and receipt.nonce != self.nonce:
            return None
        if self.model is not None and not _same_model(receipt.model, self.model):
            return None
        return receipt


def _same_model(model: dict[str, Any], ref: str) -> bool:
    """``ref`` (a digest, a name: any version, or ``name:version``) names ``model``."""
    if is_digest(ref):
        return model.get("digest") == ref
    name, sep, version = ref.partition(":")
    return model.get("name") == name and (not sep or model.get("version") == version)


@handle_errors
def log_search(
    model: Annotated[
        str | None,
        typer.Option("--model", help="sha256:DIGEST, NAME (any version), NAME:VERSION."),
    ] = None,
    nonce: Annotated[str | None, typer.Option("--nonce", help="The receipt's nonce.")] = None,
    receipt: Annotated[
        str | None, typer.Option("--receipt", help="The receipt digest (sha256 of the entry).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Stop after this many matches.")] = 100,
    node_url: NodeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the log's receipts by model, nonce or receipt digest (oldest first).

    Every entry up to the latest checkpoint is read and checked; with --node the node's
    public tiles are read instead of the local log."""
    if model is None and nonce is None and receipt is None:
        raise InputError("give at least one of --model, --nonce or --receipt")
    if limit < 1:
        raise InputError("--limit must be at least 1")
    wanted = Wanted(model, nonce, check_digest(receipt, "--receipt") if receipt else None)
    found = _search_node(node_url, wanted, limit) if node_url else _search_local(wanted, limit)
    rows = [_found_json(entry, hit) for entry, hit in found]
    if as_json:
        console.print_json(json.dumps({"entries": rows}))
        return
    table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold")
    for column, wraps in (("index", False), ("receipt", False), ("model", True),
                          ("nonce", True), ("finished", False)):  # fmt: skip
        table.add_column(column, overflow="fold", no_wrap=not wraps)
    for row in rows:
        m = row["model"]
        table.add_row(str(row["index"]), row["receipt_digest"][:19] + "…",
                      plain(f"{m.get('name')}:{m.get('version')}"), plain(row["nonce"] or ""),
                      plain(row["finished"]))  # fmt: skip
    console.print(table)
    console.print(f"{len(rows)} found", style="dim", markup=False)


def _search_local(wanted: Wanted, limit: int) -> list[tuple[Entry, Receipt]]:
    found = []
    with _home_log() as log:
        cp = log.checkpoint()
        for index, data in _local_scan(log, cp):
            hit = wanted.matches(data)
            if hit is not None:
                found.append((_local_entry(log, cp, index, data), hit))
                if len(found) >= limit:
                    break
    return found


def _search_node(url: str, wanted: Wanted, limit: int) -> list[tuple[Entry, Receipt]]:
    remote = _NodeLog(url)
    found = []
    try:
        # all_entries checks the tiles hash to the signed root, then every entry
        # against its tile, before yielding it.
        for index, data in enumerate(remote.tiles.all_entries()):
            hit = wanted.matches(data)
            if hit is not None:
                found.append((Entry(index, data, (), remote.checkpoint), hit))
                if len(found) >= limit:
                    break
    finally:
        remote.close()
    return found


def _found_json(entry: Entry, receipt: Receipt) -> dict[str, Any]:
    m = receipt.model
    return {
        "index": entry.index,
        "receipt_digest": sha256_digest(entry.data),
        "model": {"name": m.get("name"), "version": m.get("version"), "digest": m.get("digest")},
        "nonce": receipt.nonce,
        "finished": receipt.finished,
        "checkpoint_size": entry.checkpoint.size,
    }
