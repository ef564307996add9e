"""The embedded default: one process, SQLite and a folder under INFERPROOF_HOME."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._canonical import canonical_json, is_digest, parse_json
from ._home import Home, key_id, raw_public, write_private
from ._zkflow import load_setup, prove_inference, setup_model
from .attest._identity import NodeIdentity, produce_identity
from .attest._producers import EvidenceProducer
from .attest._software import software_environment
from .errors import InputError
from .hub import BlobStore, Hub, ModelRecord, load_publisher_key, publisher_id, sign_model
from .log import Log, VerifierKey, open_default_log
from .proofs import ProveContext, Reexecution
from .receipts import Bundle, build_statement, commit_input, sign_envelope
from .receipts._statement import receipt_from_statement
from .runtime import NamedInputs, OnnxModel, encode_tensors, engine_info, tensors_digest
from .runtime._llm_gguf import is_gguf
from .runtime._spec import TensorSpec
from .verify import Policy, TrustRoot, Verifier

if TYPE_CHECKING:
    from ._chat import ChatResult
    from .proofs.zk import ZkSetup

SALT_SCHEME = "salted-sha256-v1"
MODES = ("vanilla", "zk", "tee")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class InferenceResult:
    """What :meth:`LocalNode.infer` returns: the outputs, the bundle, and for private
    inputs the opening (salt) that only the caller receives."""

    outputs: dict[str, np.ndarray]
    bundle: Bundle
    salt: bytes | None = None


class LocalNode:
    """Push models, run verifiable inferences and verify bundles on this machine.

    Example::

        node = LocalNode()                       # $INFERPROOF_HOME or ~/.inferproof
        record = node.push(Path("model.onnx"), name="risk")
        result = node.infer("risk", {"x": np.ones((1, 4), np.float32)})
        node.verifier().verify(result.bundle)
    """

    def __init__(self, home: Home | Path | None = None, *, log: bool = True) -> None:
        """``log=False`` skips the transparency log (for measuring the receipt alone)."""
        self.home = home if isinstance(home, Home) else Home.open(home)
        self.log_enabled = log
        self._log: Log | None = None
        self._identity: NodeIdentity | None = None
        software_environment()  # measured once, up front: the first call takes ~1 s
        self.hub = Hub.local(self.home.root)
        self._key = self.home.node_key()
        self.public_key = raw_public(self._key.public_key())
        self.node_id = key_id(self.public_key)
        self._models: dict[str, OnnxModel] = {}
        self._records: dict[str, ModelRecord] = {}
        self._lock = threading.Lock()

    @property
    def log(self) -> Log:
        """The node's transparency log (opened on first use)."""
        with self._lock:
            if self._log is None:
                # Group commit without an artificial wait: appends that arrive while a
                # batch is being made durable form the next batch.
                self._log = open_default_log(self.home.root, max_delay=0.0)
            return self._log

    def close(self) -> None:
        """Flush pending log appends, close the log, unload chat models."""
        from ._chat import unload

        unload(self)
        with self._lock:
            log, self._log = self._log, None
        if log is not None:
            log.close()

    def __enter__(self) -> LocalNode:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def identity(self) -> NodeIdentity | None:
        """The node identity document from ``node attest``, if this node is in a TEE."""
        path = self.home.root / "identity.json"
        if self._identity is None and path.is_file():
            self._identity = NodeIdentity.from_json(parse_json(path.read_bytes(), "identity"))
            if self._identity.node_key != self.public_key:
                raise InputError(f"{path} binds another key than this node's; run node attest")
        return self._identity

    def environment(self) -> dict[str, Any]:
        """The environment block this node puts in its receipts."""
        env = software_environment()
        identity = self.identity
        if identity is None:
            return env
        # The software measurement stays, beside the evidence that backs the key.
        return {
            **env,
            "type": "hardware",
            "hardware_backed": True,
            "platform": identity.platform,
            "identity": identity.digest,
        }

    def attest(
        self,
        producer: EvidenceProducer,
        nonce: bytes | None = None,
        collateral: tuple[bytes, ...] = (),
        now: datetime | None = None,
    ) -> NodeIdentity:
        """Bind this node's key into hardware evidence and keep the identity document."""
        identity = produce_identity(
            producer, self.public_key, nonce=nonce, collateral=collateral, now=now
        )
        path = self.home.root / "identity.json"
        tmp = path.with_name("identity.json.tmp")
        tmp.write_bytes(canonical_json(identity.doc))
        os.replace(tmp, path)
        self._identity = identity
        return identity

    # -- models ---------------------------------------------------------------
    def push(
        self,
        model: Path | bytes,
        *,
        name: str,
        version: str | None = None,
        sign_key: Path | None = None,
        signature: bytes | None = None,
    ) -> ModelRecord:
        """Check the file is a loadable ONNX or GGUF model, store it, optionally sign it
        (``sign_key``) or record a publisher's ready signature bundle (``signature``)."""
        if sign_key is not None and signature is not None:
            raise InputError("give a signing key or a signature, not both")
        data = _read_model(model)
        loaded: OnnxModel | None = None
        inputs: tuple[TensorSpec, ...]
        outputs: tuple[TensorSpec, ...]
        if is_gguf(data):
            from ._chat import check_gguf

            check_gguf(self, data)
            inputs, outputs, fmt = (), (), "gguf"
        else:
            loaded = OnnxModel(data)
            inputs, outputs, fmt = loaded.signature.inputs, loaded.signature.outputs, "onnx"
        if sign_key is not None:
            signature = sign_model(data, sign_key)
        record = self.hub.add(
            data,
            name=name,
            version=version,
            inputs=inputs,
            outputs=outputs,
            signature=signature,
            fmt=fmt,
        )
        if sign_key is not None:
            self._trust_own_publisher(sign_key)
        with self._lock:
            if loaded is not None:
                self._models.setdefault(record.digest, loaded)
            self._records.pop(record.digest, None)
        return record

    def _trust_own_publisher(self, sign_key: Path) -> None:
        # The local user holds this private key, so the local trust root trusts
        # its public half, as a fresh install trusts its own node key.
        from cryptography.hazmat.primitives import serialization

        priv = serialization.load_pem_private_key(sign_key.read_bytes(), password=None)
        pem = priv.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        pid = publisher_id(load_publisher_key(pem))
        target = self.home.root / "trust" / "publishers" / f"{pid.split(':')[1]}.pem"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(pem)

    def resolve(self, ref: str) -> tuple[ModelRecord | None, dict[str, Any]]:
        """Find a model by digest, ``name[:version]`` or file path.

        Returns the hub record (None for a file) and the receipt's model block. The
        model's bytes are loaded, and checked against the digest, once per process.
        """
        path = Path(ref)
        if not is_digest(ref) and (path.suffix == ".onnx" or os.sep in ref):
            data = _read_model(path)
            digest = self.hub.blobs.put(data)
            self._model(digest, data)
            return None, {"digest": digest, "name": path.stem, "version": None}
        record = self._records.get(ref) if is_digest(ref) else None
        if record is None:
            record = self.hub.resolve(ref)
            # Records are immutable per digest; caching saves a SQLite query per call.
            # (push() refreshes it when this process adds a signature.)
            with self._lock:
                self._records[record.digest] = record
        self._model(record.digest)
        block = {"digest": record.digest, "name": record.name, "version": record.version}
        return record, block

    def _model(self, digest: str, data: bytes | None = None) -> OnnxModel:
        with self._lock:
            model = self._models.get(digest)
        if model is None:
            model = OnnxModel(data if data is not None else self.hub.load(digest))
            with self._lock:
                self._models[digest] = model
        return model

    # -- inference ------------------------------------------------------------
    def infer(
        self,
        model_ref: str,
        inputs: NamedInputs | Mapping[str, np.ndarray],
        *,
        nonce: str | None = None,
        private_input: bool = False,
        mode: str = "vanilla",
        progress: Callable[[str], None] | None = None,
    ) -> InferenceResult:
        """Run a model and return its outputs with a signed receipt bundle.

        ``mode`` is ``vanilla`` (signature and re-execution), ``zk`` (adds a
        zero-knowledge proof; the model must be set up) or ``tee`` (needs a TEE).
        ``progress`` receives a line per step of long modes.
        """
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if mode == "tee" and self.identity is None:
            raise InputError(
                "mode 'tee' needs a hardware-attested node (see `inferproof node attest`)"
            )
        record, model_block = self.resolve(model_ref)
        named = inputs if isinstance(inputs, NamedInputs) else NamedInputs(dict(inputs))
        model = self._model(str(model_block["digest"]))
        tensors = model.conform(named.tensors, named.untyped)
        started = _now()
        outputs = model.run(tensors)
        finished = _now()
        signature = self.hub.signature(record) if record else None
        model_block.update(
            format="onnx",
            signature=record.signature_digest if record else None,
            publisher=record.publisher if record else None,
        )
        input_digest = tensors_digest(tensors)
        salt = os.urandom(32) if private_input else None
        input_block = (
            {"commitment": commit_input(input_digest, salt), "scheme": SALT_SCHEME}
            if salt
            else {"digest": input_digest}
        )
        runtime = engine_info()
        ctx = ProveContext(str(model_block["digest"]), tensors, outputs, runtime)
        proofs: list[dict[str, Any]] = [
            {"type": "signature", "key": self.node_id},
            Reexecution().prove(ctx),
        ]
        bundle_proofs: dict[str, Any] = {}
        if mode == "zk":
            entry, bundle_proofs["zk"] = prove_inference(
                self, str(model_block["digest"]), tensors, list(outputs), progress
            )
            proofs.append(entry)
        statement = build_statement(
            output_digest=tensors_digest(outputs),
            model=model_block,
            input_block=input_block,
            runtime=runtime,
            environment=self.environment(),
            proofs=proofs,
            node_id=self.node_id,
            nonce=nonce,
            started=started,
            finished=finished,
            parameters={"mode": mode},
        )
        bundle = self.issue(
            statement,
            outputs=encode_tensors(outputs),
            inputs=None if salt else encode_tensors(tensors),
            model_signature=signature,
            proofs=bundle_proofs,
        )
        return InferenceResult(outputs, bundle, salt)

    def issue(
        self,
        statement: dict[str, Any],
        *,
        outputs: dict[str, Any],
        inputs: dict[str, Any] | None,
        model_signature: bytes | None,
        proofs: dict[str, Any] | None = None,
    ) -> Bundle:
        """Sign a receipt statement, bundle it with what it commits to, and log it.

        The one place receipts are issued, for tensors and chat alike: the node's
        identity document rides along, and the envelope goes into the log.
        """
        envelope = sign_envelope(canonical_json(statement), self._key)
        bundle = Bundle(
            envelope=envelope,
            receipt=receipt_from_statement(statement),
            outputs=outputs,
            inputs=inputs,
            model_signature=model_signature.decode() if model_signature else None,
            attestation=self.identity.doc if self.identity else None,
            proofs=proofs or {},
        )
        if self.log_enabled:
            appended = self.log.append(canonical_json(envelope))
            bundle = bundle.with_tlog_entry(appended.tlog_proof().encode())
        return bundle

    # -- chat (LLM) -------------------------------------------------------------
    def chat(self, model_ref: str, request: Mapping[str, Any], **kwargs: Any) -> ChatResult:
        """An OpenAI-shaped chat completion with a receipt (see :mod:`inferproof._chat`)."""
        from ._chat import chat

        return chat(self, model_ref, request, **kwargs)

    def complete(self, model_ref: str, request: Mapping[str, Any], **kwargs: Any) -> ChatResult:
        """An OpenAI-shaped text completion with a receipt."""
        from ._chat import complete

        return complete(self, model_ref, request, **kwargs)

    # -- verification -----------------------------------------------------------
    def trust_root(self) -> TrustRoot:
        """This install's trust: its own node and log keys, and what is under trust/:
        ``nodes/*.pub`` (base64 Ed25519), ``publishers/*.pem``, ``logs/*.vkey`` and
        ``witnesses/*.vkey`` (C2SP note verifier keys)."""
        trust = self.home.root / "trust"
        pems = sorted((trust / "publishers").glob("*.pem"))
        nodes = [self.public_key]
        nodes.extend(_node_pub(extra) for extra in sorted((trust / "nodes").glob("*.pub")))
        root = TrustRoot.from_keys(nodes, [p.read_bytes() for p in pems])
        logs = [
            VerifierKey.parse(p.read_text().strip())
            for p in sorted((trust / "logs").glob("*.vkey"))
        ]
        logs.append(self.log.verifier_key)
        witnesses = tuple(
            VerifierKey.parse(p.read_text().strip())
            for p in sorted((trust / "witnesses").glob("*.vkey"))
        )
        return replace(root, log_keys={k.name: k for k in logs}, witness_keys=witnesses)

    def verifier(self, policy: Policy | None = None, trust: TrustRoot | None = None) -> Verifier:
        """A verifier with this install's trust root (or ``trust``), remembering
        checkpoints under INFERPROOF_HOME and proving consistency from the local log."""
        return Verifier(
            trust or self.trust_root(),
            policy,
            checkpoint_memory=self.home.checkpoints,
            consistency=self._consistency,
            zk_resolver=self._zk_setup,
        )

    def _zk_setup(self, setup_digest: str) -> tuple[ZkSetup, BlobStore] | None:
        record = load_setup(self, setup_digest)
        return None if record is None else (record, self.hub.blobs)

    def zk_setup(
        self,
        model_ref: str,
        samples: list[NamedInputs],
        *,
        progress: Callable[[str], None] | None = None,
        **options: Any,
    ) -> ZkSetup:
        """Set a model up for zero-knowledge proofs once (see :mod:`inferproof.proofs.zk`)."""
        return setup_model(self, model_ref, samples, progress=progress, **options)

    def _consistency(self, origin: str, old: int, new: int) -> list[bytes]:
        if origin != self.log.origin:
            raise InputError(f"no consistency proofs for log {origin!r} on this machine")
        return self.log.consistency_proof(old, new)

    def model_bytes(self, digest: str) -> bytes | None:
        """The model's bytes from the local hub, checked, or None if it is not here."""
        return self.hub.blobs.get(digest) if self.hub.blobs.has(digest) else None


def _note_keys(folder: Path) -> list[VerifierKey]:
    return [VerifierKey.parse(p.read_text().strip()) for p in sorted(folder.glob("*.vkey"))]


def _node_pub(path: Path) -> bytes:
    import base64

    try:
        raw = base64.b64decode(path.read_text().strip(), validate=True)
    except ValueError as exc:
        raise InputError(f"{path} is not a base64 Ed25519 public key") from exc
    return raw


def _read_model(model: Path | bytes) -> bytes:
    if isinstance(model, bytes):
        return model
    if not model.is_file():
        raise InputError(f"model file {model} does not exist")
    return model.read_bytes()


def save_opening(path: Path, salt: bytes) -> None:
    """Write the private-input opening (the salt) to a 0600 file."""
    body = {"scheme": SALT_SCHEME, "salt": salt.hex()}
    if path.exists():
        path.unlink()
    write_private(path, canonical_json(body) + b"\n")


def load_opening(path: Path) -> bytes:
    """Read the salt from an opening file written by :func:`save_opening`."""
    from ._canonical import parse_json

    if not path.is_file():
        raise InputError(f"opening file {path} does not exist")
    obj = parse_json(path.read_bytes(), "opening", 4096)
    salt = obj.get("salt") if isinstance(obj, dict) else None
    if not isinstance(obj, dict) or obj.get("scheme") != SALT_SCHEME or not isinstance(salt, str):
        raise InputError(f"{path} is not an inferproof input opening")
    try:
        raw = bytes.fromhex(salt)
    except ValueError as exc:
        raise InputError(f"{path}: salt is not hex") from exc
    if len(raw) != 32:
        raise InputError(f"{path}: salt must be 32 bytes")
    return raw
