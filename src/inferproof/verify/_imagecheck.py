"""Logged images: the image entries a verifier accepts, and the policy
``environment.require_logged_image`` that a receipt's environment is one of them.

An image entry counts only when both of its proofs hold, each checked here: the
publisher's DSSE signature (a publisher of the trust root) and its inclusion in a log
the trust root names (a c2sp.org/tlog-proof under that log's key). A receipt's
environment then matches when the image digest it names is such an entry's subject.

On a software node the digest is what the node says it runs (docs/environment.md):
the check says so. On a dstack TDX node the image is the one the attested RTMR3 names:
the identity's event log must replay to the quote's RTMR3, its ``compose-hash`` event
must be the hash of the identity's app-compose, and that app-compose must be the one
that runs only this image (``inferproof.image._dstack``). On other TEEs no image is
computable from the measurement here, and the check fails rather than pass on the
self-reported name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .._checks import Check, failed, passed
from ..attest import NodeIdentity
from ..errors import InputError, VerificationError
from ..image import ImageEntry, compose_hash, image_of_app_compose, read_image_entry, replay_rtmr3
from ..log import TlogProof, verify_tlog_proof
from ._policy import TrustRoot

__all__ = ["LoggedImage", "LoggedImages", "attested_image", "logged_image_check"]


@dataclass(frozen=True)
class LoggedImage:
    """An image entry whose signature and log inclusion were verified."""

    entry: ImageEntry
    index: int
    origin: str


class LoggedImages:
    """The verified image entries, by image digest.

    Example::

        images = LoggedImages.load(trust, [(entry_bytes, proof_text)])
        verifier = Verifier(trust, Policy(require_logged_image=True), images=images)
    """

    def __init__(self, images: Iterable[LoggedImage] = ()) -> None:
        self.by_digest = {i.entry.digest: i for i in images}

    @classmethod
    def load(cls, trust: TrustRoot, entries: Iterable[tuple[bytes, str | bytes]]) -> LoggedImages:
        """Verify each (entry, tlog-proof) pair against ``trust``; any that fails raises
        :class:`VerificationError` naming why (``image.entry`` or a ``log.*`` check)."""
        out = []
        for data, proof in entries:
            entry = read_image_entry(data, trust.publishers)
            origin, index = _included(trust, data, proof)
            out.append(LoggedImage(entry, index, origin))
        return cls(out)


def _included(trust: TrustRoot, data: bytes, proof: str | bytes) -> tuple[str, int]:
    try:
        text = proof.decode() if isinstance(proof, bytes) else proof
        note = TlogProof.parse(text).checkpoint
    except (InputError, UnicodeDecodeError) as exc:
        raise VerificationError("log.proof_format", f"the image entry's proof: {exc}") from None
    raw = note if isinstance(note, bytes) else note.encode()
    origin = raw.split(b"\n", 1)[0].decode(errors="replace")  # c2sp.org/tlog-checkpoint
    key = trust.log_keys.get(origin)
    if key is None:
        raise VerificationError(
            "log.checkpoint_signature",
            f"the image entry's proof is from log {origin!r:.80}, not one this verifier trusts",
        )
    return origin, verify_tlog_proof(text, data, key).index


def attested_image(identity: NodeIdentity, measurements: Mapping[str, str]) -> tuple[str, str]:
    """The image (and compose hash) a verified dstack TDX identity attests to, from its
    event log and app-compose; raises :class:`VerificationError` naming what fails."""
    if identity.platform != "tdx" or identity.event_log is None or identity.app_compose is None:
        raise VerificationError(
            "image.attested", f"no image is computable from a {identity.platform} measurement "
            "here: only a dstack TDX identity (with its event log and app-compose) names one",
        )  # fmt: skip
    try:
        rtmr3, events = replay_rtmr3(identity.event_log)
    except InputError as exc:
        raise VerificationError("image.event_log", str(exc)) from None
    if rtmr3.hex() != str(measurements.get("RTMR3", "")).lower():
        raise VerificationError("image.event_log", "the event log does not replay to the "
                                "attested RTMR3")  # fmt: skip
    hashes = [payload for event, payload in events if event == "compose-hash"]
    if len(hashes) != 1:
        raise VerificationError("image.event_log", f"RTMR3 holds {len(hashes)} compose-hash "
                                "events, not one")  # fmt: skip
    digest = compose_hash(identity.app_compose)
    if hashes[0].hex() != digest:
        raise VerificationError("image.app_compose", "the identity's app-compose is not the "
                                "one RTMR3 measured")  # fmt: skip
    try:
        return image_of_app_compose(identity.app_compose), digest
    except InputError as exc:
        raise VerificationError("image.app_compose", str(exc)) from None


def logged_image_check(environment: dict[str, object], images: LoggedImages | None,
                       attested: tuple[str, str] | Check | None = None) -> Check:  # fmt: skip
    """The ``environment`` check under ``require_logged_image``; ``attested`` is, for
    a hardware receipt, the (image, compose hash) :func:`attested_image` found, or the
    check that failed on the way."""
    name = "environment"
    measurement = environment.get("measurement")
    image = measurement.get("image") if isinstance(measurement, dict) else None
    how = "self-reported by a software node, not hardware-backed"
    if environment.get("type") == "hardware":
        if isinstance(attested, Check) or attested is None:
            return attested or failed(name, "policy requires a logged image; no attested one")
        if image is not None and image != attested[0]:
            return failed(name, f"the receipt says image {image}, the attested measurement "
                          f"names {attested[0]}")  # fmt: skip
        image, how = attested[0], f"attested by TDX: RTMR3 replays to compose hash {attested[1]}"
    if not isinstance(image, str):
        return failed(name, "policy requires a logged image; the receipt names no image")
    found = images.by_digest.get(image) if images is not None else None
    if found is None:
        return failed(name, f"image {image} is in no image entry this verifier trusts")
    e = found.entry
    return passed(
        name,
        f"image {image} (logged at index {found.index} of {found.origin}, SBOM with "
        f"{e.components} packages, published by {e.publisher}); {how}",
    )
