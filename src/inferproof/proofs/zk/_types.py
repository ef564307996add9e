"""The two values of the ZK engine: a model's setup record and a proof."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from ..._canonical import canonical_json, check_digest, parse_json, sha256_digest
from ...errors import InputError
from ._felts import check_felt, dequantise

InputVisibility = Literal["public", "hashed"]
ParamVisibility = Literal["fixed", "hashed"]
Target = Literal["resources", "accuracy"]
SrsKind = Literal["public", "dev"]

SETUP_FORMAT = "inferproof.zk.setup/v1"
PROOF_FORMAT = "inferproof.zk.proof/v1"

# A Halo2-KZG proof for the circuits EZKL builds is a few KiB; 4 MiB of hex is far
# above any proof this engine makes and keeps a hostile bundle small.
MAX_PROOF_BYTES = 2 * 1024 * 1024
MAX_INSTANCES = 1 << 20


def _expect(obj: Mapping[str, Any], keys: set[str], what: str) -> None:
    if set(obj) != keys:
        extra, missing = sorted(set(obj) - keys), sorted(keys - set(obj))
        raise InputError(f"{what}: unexpected fields {extra} / missing fields {missing}")


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise InputError(f"{what} must be a list of integers")
    return tuple(value)


def _shapes(value: Any, what: str) -> tuple[tuple[int, ...], ...]:
    if not isinstance(value, list):
        raise InputError(f"{what} must be a list of shapes")
    shapes = tuple(_ints(v, what) for v in value)
    if any(d < 1 for s in shapes for d in s):
        raise InputError(f"{what}: dimensions must be positive")
    return shapes


def _choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise InputError(f"{what} must be one of {allowed}, not {value!r:.40}")
    return cast(str, value)


def _strs(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{what} must be a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class ZkSetup:
    """Everything a prover and a verifier need to know about one model's circuit.

    Artifacts are named by digest in a BlobStore; the record itself is stored there
    too, as canonical JSON, and its digest (:meth:`digest`) is what proofs point at.

    Example::

        record = ZkSetup.from_json(parse_json(store.get(setup_digest)))
        assert record.digest() == setup_digest
    """

    model_digest: str
    input_visibility: InputVisibility
    param_visibility: ParamVisibility
    target: Target
    decomp: tuple[int, int]
    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shapes: tuple[tuple[int, ...], ...]
    input_scales: tuple[int, ...]
    output_scales: tuple[int, ...]
    logrows: int
    settings_digest: str
    circuit_digest: str
    vk_digest: str
    pk_digest: str
    srs_digest: str
    srs_kind: SrsKind
    srs_logrows: int
    param_hash: tuple[str, ...] | None
    ezkl_version: str
    output_visibility: Literal["public"] = "public"

    @property
    def batch_size(self) -> int:
        """Leading dimension of the first input (several inputs proved in one circuit)."""
        return self.input_shapes[0][0] if self.input_shapes and self.input_shapes[0] else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SETUP_FORMAT,
            "model_digest": self.model_digest,
            "visibility": {
                "input": self.input_visibility,
                "param": self.param_visibility,
                "output": self.output_visibility,
            },
            "target": self.target,
            "decomp": list(self.decomp),
            "inputs": {
                "names": list(self.input_names),
                "shapes": [list(s) for s in self.input_shapes],
                "scales": list(self.input_scales),
            },
            "outputs": {
                "shapes": [list(s) for s in self.output_shapes],
                "scales": list(self.output_scales),
            },
            "logrows": self.logrows,
            "artifacts": {
                "settings": self.settings_digest,
                "circuit": self.circuit_digest,
                "vk": self.vk_digest,
                "pk": self.pk_digest,
            },
            "srs": {"digest": self.srs_digest, "kind": self.srs_kind, "logrows": self.srs_logrows},
            "param_hash": None if self.param_hash is None else list(self.param_hash),
            "ezkl_version": self.ezkl_version,
        }

    def canonical(self) -> bytes:
        return canonical_json(self.to_json())

    def digest(self) -> str:
        """``sha256:`` of the canonical JSON record: the setup's identity."""
        return sha256_digest(self.canonical())

    @classmethod
    def from_json(cls, obj: Any) -> ZkSetup:
        """Parse a record strictly (exact fields, checked types and digests)."""
        if not isinstance(obj, dict):
            raise InputError("ZK setup record must be a JSON object")
        top = {"format", "model_digest", "visibility", "target", "decomp", "inputs", "outputs"}
        _expect(obj, top | {"logrows", "artifacts", "srs", "param_hash", "ezkl_version"}, "setup")
        if obj["format"] != SETUP_FORMAT:
            raise InputError(f"setup format {obj['format']!r:.40} is not {SETUP_FORMAT}")
        vis, ins, outs, art, srs = (
            obj["visibility"], obj["inputs"], obj["outputs"], obj["artifacts"], obj["srs"],
        )  # fmt: skip
        for part, keys, name in (
            (vis, {"input", "param", "output"}, "visibility"),
            (ins, {"names", "shapes", "scales"}, "inputs"),
            (outs, {"shapes", "scales"}, "outputs"),
            (art, {"settings", "circuit", "vk", "pk"}, "artifacts"),
            (srs, {"digest", "kind", "logrows"}, "srs"),
        ):
            if not isinstance(part, dict):
                raise InputError(f"setup {name} must be an object")
            _expect(part, keys, f"setup {name}")
        _choice(vis["output"], ("public",), "output visibility")
        decomp = _ints(obj["decomp"], "decomp")
        logrows = _ints([obj["logrows"], srs["logrows"]], "logrows")
        if len(decomp) != 2 or not all(1 <= k <= 26 for k in logrows):
            raise InputError("setup decomp must be [base, legs] and logrows within 1..26")
        param_hash = obj["param_hash"]
        return cls(
            model_digest=check_digest(obj["model_digest"], "model digest"),
            input_visibility=cast(
                InputVisibility, _choice(vis["input"], ("public", "hashed"), "input visibility")
            ),
            param_visibility=cast(
                ParamVisibility, _choice(vis["param"], ("fixed", "hashed"), "param visibility")
            ),
            target=cast(Target, _choice(obj["target"], ("resources", "accuracy"), "target")),
            decomp=(decomp[0], decomp[1]),
            input_names=_strs(ins["names"], "input names"),
            input_shapes=_shapes(ins["shapes"], "input shapes"),
            output_shapes=_shapes(outs["shapes"], "output shapes"),
            input_scales=_ints(ins["scales"], "input scales"),
            output_scales=_ints(outs["scales"], "output scales"),
            logrows=logrows[0],
            settings_digest=check_digest(art["settings"], "settings digest"),
            circuit_digest=check_digest(art["circuit"], "circuit digest"),
            vk_digest=check_digest(art["vk"], "vk digest"),
            pk_digest=check_digest(art["pk"], "pk digest"),
            srs_digest=check_digest(srs["digest"], "srs digest"),
            srs_kind=cast(SrsKind, _choice(srs["kind"], ("public", "dev"), "srs kind")),
            srs_logrows=logrows[1],
            param_hash=None
            if param_hash is None
            else tuple(check_felt(v, "param hash") for v in _strs(param_hash, "param hash")),
            ezkl_version=_strs([obj["ezkl_version"]], "ezkl version")[0],
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ZkSetup:
        """Parse canonical JSON bytes; non-canonical encodings are refused."""
        record = cls.from_json(parse_json(data, "ZK setup record"))
        if record.canonical() != data:
            raise InputError("ZK setup record is not canonical JSON (RFC 8785)")
        return record


@dataclass(frozen=True)
class ZkProof:
    """A proof of one inference (or one batch), with what the circuit computed.

    ``instances`` are the public values the proof is checked against, in EZKL's
    order: input hashes (hashed inputs), weight hashes (hashed params), public
    inputs, outputs. ``output`` and ``quantised_output`` are what the circuit
    computed, for the receipt; :func:`verify` re-derives everything it checks from
    ``instances`` and never trusts these convenience fields.

    Example::

        proof = prove(record, {"x": x}, store)
        print(proof.output, len(proof.proof), proof.timings["prove"])
    """

    setup_digest: str
    proof: bytes
    instances: tuple[str, ...]
    input_binding: tuple[str, ...]
    quantised_output: tuple[int, ...]
    output_scales: tuple[int, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    timings: tuple[tuple[str, float], ...] = ()

    @property
    def outputs(self) -> tuple[np.ndarray, ...]:
        """The circuit's outputs, dequantised and shaped like the model's outputs."""
        out, at = [], 0
        for shape, scale in zip(self.output_shapes, self.output_scales, strict=True):
            size = int(np.prod(shape))
            values = dequantise(self.quantised_output[at : at + size], scale)
            out.append(values.reshape(shape))
            at += size
        return tuple(out)

    @property
    def timing(self) -> dict[str, float]:
        return dict(self.timings)

    def to_json(self) -> dict[str, Any]:
        """The proof's wire form (timings are local measurements and left out)."""
        return {
            "format": PROOF_FORMAT,
            "setup": self.setup_digest,
            "proof": self.proof.hex(),
            "instances": list(self.instances),
            "input_binding": list(self.input_binding),
            "quantised_output": list(self.quantised_output),
            "output_scales": list(self.output_scales),
            "output_shapes": [list(s) for s in self.output_shapes],
        }

    @classmethod
    def from_json(cls, obj: Any) -> ZkProof:
        """Parse the wire form strictly (sizes capped, field elements canonical)."""
        if not isinstance(obj, dict):
            raise InputError("ZK proof must be a JSON object")
        keys = {"format", "setup", "proof", "instances", "input_binding", "quantised_output"}
        _expect(obj, keys | {"output_scales", "output_shapes"}, "ZK proof")
        if obj["format"] != PROOF_FORMAT:
            raise InputError(f"ZK proof format {obj['format']!r:.40} is not {PROOF_FORMAT}")
        raw = obj["proof"]
        if not isinstance(raw, str) or len(raw) > 2 * MAX_PROOF_BYTES or raw != raw.lower():
            raise InputError("ZK proof bytes must be lowercase hex within the size cap")
        try:
            proof = bytes.fromhex(raw)
        except ValueError:
            raise InputError("ZK proof bytes are not hex") from None
        instances = _strs(obj["instances"], "instances")
        if len(instances) > MAX_INSTANCES:
            raise InputError("ZK proof has too many public instances")
        return cls(
            setup_digest=check_digest(obj["setup"], "setup digest"),
            proof=proof,
            instances=tuple(check_felt(v, "instance") for v in instances),
            input_binding=_strs(obj["input_binding"], "input binding"),
            quantised_output=_ints(obj["quantised_output"], "quantised output"),
            output_scales=_ints(obj["output_scales"], "output scales"),
            output_shapes=_shapes(obj["output_shapes"], "output shapes"),
        )
