"""What an image is, signed and logged: its SBOM (CycloneDX 1.5), its provenance (an
in-toto Statement v1 with the SLSA Provenance v1 predicate) signed by the publisher's
key in DSSE, and the *image entry* the transparency log holds.

An image entry is the canonical JSON ``{"mediaType": IMAGE_ENTRY, "envelope": ...}``:
its own media type, so no image entry can be taken for a receipt (a receipt's log leaf
is a bare DSSE envelope whose statement has the receipt predicate) nor a receipt for an
image entry. The SBOM itself stays beside the image (a full image's lists several
hundred packages, more than a log entry's 64 KiB, tlog-tiles' cap): the provenance
names it by digest, with its component count, among its byproducts.

The publisher key is an ECDSA P-256 or P-384 key, the model publishers' (hub); its
DSSE signature is ECDSA over the PAE with SHA-256 (P-256) or SHA-384 (P-384).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from .._canonical import canonical_json, parse_json, sha256_digest
from ..errors import InputError, VerificationError
from ..hub import publisher_hash, publisher_id
from ..receipts import (
    INTOTO_PAYLOAD_TYPE,
    envelope_payload,
    envelope_signatures,
    pae,
    signed_envelope,
)
from ._oci import Image

__all__ = [
    "IMAGE_ENTRY",
    "SLSA_PROVENANCE",
    "ImageEntry",
    "image_entry",
    "provenance_fields",
    "provenance_statement",
    "read_image_entry",
    "sbom_document",
]

IMAGE_ENTRY = "application/vnd.inferproof.image-entry.v1+json"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
STATEMENT = "https://in-toto.io/Statement/v1"
BUILD_TYPE = "https://inferproof.dev/image-build/v1"
SBOM_MEDIA = "application/vnd.cyclonedx+json"
SUBJECT = "inferproof-node"
# The SBOM's serial number is derived from the image digest (RFC 4122 version 5 in a
# namespace of our own), so a rebuild writes the same SBOM, byte for byte.
_SBOM_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://inferproof.dev/image-sbom")


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def sbom_document(image: Image) -> dict[str, Any]:
    """The CycloneDX 1.5 SBOM of ``image``: the image as the described component, every
    package it holds with its purl and SHA-256."""
    hexdigest = image.digest.split(":", 1)[1]
    return {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "serialNumber": f"urn:uuid:{uuid.uuid5(_SBOM_NAMESPACE, image.digest)}",
        "metadata": {
            "timestamp": _iso(image.epoch),
            "component": {"type": "container", "bom-ref": image.digest, "name": SUBJECT,
                          "version": image.digest,
                          "hashes": [{"alg": "SHA-256", "content": hexdigest}],
                          "properties": [{"name": "inferproof:revision", "value": image.revision},
                                         {"name": "inferproof:variant", "value": image.variant}]},
        },
        "components": [
            {"type": "library", "bom-ref": c.purl, "name": c.name, "version": c.version,
             "purl": c.purl, "hashes": [{"alg": "SHA-256", "content": c.sha256}]}
            for c in image.components
        ],
    }  # fmt: skip


def provenance_statement(image: Image, sbom: bytes) -> dict[str, Any]:
    """The SLSA v1 provenance of ``image``: what it was built from (the commit, every
    package file by hash, the epoch) and its SBOM by digest."""
    deps: list[dict[str, Any]] = [{"uri": f"git+commit:{image.revision}",
                                   "digest": {"gitCommit": image.revision}}]  # fmt: skip
    deps += [{"uri": c.purl, "digest": {"sha256": c.sha256}} for c in image.components]
    return {
        "_type": STATEMENT,
        "subject": [{"name": SUBJECT, "digest": {"sha256": image.digest.split(":", 1)[1]}}],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"variant": image.variant, "revision": image.revision},
                "internalParameters": {"source_date_epoch": image.epoch,
                                       **({"toolchain": dict(image.toolchain)}
                                          if image.toolchain else {})},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": BUILD_TYPE},
                "byproducts": [{"name": "sbom.cdx.json", "mediaType": SBOM_MEDIA,
                                "digest": {"sha256": sha256_digest(sbom).split(":", 1)[1]},
                                "annotations": {"components": len(image.components)}}],
            },
        },
    }  # fmt: skip


def image_entry(statement: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> bytes:
    """The log entry of ``statement``, signed in DSSE with the publisher's ``key``."""
    public = key.public_key()
    algorithm = ec.ECDSA(publisher_hash(public))
    envelope = signed_envelope(canonical_json(statement), publisher_id(public),
                               lambda message: key.sign(message, algorithm))  # fmt: skip
    return canonical_json({"mediaType": IMAGE_ENTRY, "envelope": envelope})


@dataclass(frozen=True)
class ImageEntry:
    """A verified image entry: the image digest, who published it, its commit and
    variant, its SBOM's digest and component count, and the provenance statement."""

    digest: str
    publisher: str
    revision: str
    variant: str
    sbom_digest: str
    components: int
    statement: dict[str, Any]


def read_image_entry(
    data: bytes, publishers: Mapping[str, ec.EllipticCurvePublicKey]
) -> ImageEntry:
    """Parse and verify an image entry: canonical bytes, our media type, a valid DSSE
    signature by a publisher in ``publishers``, an SLSA provenance statement for one
    image. Each failure names the check ``image.entry``."""
    obj = parse_json(data, "image entry", 64 * 1024)
    if not isinstance(obj, dict) or obj.get("mediaType") != IMAGE_ENTRY or set(obj) != {
        "mediaType", "envelope",
    }:  # fmt: skip
        raise InputError("not an inferproof image entry")
    if canonical_json(obj) != data:
        raise InputError("an image entry must be canonical JSON (RFC 8785)")
    payload = envelope_payload(obj["envelope"])
    publisher = _signed_by(obj["envelope"], payload, publishers)
    st = parse_json(payload, "image provenance", 64 * 1024)
    try:
        hexdigest, params, sbom = provenance_fields(st)
    except InputError as exc:
        raise VerificationError("image.entry", f"the signed statement is {exc}") from None
    return ImageEntry(f"sha256:{hexdigest}", publisher, str(params.get("revision")),
                      str(params.get("variant")), f"sha256:{sbom['digest']['sha256']}",
                      sbom["annotations"]["components"], st)  # fmt: skip


def provenance_fields(st: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The subject's image digest (hex), the build's parameters and the SBOM byproduct
    of an image's provenance statement; :class:`InputError` when it is not one."""
    try:
        return _fields(st)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"not an image's provenance ({exc})") from None


def _fields(st: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    if not isinstance(st, dict):
        raise ValueError("the statement is not a JSON object")
    if st.get("_type") != STATEMENT or st.get("predicateType") != SLSA_PROVENANCE:
        raise ValueError("not an in-toto SLSA provenance v1 statement")
    (subject,) = st["subject"]
    hexdigest = subject["digest"]["sha256"]
    if subject["name"] != SUBJECT or not isinstance(hexdigest, str) or len(hexdigest) != 64:
        raise ValueError("its subject is not one image")
    pred = st["predicate"]
    params = pred["buildDefinition"]["externalParameters"]
    (sbom,) = [b for b in pred["runDetails"]["byproducts"] if b.get("mediaType") == SBOM_MEDIA]
    digest = sbom["digest"]["sha256"]
    if not isinstance(params, dict) or not isinstance(sbom["annotations"]["components"], int):
        raise ValueError("it names no build parameters or SBOM")
    if not isinstance(digest, str):
        raise ValueError("its SBOM has no digest")
    return hexdigest, params, sbom


def _signed_by(
    envelope: dict[str, Any], payload: bytes, publishers: Mapping[str, ec.EllipticCurvePublicKey]
) -> str:
    message = pae(INTOTO_PAYLOAD_TYPE, payload)
    named = []
    for kid, sig in envelope_signatures(envelope):
        named.append(kid)
        key = publishers.get(kid)
        if key is None:
            continue
        try:
            key.verify(sig, message, ec.ECDSA(publisher_hash(key)))
        except InvalidSignature:
            raise VerificationError(
                "image.entry", f"the signature by publisher {kid} is invalid"
            ) from None
        return kid
    raise VerificationError(
        "image.entry", f"the image entry is signed by {', '.join(named)}, not a trusted publisher"
    )
