"""Trust roots and policies: who is trusted, and which checks must pass.

A policy file is JSON::

    {
      "version": 1,
      "trust": {
        "node_keys": ["<base64 of a 32-byte Ed25519 public key>"],
        "publisher_keys": ["-----BEGIN PUBLIC KEY-----\\n..."]
      },
      "require": {"model_signature": true, "input": false, "reexecution": false,
                  "nonce": false, "hardware": false},
      "freshness": {"max_age_seconds": 3600},
      "environment": {"allowed_measurements": ["sha256:..."]},
      "reexecution": {"fingerprint": {"max_abs": 2.0, "mean_abs": 0.3, "tie": 1.0},
                      "onnx": {"max_abs": 1e-5, "max_ulp": 64}}
    }

``require.reexecution`` may also name how an LLM answer is re-checked:
``"exact"`` (regenerate, identical text), ``"fingerprint"`` (one prefill within
the ``reexecution.fingerprint`` tolerance) or ``"either"`` (the fingerprint when
the receipt has one); ``true`` means ``"either"``. ``reexecution.onnx`` accepts an
ONNX re-run on other hardware within that error instead of bit for bit.

Every section is optional; unknown keys are rejected so a typo never weakens
a policy silently. Trust listed in the file replaces the local trust root for
that kind of key.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .._canonical import check_digest, parse_json
from .._keys import key_id
from ..attest import AttestationPolicy
from ..errors import InputError
from ..hub import load_publisher_key, publisher_id
from ..log import VerifierKey
from ..proofs import FingerprintTolerance as Tolerance
from ..proofs import OnnxTolerance

MAX_POLICY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class TrustRoot:
    """The keys a verifier trusts: node keys (Ed25519) and model publishers (ECDSA).

    Example::

        trust = TrustRoot.from_keys(node_keys=[raw_32_bytes])
    """

    node_keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    publishers: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    # Transparency logs by origin, and witness cosigning keys (C2SP note key form).
    log_keys: dict[str, VerifierKey] = field(default_factory=dict)
    witness_keys: tuple[VerifierKey, ...] = ()

    @classmethod
    def from_keys(
        cls,
        node_keys: list[bytes] | tuple[bytes, ...] = (),
        publisher_pems: list[bytes] | tuple[bytes, ...] = (),
    ) -> TrustRoot:
        nodes = {}
        for raw in node_keys:
            if len(raw) != 32:
                raise InputError("an Ed25519 node key is 32 bytes")
            nodes[key_id(raw)] = Ed25519PublicKey.from_public_bytes(raw)
        pubs = {}
        for pem in publisher_pems:
            key = load_publisher_key(pem, "publisher key")
            pubs[publisher_id(key)] = key
        return cls(nodes, pubs)

    @classmethod
    def from_directory(
        cls,
        folder: str | os.PathLike[str],
        *,
        node_keys: Sequence[bytes] = (),
        log_keys: Sequence[VerifierKey] = (),
    ) -> TrustRoot:
        """The keys kept in a trust folder, plus ``node_keys`` and ``log_keys`` given.

        The folder (``INFERPROOF_HOME/trust`` for the engine and the client) holds
        ``nodes/*.pub`` (base64 Ed25519), ``publishers/*.pem``, ``logs/*.vkey`` and
        ``witnesses/*.vkey`` (C2SP note verifier keys); a missing folder holds none.

        Example::

            trust = TrustRoot.from_directory(Path("~/.inferproof/trust").expanduser())
        """
        folder = Path(folder)
        nodes = [*node_keys, *(_node_pub(p) for p in sorted((folder / "nodes").glob("*.pub")))]
        pems = [p.read_bytes() for p in sorted((folder / "publishers").glob("*.pem"))]
        root = cls.from_keys(nodes, pems)
        logs = [*_vkeys(folder / "logs"), *log_keys]
        return replace(
            root,
            log_keys={k.name: k for k in logs},
            witness_keys=tuple(_vkeys(folder / "witnesses")),
        )


def _node_pub(path: Path) -> bytes:
    try:
        return base64.b64decode(path.read_text().strip(), validate=True)
    except ValueError as exc:
        raise InputError(f"{path} is not a base64 Ed25519 public key") from exc


def _vkeys(folder: Path) -> list[VerifierKey]:
    return [VerifierKey.parse(p.read_text().strip()) for p in sorted(folder.glob("*.vkey"))]


@dataclass(frozen=True)
class Policy:
    """Which checks must pass. The default requires the node signature and a
    consistent model digest, and reports every other check as not checked when
    its material is absent.

    Example::

        policy = Policy(require_model_signature=True, max_age_seconds=600)
    """

    require_model_signature: bool = False
    require_input: bool = False
    require_reexecution: bool = False
    # Which check answers for an LLM receipt: "exact" regeneration, the "fingerprint"
    # prefill, or "either" (the fingerprint when the receipt has one). docs/llm.md.
    reexecution_mode: str = "either"
    fingerprint_tolerance: Tolerance = field(default_factory=Tolerance)
    # ONNX re-runs on other hardware: accepted within this tolerance (None: bit-identical).
    onnx_tolerance: OnnxTolerance | None = None
    require_nonce: bool = False
    require_hardware: bool = False
    max_age_seconds: float | None = None
    allowed_environments: tuple[str, ...] = ()
    # The receipt's environment must name an image logged by a trusted publisher in a
    # trusted log (docs/environment.md); the verifier is given those image entries.
    require_logged_image: bool = False
    require_log: bool = False
    witness_quorum: int = 0
    attestation: AttestationPolicy | None = None
    require_zk: bool = False
    # A locally generated SRS lets its maker forge proofs (docs/zk.md): refused
    # unless a policy says otherwise, for development.
    allow_dev_srs: bool = False
    # Relayed LLM answers were computed by an upstream, not the node: refused unless
    # a policy accepts them (they mean something only from an attested node).
    accept_relayed: bool = False
    # A confidential client sends only to a node whose Oblivious HTTP key hardware
    # attestation binds (docs/confidential.md); a software node's key is bound by its
    # node key alone, accepted only when this says so, and the report says which.
    require_confidential: bool = False
    confidential_allow_software: bool = False


_TOP = {
    "version",
    "trust",
    "require",
    "freshness",
    "environment",
    "log",
    "attestation",
    "zk",
    "relay",
    "reexecution",
    "confidential",
}
# "$comment" (the JSON Schema keyword for comments) may appear in any object of a
# policy, so `inferproof policy init` can write a commented policy in plain JSON.
COMMENT = "$comment"


def _strip_comments(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_comments(v) for k, v in value.items() if k != COMMENT}
    if isinstance(value, list):
        return [_strip_comments(v) for v in value]
    return value


_REQUIRE = {
    "model_signature", "input", "reexecution", "nonce", "hardware", "log", "zk", "confidential",
}  # fmt: skip


def _section(obj: dict[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
    value = obj.get(key, {})
    if not isinstance(value, dict):
        raise InputError(f"policy: {key!r} must be an object")
    unknown = set(value) - allowed
    if unknown:
        raise InputError(f"policy: unknown key(s) in {key!r}: {sorted(unknown)}")
    return value


def _node_key(text: Any) -> bytes:
    if not isinstance(text, str):
        raise InputError("policy: trust.node_keys entries must be base64 strings")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError("policy: a node key is not valid base64") from exc
    if len(raw) != 32:
        raise InputError("policy: a node key must be 32 bytes (Ed25519)")
    return raw


def parse_policy(obj: Any, local: TrustRoot) -> tuple[TrustRoot, Policy]:
    """Parse a policy document; trust it names replaces ``local`` per kind of key."""
    if not isinstance(obj, dict):
        raise InputError("policy must be a JSON object")
    obj = _strip_comments(obj)
    unknown = set(obj) - _TOP
    if unknown:
        raise InputError(f"policy: unknown key(s) {sorted(unknown)}")
    if obj.get("version", 1) != 1:
        raise InputError("policy: only version 1 is supported")
    trust = _section(obj, "trust", {"node_keys", "publisher_keys", "log_keys", "witness_keys"})
    log = _section(obj, "log", {"witness_quorum"})
    zk = _section(obj, "zk", {"allow_dev_srs"})
    relay = _section(obj, "relay", {"accept"})
    if not isinstance(relay.get("accept", False), bool):
        raise InputError("policy: relay.accept must be true or false")
    if not isinstance(zk.get("allow_dev_srs", False), bool):
        raise InputError("policy: zk.allow_dev_srs must be true or false")
    confidential = _section(obj, "confidential", {"allow_software"})
    if not isinstance(confidential.get("allow_software", False), bool):
        raise InputError("policy: confidential.allow_software must be true or false")
    require = dict(_section(obj, "require", _REQUIRE))
    fresh = _section(obj, "freshness", {"max_age_seconds"})
    env = _section(obj, "environment", {"allowed_measurements", "require_logged_image"})
    if not isinstance(env.get("require_logged_image", False), bool):
        raise InputError("policy: environment.require_logged_image must be true or false")
    root = local
    if "node_keys" in trust:
        root = replace(
            root,
            node_keys=TrustRoot.from_keys(
                [_node_key(k) for k in _list(trust, "node_keys")]
            ).node_keys,
        )
    if "publisher_keys" in trust:
        pems = [str(p).encode() for p in _list(trust, "publisher_keys")]
        root = replace(root, publishers=TrustRoot.from_keys((), pems).publishers)
    if "log_keys" in trust:
        keys = [_note_key(k) for k in _list(trust, "log_keys")]
        root = replace(root, log_keys={k.name: k for k in keys})
    if "witness_keys" in trust:
        root = replace(root, witness_keys=tuple(_note_key(k) for k in _list(trust, "witness_keys")))
    quorum = log.get("witness_quorum", 0)
    if isinstance(quorum, bool) or not isinstance(quorum, int) or quorum < 0:
        raise InputError("policy: log.witness_quorum must be a non-negative integer")
    if quorum > len(root.witness_keys):
        raise InputError(
            f"policy: log.witness_quorum {quorum} exceeds the {len(root.witness_keys)} witness keys"
        )
    mode, tolerance = _reexecution(obj, require)
    onnx = _onnx_tolerance(_section(obj, "reexecution", {"fingerprint", "onnx"}).get("onnx"))
    for key, value in require.items():
        if not isinstance(value, bool):
            raise InputError(f"policy: require.{key} must be true or false")
    age = fresh.get("max_age_seconds")
    if age is not None and (isinstance(age, bool) or not isinstance(age, (int, float)) or age <= 0):
        raise InputError("policy: freshness.max_age_seconds must be a positive number")
    allowed = tuple(
        check_digest(d, "allowed measurement") for d in _list(env, "allowed_measurements")
    )
    policy = Policy(
        require_model_signature=require.get("model_signature", False),
        require_input=require.get("input", False),
        require_reexecution=require.get("reexecution", False),
        reexecution_mode=mode,
        fingerprint_tolerance=tolerance,
        onnx_tolerance=onnx,
        require_nonce=require.get("nonce", False),
        require_hardware=require.get("hardware", False),
        max_age_seconds=float(age) if age is not None else None,
        allowed_environments=allowed,
        require_logged_image=env.get("require_logged_image", False),
        require_log=require.get("log", False),
        witness_quorum=quorum,
        require_zk=require.get("zk", False),
        allow_dev_srs=zk.get("allow_dev_srs", False),
        accept_relayed=relay.get("accept", False),
        require_confidential=require.get("confidential", False),
        confidential_allow_software=confidential.get("allow_software", False),
        attestation=AttestationPolicy.from_dict(obj["attestation"])
        if "attestation" in obj
        else None,
    )
    return root, policy


_MODES = ("exact", "fingerprint", "either")


def _reexecution(obj: dict[str, Any], require: dict[str, Any]) -> tuple[str, Tolerance]:
    """``require.reexecution`` as a mode (a string requires it in that mode; ``true``
    is ``"either"``), and the ``reexecution.fingerprint`` tolerance. ``require`` is
    rewritten to the boolean."""
    value = require.get("reexecution", False)
    mode = "either"
    if isinstance(value, str):
        if value not in _MODES:
            raise InputError(f"policy: require.reexecution must be true, false or one of {_MODES}")
        mode, require["reexecution"] = value, True
    section = _section(obj, "reexecution", {"fingerprint", "onnx"})
    fp = section.get("fingerprint", {})
    known = {"max_abs", "mean_abs", "tie", "same_build_max_abs", "same_build_mean_abs"}
    if not isinstance(fp, dict) or not set(fp) <= known:
        raise InputError(f"policy: reexecution.fingerprint takes {sorted(known)}")
    for key, number in fp.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
            raise InputError(f"policy: reexecution.fingerprint.{key} must be a number >= 0")
    return mode, Tolerance(**{k: float(v) for k, v in fp.items()})


def _onnx_tolerance(value: Any) -> OnnxTolerance | None:
    """``reexecution.onnx``: ``{"max_abs": 1e-5, "max_ulp": 64}`` (either may be absent)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value or not set(value) <= {"max_abs", "max_ulp"}:
        raise InputError("policy: reexecution.onnx takes max_abs and/or max_ulp")
    max_abs, max_ulp = value.get("max_abs", 0.0), value.get("max_ulp", 0)
    if isinstance(max_abs, bool) or not isinstance(max_abs, (int, float)) or not max_abs >= 0:
        raise InputError("policy: reexecution.onnx.max_abs must be a number >= 0")
    if isinstance(max_ulp, bool) or not isinstance(max_ulp, int) or max_ulp < 0:
        raise InputError("policy: reexecution.onnx.max_ulp must be an integer >= 0")
    return OnnxTolerance(float(max_abs), max_ulp)


def _note_key(text: Any) -> VerifierKey:
    if not isinstance(text, str):
        raise InputError("policy: log and witness keys must be strings name+hex+base64")
    return VerifierKey.parse(text)


def _list(section: dict[str, Any], key: str) -> list[Any]:
    value = section.get(key, [])
    if not isinstance(value, list):
        raise InputError(f"policy: {key!r} must be a list")
    return value


def load_policy(path: str | os.PathLike[str], local: TrustRoot) -> tuple[TrustRoot, Policy]:
    """Read and parse a policy file (see the module docs for its shape)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"policy file {path} does not exist")
    return parse_policy(parse_json(path.read_bytes(), "policy", MAX_POLICY_BYTES), local)
