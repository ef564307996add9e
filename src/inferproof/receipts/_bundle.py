"""The bundle: one JSON file with everything ``inferproof verify`` needs.

It holds the signed envelope and, beside it, material too large or too private
for the statement: the outputs and public inputs (checked against the signed
digests), the publisher's model signature, proofs, and the log entry.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._canonical import parse_json
from ..errors import InputError
from ._dsse import envelope_payload
from ._statement import Receipt, parse_statement

BUNDLE_MEDIA_TYPE = "application/vnd.inferproof.bundle.v1+json"
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
_FIELDS = {
    "mediaType",
    "dsseEnvelope",
    "outputs",
    "inputs",
    "modelSignature",
    "proofs",
    "tlogEntry",
    "attestation",
}


def _unicode(text: str, key: str) -> None:
    """A text field is hashed and parsed as UTF-8, so it must have an encoding: JSON's
    ``\\ud800`` escapes make lone surrogates, which have none (tests/fuzz)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"bundle {key} is not valid Unicode text") from None


@dataclass(frozen=True)
class Bundle:
    """A receipt bundle. Build with :meth:`from_json` / :meth:`read`; write with :meth:`write`.

    Example::

        bundle = Bundle.read(Path("receipt.json"))
        print(bundle.receipt.model_digest, bundle.receipt.output_digest)
    """

    envelope: dict[str, Any]
    receipt: Receipt
    outputs: dict[str, Any]
    inputs: dict[str, Any] | None = None
    model_signature: str | None = None
    proofs: dict[str, Any] = field(default_factory=dict)
    tlog_entry: str | None = None
    attestation: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "dsseEnvelope": self.envelope,
            "outputs": self.outputs,
        }
        if self.inputs is not None:
            out["inputs"] = self.inputs
        if self.model_signature is not None:
            out["modelSignature"] = self.model_signature
        if self.proofs:
            out["proofs"] = self.proofs
        if self.tlog_entry is not None:
            out["tlogEntry"] = self.tlog_entry
        if self.attestation is not None:
            out["attestation"] = self.attestation
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the bundle's JSON to ``path`` (a ``str`` or path object)."""
        Path(path).write_text(self.dumps())

    def with_tlog_entry(self, entry: str) -> Bundle:
        return replace(self, tlog_entry=entry)

    @classmethod
    def from_json(cls, obj: Any) -> Bundle:
        if not isinstance(obj, dict):
            raise InputError("bundle must be a JSON object")
        if obj.get("mediaType") != BUNDLE_MEDIA_TYPE:
            raise InputError(f"not an inferproof bundle (mediaType must be {BUNDLE_MEDIA_TYPE})")
        unknown = set(obj) - _FIELDS
        if unknown:
            raise InputError(f"bundle has unknown field(s) {sorted(unknown)}")
        envelope = obj.get("dsseEnvelope")
        receipt = parse_statement(envelope_payload(envelope))
        assert isinstance(envelope, dict)  # envelope_payload checked all of it
        outputs = obj.get("outputs")
        if not isinstance(outputs, dict):
            raise InputError("bundle outputs must be an object of named tensors")
        for key, kind in (
            ("inputs", dict),
            ("modelSignature", str),
            ("proofs", dict),
            ("tlogEntry", str),
            ("attestation", dict),
        ):
            if key in obj and not isinstance(obj[key], kind):
                raise InputError(f"bundle {key} has the wrong type")
            if kind is str and key in obj:
                _unicode(obj[key], key)
        return cls(
            envelope=envelope,
            receipt=receipt,
            outputs=outputs,
            inputs=obj.get("inputs"),
            model_signature=obj.get("modelSignature"),
            proofs=obj.get("proofs") or {},
            tlog_entry=obj.get("tlogEntry"),
            attestation=obj.get("attestation"),
        )

    @classmethod
    def loads(cls, data: bytes | str) -> Bundle:
        return cls.from_json(parse_json(data, "bundle", MAX_BUNDLE_BYTES))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Bundle:
        """Read and check a bundle file (a ``str`` or path object)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"bundle file {path} does not exist")
        if path.stat().st_size > MAX_BUNDLE_BYTES:
            raise InputError(f"bundle file {path} is over the {MAX_BUNDLE_BYTES}-byte cap")
        return cls.loads(path.read_bytes())
