"""Logged images: the image entries a verifier accepts, and the policy
``environment.require_logged_image`` that a receipt's environment is one of them.

An image entry counts only when both of its proofs hold, each checked here: the
publisher's DSSE signature (a publisher of the trust root) and its inclusion in a log
the trust root names (a c2sp.org/tlog-proof under that log's key). A receipt's
environment then matches when the image digest it names is such an entry's subject.

On a software node the digest is what the node says it runs (docs/environment.md):
the check says so. On a TEE node, matching the attested measurement to the image is
not built yet, and the check says that too rather than pass on the self-reported name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .._checks import Check, failed, passed
from ..errors import InputError, VerificationError
from ..image import ImageEntry, read_image_entry
from ..log import TlogProof, verify_tlog_proof
from ._policy import TrustRoot

__all__ = ["LoggedImage", "LoggedImages", "logged_image_check"]


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


def logged_image_check(environment: dict[str, object], images: LoggedImages | None) -> Check:
    """The ``environment`` check under ``require_logged_image``."""
    name = "environment"
    measurement = environment.get("measurement")
    image = measurement.get("image") if isinstance(measurement, dict) else None
    if not isinstance(image, str):
        return failed(name, "policy requires a logged image; the receipt names no image")
    if environment.get("type") == "hardware":
        return failed(
            name,
            f"policy requires a logged image; the receipt names image {image}, but matching "
            "the attested measurement to an image is not built yet (docs/environment.md)",
        )
    found = images.by_digest.get(image) if images is not None else None
    if found is None:
        return failed(name, f"image {image} is in no image entry this verifier trusts")
    e = found.entry
    return passed(
        name,
        f"image {image} (logged at index {found.index} of {found.origin}, SBOM with "
        f"{e.components} packages, published by {e.publisher}); self-reported by a software "
        "node, not hardware-backed",
    )
