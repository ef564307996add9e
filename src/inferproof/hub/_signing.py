"""Publisher signatures over models in the OpenSSF model-signing format.

Signing uses the ``model-signing`` library (key mode: an ECDSA P-256 or P-384
private key, no network). Verification is done here, offline, against the
bundle alone: the DSSE signature over the in-toto statement with a trusted
publisher key, then the statement's manifest must name the model's digest.
That lets ``inferproof verify`` check a publisher signature without the model
file; the interop tests check that ``model-signing``'s own verifier agrees.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .._canonical import decode_b64, parse_json, sha256_digest
from ..errors import InputError, VerificationError

# Media types from the Sigstore bundle spec and in-toto (sigstore/protobuf-specs).
_BUNDLE_MEDIA_TYPES = {
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
}
_INTOTO_PAYLOAD = "application/vnd.in-toto+json"
_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
# Predicate type written by model-signing 1.x for its signed manifests.
_MODEL_SIGNING_PREDICATE = "https://model_signing/signature/v1.0"
_MAX_SIGNATURE_BYTES = 1024 * 1024
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def publisher_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """A publisher's id: ``sha256:`` of its PEM SubjectPublicKeyInfo.

    This equals the key ``hint`` model-signing writes into its bundles.
    """
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return sha256_digest(pem)


def load_publisher_key(pem: bytes, source: str = "key") -> ec.EllipticCurvePublicKey:
    """Load a publisher's PEM public key (ECDSA P-256 or P-384)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{source} is not a PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in (
        "secp256r1",
        "secp384r1",
    ):
        raise InputError(f"{source}: model-signing keys must be ECDSA P-256 or P-384")
    return key


def publisher_hash(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    """The hash a publisher key signs with: model-signing pairs P-256 with SHA-256 and
    P-384 with SHA-384 (image entries follow it)."""
    return hashes.SHA384() if key.curve.name == "secp384r1" else hashes.SHA256()


# The curves a publisher key may use: those this module verifies (model-signing also
# signs with P-521, which the verifier above does not take).
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
_KEY_HINT = "make one with `inferproof key generate -o publisher.pem`"


def check_signing_key(pem: bytes, source: str = "key") -> ec.EllipticCurvePrivateKey:
    """Load a publisher's private key and refuse what model-signing cannot sign with.

    model-signing's key mode takes an unencrypted PEM ECDSA private key; an Ed25519 or
    RSA key made it fail deep inside (``AttributeError: ... has no attribute 'curve'``,
    a traceback from the CLI: issue 12), so the key type is checked first and named.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise InputError(
            f"{source} is encrypted: model-signing needs an unencrypted PEM key ({_KEY_HINT})"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise InputError(f"{source} is not a PEM private key ({_KEY_HINT})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _CURVES:
        kind = _key_kind(key)
        raise InputError(
            f"{source} is {kind} key: model-signing takes ECDSA P-256 or P-384 keys ({_KEY_HINT})"
        )
    return key


def _key_kind(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"an ECDSA {key.curve.name}"
    names = {"Ed25519PrivateKey": "an Ed25519", "Ed448PrivateKey": "an Ed448",
             "RSAPrivateKey": "an RSA", "DSAPrivateKey": "a DSA"}  # fmt: skip
    for cls in type(key).__mro__:
        if cls.__name__ in names:
            return names[cls.__name__]
    return f"a {type(key).__name__}"


def sign_model(model_bytes: bytes, private_key_file: Path) -> bytes:
    """Sign a single-file model with an ECDSA key; return the Sigstore bundle JSON bytes."""
    import model_signing  # heavy import, only when signing

    check_signing_key(Path(private_key_file).read_bytes(), str(private_key_file))
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.onnx"
        model.write_bytes(model_bytes)
        sig = Path(tmp) / "model.sig"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                config = model_signing.signing.Config().use_elliptic_key_signer(  # type: ignore[no-untyped-call]
                    private_key=private_key_file
                )
                config.sign(model, sig)
        except (ValueError, TypeError, OSError) as exc:
            raise InputError(f"cannot sign with {private_key_file}: {exc}") from exc
        return sig.read_bytes()


def _pae(payload_type: str, payload: bytes) -> bytes:
    # DSSE v1 pre-authentication encoding (secure-systems-lab/dsse, protocol.md).
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class ModelSignature:
    """A parsed model-signing bundle: who signed which model digest."""

    model_digest: str
    key_hint: str | None
    payload: bytes
    payload_type: str
    signature: bytes
    bundle_digest: str


def _field(obj: dict[str, Any], key: str, what: str) -> dict[str, Any]:
    """``obj[key]`` when it is an object, ``{}`` when absent or null; anything else is refused.

    Every level of the parsed bundle is type-checked: a list where an object belongs
    (``"predicate": []``) was an AttributeError, an HTTP 500 (issue 11, low).
    """
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"model signature: {what} must be an object")
    return value


def _single_file_digest(predicate: dict[str, Any]) -> str:
    """The model digest of a single-file manifest: one resource named ``"."``."""
    resources = predicate.get("resources")
    # A single-file model is serialised as one resource named "."; its digest is
    # the SHA-256 of the file's bytes, which is the model's digest in the hub.
    if (
        not isinstance(resources, list)
        or len(resources) != 1
        or not isinstance(resources[0], dict)
        or resources[0].get("algorithm") != "sha256"
        or resources[0].get("name") != "."
    ):
        raise InputError("model signature is not over a single-file model")
    digest = resources[0].get("digest")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise InputError("model signature manifest has no sha256 digest")
    return "sha256:" + digest.lower()


def _statement(env: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The envelope's payload bytes and the model-signing statement they hold."""
    payload = decode_b64(env.get("payload"), "model signature: payload")
    statement = parse_json(payload, "model signature statement", _MAX_SIGNATURE_BYTES)
    if (
        not isinstance(statement, dict)
        or statement.get("_type") != _STATEMENT_V1
        or statement.get("predicateType") != _MODEL_SIGNING_PREDICATE
    ):
        raise InputError("model signature does not hold a model-signing v1.0 statement")
    return payload, statement


def parse_model_signature(bundle: bytes) -> ModelSignature:
    """Parse a model-signing (Sigstore) bundle for a single-file model."""
    obj = parse_json(bundle, "model signature", _MAX_SIGNATURE_BYTES)
    media_type = obj.get("mediaType") if isinstance(obj, dict) else None
    # The type first: an object is not hashable, and the set lookup raised (tests/fuzz).
    if not isinstance(media_type, str) or media_type not in _BUNDLE_MEDIA_TYPES:
        raise InputError("model signature is not a Sigstore bundle v0.3")
    env = obj.get("dsseEnvelope")
    if not isinstance(env, dict) or env.get("payloadType") != _INTOTO_PAYLOAD:
        raise InputError("model signature has no in-toto DSSE envelope")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise InputError("model signature must carry exactly one signature")
    payload, statement = _statement(env)
    digest = _single_file_digest(_field(statement, "predicate", "the statement's predicate"))
    material = _field(obj, "verificationMaterial", "verificationMaterial")
    hint = _field(material, "publicKey", "verificationMaterial.publicKey").get("hint")
    return ModelSignature(
        model_digest=digest,
        key_hint=hint if isinstance(hint, str) else None,
        payload=payload,
        payload_type=_INTOTO_PAYLOAD,
        signature=decode_b64(sigs[0].get("sig"), "model signature: signature"),
        bundle_digest=sha256_digest(bundle),
    )


def verify_model_signature(
    bundle: bytes, model_digest: str, trusted: dict[str, ec.EllipticCurvePublicKey]
) -> str:
    """Check a model-signing bundle against trusted publisher keys; return the publisher id.

    ``trusted`` maps publisher ids (see :func:`publisher_id`) to keys. Raises
    :class:`VerificationError` (check ``model.signature``) when no trusted key
    signed the statement or the statement names another model.
    """
    sig = parse_model_signature(bundle)
    if sig.model_digest != model_digest:
        raise VerificationError(
            "model.signature",
            f"signature is over {sig.model_digest}, not the receipt's model {model_digest}",
        )
    hinted = f"sha256:{sig.key_hint}" if sig.key_hint else None
    message = _pae(sig.payload_type, sig.payload)
    for pid, key in trusted.items():
        if hinted and pid != hinted:
            continue
        try:
            key.verify(sig.signature, message, ec.ECDSA(publisher_hash(key)))
        except InvalidSignature:
            if hinted:
                raise VerificationError(
                    "model.signature", f"signature by publisher {pid} is invalid"
                ) from None
            continue
        return pid
    who = f"key {hinted}" if hinted else "an unnamed key"
    raise VerificationError(
        "model.signature", f"signed by {who}, which is not a publisher the policy trusts"
    )
