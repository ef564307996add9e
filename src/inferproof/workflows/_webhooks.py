"""Signed webhooks: Standard Webhooks 1.0.0 with its asymmetric scheme ``v1a`` (Ed25519).

A workflow's alert is POSTed to a URL as JSON with three headers (spec, "Webhook
headers"): ``webhook-id`` (the message id, the same on every retry), ``webhook-timestamp``
(integer unix seconds of this attempt) and ``webhook-signature`` (a space-separated list
of ``v1a,<base64 Ed25519 signature>``). What is signed is ``{id}.{timestamp}.{body}``,
the body being the exact bytes sent (spec, "Signature scheme"). The receiver checks the
three headers, the timestamp against its own clock and the signature against the public
key it was given out of band (spec, "Verifying signatures"); :func:`verify_webhook` does
that, with the receiver's time as an argument.

:func:`deliver` makes a few attempts within seconds and returns what happened as a
:class:`Delivery`; it never raises for a network failure. A longer retry schedule (the
spec's spans days) belongs to whoever schedules the workflow, not to this module.

Example::

    signer = WebhookSigner.generate()
    result = deliver("https://example.com/hook", b'{"type":"alert.fired"}', signer)
    # at the receiver, given signer.public_key:
    msg_id = verify_webhook(request.headers, request.body, public_key, now=int(time.time()))
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .._keys import raw_public
from ..errors import InputError, VerificationError
from ._feeds import tls_context

__all__ = ["Delivery", "WebhookSigner", "deliver", "new_message_id", "verify_webhook"]

# Spec, "Verifying signatures": the timestamp must be "within some allowable tolerance"
# of the receiver's clock, against replays. The spec gives no number; five minutes is
# what the reference libraries in the spec's repository use.
TOLERANCE = 300
# Spec, "Signature scheme" and "Webhook headers": asymmetric signatures are tagged v1a;
# public keys are shown as base64 prefixed whpk_.
SCHEME = "v1a"
KEY_PREFIX = "whpk_"
# Header caps: a v1a entry is 92 characters, so 16 of them (a key rotation needs two)
# fit easily in 4 KiB; anything larger is refused before any decoding.
MAX_ID_CHARS = 256
MAX_SIGNATURE_CHARS = 4096
MAX_SIGNATURES = 16
MAX_RESPONSE_BYTES = 64 * 1024
MAX_URL_CHARS = 2048
MAX_ATTEMPTS = 10
BACKOFF = 0.5  # seconds before the 2nd attempt, doubled for each one after
MAX_RETRY_AFTER = 10.0  # a receiver's Retry-After is honoured up to this, in seconds
# Spec, "Signature scheme": the id and timestamp must not hold a "." (it delimits the
# signed content). Ids are restricted to URL-safe characters; timestamps are ASCII digits.
_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_NAMES = ("webhook-id", "webhook-timestamp", "webhook-signature")


def new_message_id() -> str:
    """A fresh message id: ``msg_`` and 32 hex characters (128 random bits)."""
    return "msg_" + secrets.token_hex(16)


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode("ascii") + body


def _check_id(msg_id: object) -> str:
    if not isinstance(msg_id, str) or not _ID.fullmatch(msg_id):
        raise InputError("a webhook id must be 1 to 256 characters of A-Z a-z 0-9 _ -")
    return msg_id


@dataclass(frozen=True)
class WebhookSigner:
    """Signs webhooks with one Ed25519 key (a dedicated key: see ``Home.webhook_key``).

    Example::

        signer = WebhookSigner(home.webhook_key())
        signer.key_text                     # 'whpk_...', to give to the receiver
        signer.headers(body, msg_id=new_message_id(), timestamp=int(time.time()))
    """

    key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> WebhookSigner:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> bytes:
        """The 32 raw bytes of the public key."""
        return raw_public(self.key.public_key())

    @property
    def key_text(self) -> str:
        """The public key as the spec shows it: ``whpk_`` and the base64 of the raw bytes."""
        return KEY_PREFIX + base64.b64encode(self.public_key).decode("ascii")

    def headers(self, body: bytes, *, msg_id: str, timestamp: int) -> dict[str, str]:
        """The three ``webhook-*`` headers of one attempt at sending ``body``."""
        _check_id(msg_id)
        if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
            raise InputError("a webhook timestamp is a non-negative integer of unix seconds")
        if not isinstance(body, bytes):
            raise InputError("a webhook body is bytes (the exact bytes sent)")
        signature = self.key.sign(_signed_content(msg_id, timestamp, body))
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": f"{SCHEME},{base64.b64encode(signature).decode('ascii')}",
        }


def _webhook_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The three headers, looked up ignoring case; each present once, a string, capped."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower() if isinstance(name, str) else ""
        if key not in _NAMES:
            continue
        if key in found:
            raise VerificationError("webhook.headers", f"header {key} is given more than once")
        if not isinstance(value, str):
            raise VerificationError("webhook.headers", f"header {key} is not text")
        found[key] = value
    for key in _NAMES:
        if not found.get(key):
            raise VerificationError("webhook.headers", f"header {key} is missing or empty")
    return found


def _public(public_key: bytes) -> Ed25519PublicKey:
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise InputError("a webhook public key is 32 raw Ed25519 bytes")
    return Ed25519PublicKey.from_public_bytes(public_key)


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    public_key: bytes,
    *,
    now: int,
    tolerance: int = TOLERANCE,
) -> str:
    """Check a received webhook and return its message id.

    ``headers`` are the request's (names in any case), ``body`` its exact bytes,
    ``public_key`` the sender's 32 raw Ed25519 bytes and ``now`` the receiver's time
    in unix seconds. A failure raises :class:`VerificationError` whose check is
    ``webhook.headers``, ``webhook.timestamp`` or ``webhook.signature``. The id is the
    idempotency key: a receiver remembers it (for the tolerance) to process a message once.

    Example::

        msg_id = verify_webhook(dict(request.headers), body, key, now=int(time.time()))
    """
    key = _public(public_key)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise InputError("the webhook tolerance is a non-negative number of seconds")
    found = _webhook_headers(headers)
    msg_id, stamp, signatures = (found[name] for name in _NAMES)
    if len(msg_id) > MAX_ID_CHARS or not _ID.fullmatch(msg_id):
        raise VerificationError("webhook.headers", "webhook-id is not a well-formed id")
    if not _TIMESTAMP.fullmatch(stamp):
        raise VerificationError("webhook.headers", "webhook-timestamp is not integer seconds")
    if len(signatures) > MAX_SIGNATURE_CHARS:
        raise VerificationError("webhook.headers", "webhook-signature is too long")
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance:
        raise VerificationError(
            "webhook.timestamp", f"timestamp {timestamp} is more than {tolerance} s from {now}"
        )
    entries = signatures.split()
    if len(entries) > MAX_SIGNATURES:
        raise VerificationError("webhook.headers", f"more than {MAX_SIGNATURES} signatures")
    content = _signed_content(msg_id, timestamp, body)
    # Spec, "Webhook headers": several signatures support key rotation; one that
    # verifies is enough. Entries of other schemes (v1, HMAC) are skipped.
    for entry in entries:
        scheme, _, encoded = entry.partition(",")
        if scheme != SCHEME:
            continue
        try:
            key.verify(base64.b64decode(encoded, validate=True), content)
        except (InvalidSignature, binascii.Error, ValueError):
            continue
        return msg_id
    raise VerificationError("webhook.signature", f"no {SCHEME} signature verifies with the key")


@dataclass(frozen=True)
class Delivery:
    """What :func:`deliver` did: the last attempt's HTTP status or error, and how many.

    ``status`` is None when no answer came (``error`` says why); ``ok`` means a 2xx.
    """

    url: str
    msg_id: str
    status: int | None
    attempts: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class _Outcome:
    status: int | None
    error: str | None
    retry: bool
    retry_after: float = 0.0


def _check_url(url: object) -> str:
    if not isinstance(url, str) or not 0 < len(url) <= MAX_URL_CHARS:
        raise InputError(f"a webhook URL is 1 to {MAX_URL_CHARS} characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InputError(f"webhook URL {url!r} does not parse: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InputError(f"a webhook URL must be http:// or https:// with a host, not {url!r}")
    return url


def _retry_after(value: str | None) -> float:
    """Retry-After in seconds (the date form is ignored), capped."""
    text = (value or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return 0.0
    return min(float(text), MAX_RETRY_AFTER)


def _attempt(http: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> _Outcome:
    try:
        with http.stream("POST", url, content=body, headers=headers) as r:
            # Raw bytes, not decoded: a compressed answer cannot expand past the cap.
            size = 0
            for chunk in r.iter_raw():
                size += len(chunk)
                if size >= MAX_RESPONSE_BYTES:
                    break
            status = r.status_code
            wait = _retry_after(r.headers.get("retry-after"))
    except httpx.HTTPError as exc:
        return _Outcome(None, f"{type(exc).__name__}: {exc}", True)
    if 200 <= status < 300:
        return _Outcome(status, None, False)
    # Spec, "Delivery success and failure": anything but 2xx fails; a 3xx is not
    # followed (and trying again would only be redirected again); 429 and 5xx are
    # load or outages, worth another attempt; other 4xx will answer the same.
    if 300 <= status < 400:
        return _Outcome(status, f"answered {status}: redirects are not followed", False)
    retry = status == 429 or status >= 500
    return _Outcome(status, f"answered {status}", retry, wait)


def deliver(
    url: str,
    body: bytes,
    signer: WebhookSigner,
    *,
    transport: httpx.BaseTransport | None = None,
    attempts: int = 3,
    timeout: float = 5.0,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST the JSON ``body`` to ``url``, signed, in up to ``attempts`` tries.

    Every attempt carries the same message id (spec, "Webhook metadata": the id is
    the receiver's idempotency key) and its own timestamp and signature. Connection
    errors, 429 and 5xx are tried again after 0.5 s, 1 s, 2 s... (longer if the answer
    says ``Retry-After``, up to 10 s). Redirects are never followed. A network failure
    is returned in the :class:`Delivery`, never raised; a bad URL is an InputError.

    Example::

        result = deliver(url, json.dumps(alert).encode(), signer)
        if not result.ok:
            print(result.status, result.error)
    """
    _check_url(url)
    if isinstance(attempts, bool) or not isinstance(attempts, int):
        raise InputError("attempts is an integer")
    if not 1 <= attempts <= MAX_ATTEMPTS or not 0 < timeout <= 60:
        raise InputError(f"attempts must be 1 to {MAX_ATTEMPTS}, timeout 0 to 60 seconds")
    if not isinstance(body, bytes):
        raise InputError("a webhook body is bytes (the exact bytes sent)")
    msg_id = new_message_id()
    outcome = _Outcome(None, "not attempted", False)
    # The spec recommends 15-30 s for a receiver to answer ("Request timeouts"); the
    # default here is shorter because a workflow's run waits for its alerts.
    http = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport,
                        verify=tls_context())  # fmt: skip
    with http:
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                sleep(max(BACKOFF * 2 ** (attempt - 2), outcome.retry_after))
            headers = signer.headers(body, msg_id=msg_id, timestamp=int(now()))
            outcome = _attempt(http, url, body, {"content-type": "application/json"} | headers)
            if not outcome.retry:
                return Delivery(url, msg_id, outcome.status, attempt, outcome.error)
    return Delivery(url, msg_id, outcome.status, attempts, outcome.error)
