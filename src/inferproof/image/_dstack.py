"""What a dstack TDX node's measurement says about its image.

dstack (Phala's confidential-VM stack) boots a fixed OS image and then the
application its ``app-compose.json`` describes. Before the application starts, the OS
extends RTMR3 with runtime events; one of them, ``compose-hash``, carries the SHA-256
of ``app-compose.json``. A verifier holding the quote's RTMR3 and the event log can
then tell which app-compose ran:

- each RTMR3 event's digest is ``SHA-384(type as u32 LE || ":" || name || ":" ||
  payload)`` with ``type`` dstack's runtime-event code 0x08000001 (dstack's
  cc-eventlog ``RuntimeEvent::digest``; the code is not a TCG one);
- RTMR3 is the fold ``r = SHA-384(r || digest)`` from 48 zero bytes, as TDX's
  RTMR extend defines it (Intel TDX Module spec, TDG.MR.RTMR.EXTEND);
- the event log is the node's word until the replay equals the attested RTMR3.

The image is computable from here: :func:`app_compose` is the one app-compose that
runs a given image, so its hash is derived from the image digest alone, and
:func:`image_of_app_compose` accepts exactly those documents. Any other app-compose
(another container beside the node, a pre-launch script, environment variables the
deployer may set) could change what runs without changing the image, so it is
refused rather than half-understood.

Example::

    doc = app_compose("sha256:" + "ab" * 32, "ghcr.io/example/inferproof")
    print(compose_hash(doc))
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from .._canonical import canonical_json, parse_json
from ..errors import InputError, VerificationError

__all__ = ["RUNTIME_EVENT", "app_compose", "compose_hash", "image_of_app_compose",
           "replay_rtmr3"]  # fmt: skip

RUNTIME_EVENT = 0x08000001  # dstack cc-eventlog DSTACK_RUNTIME_EVENT_TYPE
_MAX_LOG = 1024**2  # dstack's logs are tens of events, a few KiB
_MAX_EVENTS = 4096
_MAX_COMPOSE = 64 * 1024
_REPOSITORY = re.compile(r"[a-z0-9][a-z0-9._/:-]{0,254}")  # a registry/name, no tag
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_PORT = 8000


def _compose_file(image: str, repository: str) -> str:
    # One service, the node, pinned by digest; it reports the image it runs from.
    return (
        "services:\n"
        "  inferproof:\n"
        f"    image: {repository}@{image}\n"
        "    command: [\"serve\", \"--host\", \"0.0.0.0\"]\n"
        "    environment:\n"
        f"      INFERPROOF_IMAGE: \"{image}\"\n"
        "    volumes:\n"
        "      - /var/run/dstack.sock:/var/run/dstack.sock\n"
        "    ports:\n"
        f"      - \"{_PORT}:{_PORT}\"\n"
    )


def app_compose(image: str, repository: str) -> bytes:
    """The ``app-compose.json`` (manifest version 2, RFC 8785 bytes) that runs the node
    image ``image`` from ``repository`` under dstack, with no other service, no
    pre-launch script and no deployer-set environment.

    Example::

        Path("app-compose.json").write_bytes(app_compose(digest, "ghcr.io/me/inferproof"))
    """
    if not _DIGEST.fullmatch(image):
        raise InputError(f"{image!r:.80} is not an image digest sha256:<64 hex>")
    if not _REPOSITORY.fullmatch(repository) or "@" in repository:
        raise InputError(f"{repository!r:.80} is not a repository name (registry/name, no tag)")
    return canonical_json({
        "manifest_version": 2,
        "name": "inferproof",
        "runner": "docker-compose",
        "docker_compose_file": _compose_file(image, repository),
        "allowed_envs": [],
        "kms_enabled": False,
        "gateway_enabled": False,
        "local_key_provider_enabled": False,
        "public_logs": True,
        "public_sysinfo": True,
        "no_instance_id": False,
        "secure_time": True,
    })  # fmt: skip


def compose_hash(doc: bytes) -> str:
    """The compose hash dstack extends into RTMR3: the SHA-256 of the document's bytes."""
    return hashlib.sha256(doc).hexdigest()


def image_of_app_compose(doc: bytes) -> str:
    """The image digest ``doc`` runs, when ``doc`` is exactly the :func:`app_compose` of
    that image (any repository); anything else is refused (module docs)."""
    if len(doc) > _MAX_COMPOSE:
        raise InputError(f"the app-compose is over {_MAX_COMPOSE} bytes")
    try:
        obj = parse_json(doc)
    except InputError as exc:
        raise InputError(f"the app-compose is not JSON: {exc}") from None
    text = obj.get("docker_compose_file") if isinstance(obj, dict) else None
    found = re.search(r"^    image: (\S+)@(sha256:[0-9a-f]{64})$", text or "", re.MULTILINE)
    if found is None:
        raise VerificationError("image.app_compose", "the app-compose runs no image by digest")
    repository, image = found.groups()
    try:
        expected = app_compose(image, repository)
    except InputError as exc:
        raise VerificationError("image.app_compose", str(exc)) from None
    if doc != expected:
        raise VerificationError(
            "image.app_compose", f"the app-compose is not the one that runs only {image} "
            "(`inferproof image compose` writes it); another one could run other code",
        )  # fmt: skip
    return image


def replay_rtmr3(event_log: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    """RTMR3 as the RTMR3 events of dstack's ``event_log`` (JSON) extend it, and those
    events as (name, payload). Each event's stated digest must be the one its type,
    name and payload give; an RTMR3 event of another type is refused, since its
    content could not be read.

    Example::

        rtmr3, events = replay_rtmr3(identity.doc["event_log"])
        assert rtmr3.hex() == report.measurements["RTMR3"]
    """
    if len(event_log) > _MAX_LOG:
        raise InputError(f"the event log is over {_MAX_LOG} characters")
    try:
        events = json.loads(event_log)
    except ValueError as exc:
        raise InputError(f"the event log is not JSON: {exc}") from None
    if not isinstance(events, list) or len(events) > _MAX_EVENTS:
        raise InputError(f"the event log is not a list of at most {_MAX_EVENTS} events")
    rtmr, out = bytes(48), []
    for n, event in enumerate(events):
        if not isinstance(event, dict) or event.get("imr") != 3:
            continue
        name, payload, digest = _event(event, n)
        rtmr = hashlib.sha384(rtmr + digest).digest()
        out.append((name, payload))
    return rtmr, out


def _event(event: dict[str, Any], n: int) -> tuple[str, bytes, bytes]:
    name, kind = event.get("event"), event.get("event_type")
    if kind != RUNTIME_EVENT or not isinstance(name, str):
        raise VerificationError("image.event_log", f"RTMR3 event {n} is not a dstack runtime "
                                f"event (type {kind!r:.20})")  # fmt: skip
    try:
        payload = bytes.fromhex(str(event.get("event_payload", "")))
        stated = bytes.fromhex(str(event.get("digest", "")))
    except ValueError:
        raise InputError(f"event log event {n}: payload or digest is not hex") from None
    digest = hashlib.sha384(
        RUNTIME_EVENT.to_bytes(4, "little") + b":" + name.encode() + b":" + payload
    ).digest()
    if stated != digest:
        raise VerificationError("image.event_log", f"RTMR3 event {n} ({name!r:.40}) states a "
                                "digest its content does not have")  # fmt: skip
    return name, payload, digest
