"""Data feeds: where a workflow's rows come from, fetched with bounds, and signed data checked.

A feed is a local file (CSV or JSON lines) under a root the caller allows, or an
HTTP(S) JSON endpoint (a list of row objects, or ``{"rows": [...]}``). Each fetch is
bounded: at most :data:`MAX_FEED_BYTES`, a timeout, no redirects. What was fetched is
kept as a :class:`Fetched`: the raw bytes' digest, when, and the signature check.

Signed feeds:

- ``ed25519`` / ``ecdsa-p256``: a detached signature over the exact payload bytes,
  in the HTTP header ``Feed-Signature`` (base64) or, for a file, in ``FILE.sig``;
  ECDSA is DER-encoded over SHA-256 (RFC 6979 signatures verify like any other);
- ``note``: the payload is a C2SP signed note whose text is the data (c2sp.org/signed-note),
  verified with the feed's note verifier key.

A signature that does not verify fails the fetch (a failed run, with the reason); a feed
without ``signature`` is recorded as unsigned, never as verified.
"""

from __future__ import annotations

import base64
import binascii
import csv
import functools
import io
import json
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .._canonical import sha256_digest
from ..errors import InputError, VerificationError
from ..log import VerifierKey, open_note

__all__ = ["MAX_FEED_BYTES", "FeedSpec", "Fetched", "fetch"]

# A feed is a window of rows for one inference: a few MiB is far above any such window.
MAX_FEED_BYTES = 8 * 1024 * 1024
MAX_ROWS = 100_000
FETCH_TIMEOUT = 10.0
# httpx's timeout bounds each network wait, not the whole answer: a feed sending a
# byte every few seconds would pass it. This bounds the whole body.
FETCH_DEADLINE = 30.0
SIGNATURE_HEADER = "Feed-Signature"
_KINDS = {"file", "http"}
_FORMATS = {"csv", "jsonl", "json"}
_SIGNATURES = {"ed25519", "ecdsa-p256", "note"}


@dataclass(frozen=True)
class FeedSpec:
    """Where the rows come from, in what format, and how they are signed.

    ``source`` is a path (``kind="file"``, relative to the allowed root or absolute
    inside it) or an ``http(s)://`` URL; ``key`` is the signer's public key: raw
    Ed25519 in base64, a PEM P-256 key, or a C2SP note verifier key.
    """

    kind: str
    source: str
    format: str = "json"
    signature: str | None = None
    key: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "source": self.source, "format": self.format}
        if self.signature is not None:
            out |= {"signature": self.signature, "key": self.key}
        return out

    @classmethod
    def from_json(cls, obj: Any) -> FeedSpec:
        if not isinstance(obj, dict) or not {"kind", "source"} <= set(obj):
            raise InputError("a feed needs kind and source")
        if unknown := set(obj) - {"kind", "source", "format", "signature", "key"}:
            raise InputError(f"feed has unknown field(s) {sorted(unknown)}")
        spec = cls(
            obj["kind"], obj["source"], obj.get("format", "json"), obj.get("signature"),
            obj.get("key"),
        )  # fmt: skip
        spec.check()
        return spec

    @classmethod
    def parse(cls, text: str, *, signature: str | None = None, key: str | None = None) -> FeedSpec:
        """A command-line feed: ``URL`` or ``PATH`` (the format from the extension)."""
        kind = "http" if text.startswith(("http://", "https://")) else "file"
        suffix = text.rsplit(".", 1)[-1].lower() if "." in text else "json"
        fmt = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}.get(suffix, "json")
        spec = cls(kind, text, fmt, signature, key)
        spec.check()
        return spec

    def rows(self, body: bytes) -> tuple[dict[str, Any], ...]:
        """The rows of a payload in this feed's format (a signed note's text)."""
        try:
            return _rows(self.format, body)
        except json.JSONDecodeError as exc:
            raise InputError(f"feed {self.source} is not valid {self.format}: {exc.msg}") from None

    def check(self) -> None:
        if self.kind not in _KINDS:
            raise InputError(f"feed kind must be one of {sorted(_KINDS)}")
        if not isinstance(self.source, str) or not 0 < len(self.source) <= 2048:
            raise InputError("feed source must be a path or URL of 1 to 2048 characters")
        if self.kind == "http" and not self.source.startswith(("http://", "https://")):
            raise InputError("an http feed's source must start with http:// or https://")
        if self.format not in _FORMATS:
            raise InputError(f"feed format must be one of {sorted(_FORMATS)}")
        if (self.signature is None) != (self.key is None):
            raise InputError("a signed feed needs both signature (the scheme) and key")
        if self.signature is not None:
            if self.signature not in _SIGNATURES:
                raise InputError(f"feed signature must be one of {sorted(_SIGNATURES)}")
            _verifier(self.signature, str(self.key))  # the key parses, or refuse now


@dataclass(frozen=True)
class Fetched:
    """One fetch: the payload, its digest, when, and what the signature check said."""

    payload: bytes
    digest: str
    fetched_at: str
    signature: dict[str, Any] = field(default_factory=dict)
    rows: tuple[dict[str, Any], ...] = ()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _verifier(scheme: str, key: str) -> Any:
    try:
        if scheme == "ed25519":
            return Ed25519PublicKey.from_public_bytes(base64.b64decode(key, validate=True))
        if scheme == "ecdsa-p256":
            pub = serialization.load_pem_public_key(key.encode())
            if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name != "secp256r1":
                raise InputError("an ecdsa-p256 feed key must be a PEM P-256 public key")
            return pub
        return VerifierKey.parse(key)
    except (ValueError, binascii.Error, TypeError) as exc:
        raise InputError(f"feed key does not parse as a {scheme} key: {exc}") from None


def _read_file(spec: FeedSpec, root: Path | None) -> tuple[bytes, bytes | None]:
    if root is None:
        raise InputError("file feeds are not allowed here (no feed folder is configured)")
    base = root.resolve()
    path = (base / spec.source).resolve()
    if not path.is_relative_to(base):
        raise InputError(f"feed file {spec.source!r} is outside the feed folder")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FEED_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read feed file {spec.source}: {exc.strerror}") from None
    sig = None
    if spec.signature in ("ed25519", "ecdsa-p256"):
        try:
            sig = path.with_name(path.name + ".sig").read_bytes()[:1024].strip()
        except OSError:
            sig = None
    return data, sig


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context (httpx's defaults: certifi's roots) for every fetch and webhook:
    building it loads the whole CA bundle, about 20 ms, which would otherwise be paid
    on every run (docs/benchmarks.md, workflows)."""
    return httpx.create_ssl_context()


def _read_http(spec: FeedSpec, transport: httpx.BaseTransport | None) -> tuple[bytes, bytes | None]:
    try:
        http = httpx.Client(timeout=FETCH_TIMEOUT, follow_redirects=False, transport=transport,
                            verify=tls_context())  # fmt: skip
        accept = {"Accept": "application/json"}
        with http, http.stream("GET", spec.source, headers=accept) as r:
            if r.status_code != 200:
                raise InputError(f"feed {spec.source} answered {r.status_code}")
            chunks, size = [], 0
            deadline = time.monotonic() + FETCH_DEADLINE
            for chunk in r.iter_bytes():
                if time.monotonic() > deadline:  # a feed that trickles holds no run long
                    raise InputError(f"feed {spec.source} took over {FETCH_DEADLINE:g} s")
                size += len(chunk)
                if size > MAX_FEED_BYTES:  # stop reading: never hold more than the cap
                    raise InputError(f"feed {spec.source} is over {MAX_FEED_BYTES} bytes")
                chunks.append(chunk)
            sig = r.headers.get(SIGNATURE_HEADER)
    except httpx.HTTPError as exc:
        raise InputError(f"feed {spec.source} could not be fetched: {exc}") from None
    return b"".join(chunks), (sig.encode() if sig else None)


def check_payload(spec: FeedSpec, data: bytes, sig: bytes | None) -> tuple[bytes, dict[str, Any]]:
    """The data the rows are read from (a note's text) and the signature's record,
    which keeps the raw signature so anyone holding the bytes can check it again."""
    if spec.signature is None:
        return data, {"scheme": None, "verified": False, "detail": "the feed is not signed"}
    verifier = _verifier(spec.signature, str(spec.key))
    if spec.signature == "note":
        note = open_note(data, [verifier])  # VerificationError when it does not verify
        return note.note.text.encode(), {"scheme": "note", "verified": True,
                                         "key": verifier.name}  # fmt: skip
    if sig is None:
        raise VerificationError("feed.signature", f"feed {spec.source} came without a signature")
    try:
        raw = base64.b64decode(sig, validate=True)
        if spec.signature == "ed25519":
            verifier.verify(raw, data)
        else:
            verifier.verify(raw, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise VerificationError(
            "feed.signature", f"feed {spec.source}: the {spec.signature} signature does not verify"
        ) from None
    return data, {"scheme": spec.signature, "verified": True,
                  "value": base64.b64encode(raw).decode()}  # fmt: skip


def _rows(fmt: str, data: bytes) -> tuple[dict[str, Any], ...]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("feed data is not UTF-8 text") from None
    rows: Any
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        obj = json.loads(text)
        rows = obj.get("rows") if isinstance(obj, dict) else obj
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError('feed data must be rows: a list of objects (or {"rows": [...]})')
    if len(rows) > MAX_ROWS:
        raise InputError(f"feed has more than {MAX_ROWS} rows")
    return tuple(rows)


def fetch(
    spec: FeedSpec,
    *,
    root: Path | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Fetched:
    """Fetch ``spec`` once (bounded), check its signature, and parse its rows."""
    data, sig = _read_http(spec, transport) if spec.kind == "http" else _read_file(spec, root)
    if len(data) > MAX_FEED_BYTES:
        raise InputError(f"feed {spec.source} is over {MAX_FEED_BYTES} bytes")
    body, signature = check_payload(spec, data, sig)
    return Fetched(data, sha256_digest(data), _now(), signature, spec.rows(body))
