"""A c2sp.org/tlog-witness witness (``POST /add-checkpoint``) and its client.

The witness keeps, per log origin, the latest checkpoint it cosigned (SQLite), and
cosigns a new checkpoint only if it is signed by the log's trusted key and a
consistency proof links it to that record. Status codes follow tlog-witness
"add-checkpoint": 400 malformed or old size above the checkpoint size, 403 no trusted
signature, 404 unknown origin, 409 old size not the recorded size (body: recorded size,
``Content-Type: text/x.tlog.size``) or same size with another root, 422 bad proof,
200 with cosignature lines. The server is the standard library's ThreadingHTTPServer:
the protocol is one small POST, and the witness must stay dependency-light.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..errors import Error, InputError, VerificationError
from ._checkpoint import Checkpoint, parse_decimal, parse_hash
from ._merkle import verify_consistency
from ._note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    MAX_NOTE_BYTES,
    Note,
    SignerKey,
    VerifierKey,
    b64encode,
    verify_signatures,
)

# tlog-witness: "The client MUST NOT send more than 63 consistency proof lines."
MAX_PROOF_LINES = 63
# A request is an old-size line, <= 63 hash lines and a note (capped by the note parser).
MAX_REQUEST_BYTES = MAX_NOTE_BYTES + 64 * 64
SIZE_CONTENT_TYPE = "text/x.tlog.size"


@dataclass(frozen=True)
class WitnessResponse:
    """HTTP status, body and content type of an add-checkpoint answer."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


def encode_request(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    """The add-checkpoint request body: old size, proof lines, blank line, checkpoint."""
    lines = [f"old {old_size}", *(b64encode(h) for h in proof)]
    return ("".join(line + "\n" for line in lines) + "\n").encode() + note


def parse_request(body: bytes) -> tuple[int, list[bytes], bytes]:
    """Split an add-checkpoint body; raise InputError (HTTP 400) if malformed."""
    if len(body) > MAX_REQUEST_BYTES:
        raise InputError("request body is too large")
    head, sep, note = body.partition(b"\n\n")
    if not sep:
        raise InputError("no blank line before the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError as exc:
        raise InputError("request header is not ASCII") from exc
    if not lines[0].startswith("old "):
        raise InputError("first line is not an old size line")
    old_size = parse_decimal(lines[0][4:], "old size")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise InputError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    return old_size, [parse_hash(h, "consistency proof line") for h in lines[1:]], note


class Witness:
    """The witness logic, independent of HTTP: :meth:`add_checkpoint` maps a request to a response.

    Example::

        witness = Witness(SignerKey.generate("witness.example/w1", ALG_COSIGNATURE_V1),
                          [log_verifier_key], Path("witness.sqlite"))
        response = witness.add_checkpoint(encode_request(0, [], checkpoint_note))
    """

    def __init__(
        self,
        signer: SignerKey,
        log_keys: Sequence[VerifierKey],
        state: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if signer.alg != ALG_COSIGNATURE_V1:
            raise InputError("a witness key must be a cosignature/v1 (type 0x04) key")
        self.signer, self.clock = signer, clock
        self.verifier_key = signer.verifier()
        self._logs: dict[str, list[VerifierKey]] = {}
        for key in log_keys:
            if key.alg != ALG_ED25519:
                raise InputError(f"log key {key.name} is not an Ed25519 (type 0x01) key")
            self._logs.setdefault(key.name, []).append(key)
        state.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(state, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # MUST persist before responding
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS logs (origin TEXT PRIMARY KEY, size INTEGER NOT NULL,"
            " root BLOB NOT NULL, note BLOB NOT NULL)"
        )
        # Check-and-update MUST be atomic (tlog-witness): one lock in-process, and an
        # immediate transaction against other processes sharing the state file.
        self._lock = threading.Lock()

    def recorded(self, origin: str) -> tuple[int, bytes] | None:
        row = self._db.execute("SELECT size, root FROM logs WHERE origin = ?", (origin,)).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def add_checkpoint(self, body: bytes) -> WitnessResponse:
        try:
            old_size, proof, note_bytes = parse_request(body)
            note = Note.parse(note_bytes)
            cp = Checkpoint.parse(note.text)
        except InputError as exc:
            return WitnessResponse(400, f"{exc}\n".encode())
        keys = self._logs.get(cp.origin)
        if keys is None:
            return WitnessResponse(404, b"unknown log origin\n")
        try:
            if not verify_signatures(note, keys, "witness.signature"):
                return WitnessResponse(403, b"no signature by a trusted log key\n")
        except (VerificationError, InputError):
            return WitnessResponse(403, b"invalid log signature\n")
        if old_size > cp.size:
            return WitnessResponse(400, b"old size is larger than the checkpoint size\n")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                response = self._check_and_record(cp, old_size, proof, note)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return response

    def _check_and_record(
        self, cp: Checkpoint, old_size: int, proof: list[bytes], note: Note
    ) -> WitnessResponse:
        known = self.recorded(cp.origin)
        size, root = known if known else (0, b"")
        if old_size != size:
            return WitnessResponse(409, f"{size}\n".encode(), SIZE_CONTENT_TYPE)
        if known and size == cp.size and root != cp.root_hash:
            return WitnessResponse(409, b"same size, different root: refusing a fork\n")
        if known:
            try:
                verify_consistency(size, cp.size, root, cp.root_hash, proof)
            except VerificationError as exc:
                return WitnessResponse(422, f"{exc}\n".encode())
        elif proof:
            return WitnessResponse(422, b"the proof must be empty when the old size is 0\n")
        self._db.execute(
            "INSERT OR REPLACE INTO logs (origin, size, root, note) VALUES (?, ?, ?, ?)",
            (cp.origin, cp.size, cp.root_hash, note.encode()),
        )
        sig = self.signer.sign(note.text, int(self.clock()))
        return WitnessResponse(200, sig.line().encode())

    def close(self) -> None:
        self._db.close()


class _Handler(BaseHTTPRequestHandler):
    server: _WitnessServer
    protocol_version = "HTTP/1.1"  # keep-alive, as tlog-witness recommends

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/add-checkpoint":
            self._reply(WitnessResponse(404, b"not found\n"))
            return
        length = self.headers.get("Content-Length")
        digits = length is not None and length.isascii() and length.isdigit()
        if length is None or not digits or int(length) > MAX_REQUEST_BYTES:
            self._reply(WitnessResponse(400, b"missing or too large Content-Length\n"))
            self.close_connection = True
            return
        body = self.rfile.read(int(length))
        try:
            response = self.server.witness.add_checkpoint(body)
        except Error as exc:
            response = WitnessResponse(500, f"{exc}\n".encode())
        self._reply(response)

    def do_GET(self) -> None:
        self._reply(WitnessResponse(405, b"use POST /add-checkpoint\n"))

    def _reply(self, response: WitnessResponse) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: object) -> None:
        if self.server.quiet:
            return
        super().log_message(format, *args)


class _WitnessServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], witness: Witness, quiet: bool) -> None:
        self.witness, self.quiet = witness, quiet
        super().__init__(address, _Handler)


def make_server(witness: Witness, host: str, port: int, quiet: bool = False) -> ThreadingHTTPServer:
    """An HTTP server for ``witness``; call ``serve_forever()`` (port 0 picks a free one)."""
    return _WitnessServer((host, port), witness, quiet)


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness to ask: its submission prefix URL and its cosigner verifier key."""

    url: str
    key: VerifierKey


@dataclass(frozen=True)
class CosignOutcome:
    """The checkpoint note with every cosignature obtained, and what failed and why."""

    note: bytes
    cosigned_by: tuple[str, ...]
    failures: tuple[str, ...]


def _post(url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url.rstrip("/") + "/add-checkpoint",
        data=body,
        method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read(MAX_NOTE_BYTES))
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read(1024))


def _ask(
    endpoint: WitnessEndpoint,
    note: Note,
    consistency: Callable[[int, int], Sequence[bytes]],
    old_size: int,
    timeout: float,
) -> Note:
    size = Checkpoint.parse(note.text).size
    for _attempt in range(2):
        proof = consistency(old_size, size) if old_size else []
        status, body = _post(endpoint.url, encode_request(old_size, proof, note.encode()), timeout)
        if status == 409 and body.endswith(b"\n") and _attempt == 0:
            try:
                old_size = parse_decimal(body[:-1].decode("ascii"), "witness size")
            except (InputError, UnicodeDecodeError):
                raise InputError("409 without a tree size: the witness saw a fork") from None
            if old_size > size:
                raise InputError(f"witness has a larger tree ({old_size}) than this checkpoint")
            continue
        if status != 200:
            raise InputError(f"HTTP {status}: {body[:200].decode('utf-8', 'replace').strip()}")
        answer = Note.parse(note.text.encode() + b"\n" + body)
        verified = verify_signatures(answer, [endpoint.key], "witness.cosignature")
        if not verified:
            raise InputError("no cosignature by the witness key in the response")
        return note.with_signatures(s for _, s in verified)
    raise InputError("the witness kept reporting a different tree size")


def cosign_checkpoint(
    note: bytes,
    witnesses: Sequence[WitnessEndpoint],
    consistency: Callable[[int, int], Sequence[bytes]],
    timeout: float = 10.0,
    known_sizes: dict[str, int] | None = None,
) -> CosignOutcome:
    """Submit a checkpoint to each witness (tlog-witness) and attach the cosignatures.

    ``consistency(old, new)`` returns the proof the witness needs; a 409 answer tells
    the witness's size and the request is retried once with the right proof.

    Example::

        outcome = cosign_checkpoint(log.checkpoint().encode(), witnesses, log.consistency_proof)
        log.attach_cosignatures(outcome.note)
    """
    current = Note.parse(note)
    done: list[str] = []
    failures: list[str] = []
    for endpoint in witnesses:
        hint = (known_sizes or {}).get(endpoint.url, 0)
        try:
            current = _ask(endpoint, current, consistency, hint, timeout)
            done.append(endpoint.key.name)
        except (Error, OSError) as exc:
            failures.append(f"{endpoint.key.name} ({endpoint.url}): {exc}")
    return CosignOutcome(current.encode(), tuple(done), tuple(failures))
