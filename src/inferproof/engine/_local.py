"""The embedded default: one process, SQLite and a folder under INFERPROOF_HOME.

:class:`LocalNode` is a thin facade: it owns the stores, the issuer and the model
caches, and each method hands them to one flow (``_onnx``, ``_zk``, ``_chat``,
``_embed``, ``_relay``, ``_push``). The flows never see the facade.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from .._files import PathLike
from ..attest import EvidenceProducer, NodeIdentity, software_environment
from ..errors import InputError
from ..hub import (
    BlobStore,
    Hub,
    LocalBlobStore,
    MemoryBlobStore,
    ModelRecord,
    Registry,
    SQLiteRegistry,
)
from ..log import Log
from ..receipts import RunRecorder
from ..runtime import LlamaModel, NamedInputs
from ..verify import LoggedImages, Policy, TrustRoot, Verifier
from . import _chat, _embed, _onnx, _push, _relay
from ._chat import ChatResult, ChatStream
from ._chatmodels import ChatConfig, ChatModels
from ._embed import EmbeddingResult
from ._home import Home
from ._issue import Issuer
from ._models import ModelRef, OnnxModels
from ._onnx import InferenceResult
from ._storage import Storage
from ._zk import Prover, ZkFlow

if TYPE_CHECKING:
    from ..proofs.zk import ZkSetup
    from ..receipts import Bundle

__all__ = ["LocalNode"]


class LocalNode:
    """Push models, run verifiable inferences and verify bundles on this machine.

    Example::

        node = LocalNode()                       # $INFERPROOF_HOME or ~/.inferproof
        record = node.push(Path("model.onnx"), name="risk")
        result = node.infer("risk", {"x": np.ones((1, 4), np.float32)})
        node.verifier().verify(result.bundle)
    """

    def __init__(
        self,
        home: Home | str | os.PathLike[str] | None = None,
        *,
        log: bool = True,
        chat: ChatConfig | None = None,
        blobs: BlobStore | None = None,
        registry: Registry | None = None,
        storage: Storage | None = None,
        zk_prover: Prover | None = None,
    ) -> None:
        """``log=False`` skips the transparency log (for measuring the receipt alone);
        ``chat`` sets how GGUF models run; ``storage`` says where the registry, the
        log and the blobs live (:class:`Storage`: PostgreSQL and S3; by default what
        ``INFERPROOF_DATABASE``, ``INFERPROOF_BLOBS``, ``INFERPROOF_S3_ENDPOINT`` or the
        home's ``config.toml`` name, else the embedded SQLite files and folder);
        ``blobs`` and ``registry`` replace those two stores with objects of the
        caller's (an :class:`~inferproof.stores.S3BlobStore`, a
        :class:`~inferproof.stores.SQLRegistry`); ``zk_prover`` makes ZK proofs
        elsewhere than in this process (a :class:`RayProver`; every proof it returns
        is verified here before it is signed)."""
        self.home = home if isinstance(home, Home) else Home.open(home)
        self.storage = storage if storage is not None else Storage.resolve(self.home.root)
        software_environment()  # measured once, up front: the first call takes ~1 s
        blobs = blobs if blobs is not None else self.storage.open_blobs()
        registry = registry if registry is not None else self.storage.open_registry()
        root = self.home.root
        self.hub = Hub(
            blobs if blobs is not None else LocalBlobStore(root / "blobs"),
            registry if registry is not None else SQLiteRegistry(root / "registry.sqlite"),
        )
        self.issuer = Issuer(self.home, log=log, log_store=self.storage.open_log_store)
        self._onnx = OnnxModels(self.hub)
        self._chat = ChatModels(self.hub, chat)
        self._zk = ZkFlow(self._onnx, self.home.zk, zk_prover)

    # -- identity, environment, log ------------------------------------------------------
    @property
    def node_id(self) -> str:
        """``sha256:<hex>`` of the node's raw Ed25519 public key."""
        return self.issuer.node_id

    @property
    def public_key(self) -> bytes:
        """The node's raw 32-byte Ed25519 public key."""
        return self.issuer.public_key

    @property
    def log_enabled(self) -> bool:
        return self.issuer.log_enabled

    @property
    def log(self) -> Log:
        """The node's transparency log (opened on first use)."""
        return self.issuer.log

    @property
    def identity(self) -> NodeIdentity | None:
        """The node identity document from ``node attest``, if this node is in a TEE."""
        return self.issuer.identity

    def environment(self) -> dict[str, Any]:
        """The environment block this node puts in its receipts."""
        return self.issuer.environment()

    def attest(
        self,
        producer: EvidenceProducer,
        nonce: bytes | None = None,
        collateral: tuple[bytes, ...] = (),
        now: datetime | None = None,
    ) -> NodeIdentity:
        """Bind this node's key into hardware evidence and keep the identity document."""
        return self.issuer.attest(producer, nonce, collateral, now)

    def close(self) -> None:
        """Unload chat models, flush pending log appends, close the log."""
        self._chat.unload()
        self.issuer.close()

    def __enter__(self) -> LocalNode:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- models -----------------------------------------------------------------------
    def push(
        self,
        model: PathLike | bytes,
        *,
        name: str,
        version: str | None = None,
        sign_key: PathLike | None = None,
        signature: bytes | None = None,
    ) -> ModelRecord:
        """Check the file is a loadable ONNX or GGUF model, store it, optionally sign it
        (``sign_key``) or record a publisher's ready signature bundle (``signature``)."""
        return _push.push(
            self._onnx, self._chat, self.home.trust, model,
            name=name, version=version, sign_key=sign_key, signature=signature,
        )  # fmt: skip

    def resolve(self, ref: ModelRef) -> tuple[ModelRecord | None, dict[str, Any]]:
        """Find an ONNX model by digest or ``name[:version]`` (a ``str``), or a file (a
        path object; a ``str`` is never a path): the hub record (None for a file) and
        the receipt's model block."""
        return self._onnx.resolve(ref)

    def model_bytes(self, digest: str) -> bytes | None:
        """The model's bytes from the local hub, checked, or None if it is not here."""
        return self.hub.blobs.get(digest) if self.hub.blobs.has(digest) else None

    # -- tensor inference -----------------------------------------------------------------
    def infer(
        self,
        model_ref: ModelRef,
        inputs: NamedInputs | Mapping[str, Any],
        *,
        nonce: str | None = None,
        private_input: bool = False,
        private_output: bool | None = None,
        mode: str = "vanilla",
        progress: Callable[[str], None] | None = None,
        workflow: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> InferenceResult:
        """Run a model and return its outputs with a signed receipt bundle.

        ``inputs`` maps input names to numpy arrays, or to plain nested lists, which
        are cast to the model's dtypes when every value fits exactly.

        ``mode`` is ``vanilla`` (signature and re-execution), ``zk`` (adds a
        zero-knowledge proof; the model must be set up) or ``tee`` (needs a TEE).
        ``progress`` receives a line per step of long modes. ``private_input`` commits to
        a salted input digest; ``private_output`` (by default the same) to a salted
        output digest, keeping the outputs out of the bundle: the caller keeps
        :attr:`InferenceResult.salt` (and the outputs) to prove them later.
        ``workflow`` and ``provenance`` are a workflow run's (see :mod:`inferproof.workflows`).
        """
        return _onnx.infer(
            self.issuer, self._onnx, self._zk, model_ref, inputs, nonce=nonce,
            private_input=private_input, private_output=private_output, mode=mode,
            progress=progress, workflow=workflow, provenance=provenance,
        )  # fmt: skip

    def zk_setup(
        self,
        model_ref: ModelRef,
        samples: list[NamedInputs],
        *,
        progress: Callable[[str], None] | None = None,
        **options: Any,
    ) -> ZkSetup:
        """Set a model up for zero-knowledge proofs once (see :mod:`inferproof.proofs.zk`)."""
        return self._zk.setup(model_ref, samples, progress=progress, **options)

    def zk_setups(self, model_ref: ModelRef) -> list[ZkSetup]:
        """The ZK setups made for a hub model (one per set of options)."""
        return self._zk.setups(model_ref)

    def zk_setup_of(self, bundle: Bundle, srs: bytes | None = None) -> tuple[ZkSetup, BlobStore]:
        """The setup a ZK bundle's proof was made for, and a store with its artifacts:
        this hub's, or the bundle's own with the SRS from this hub or ``srs`` (the bytes
        of an SRS file the caller trusts). VerificationError naming the check if not."""
        from ..verify import zk_setup_of

        store: BlobStore = self.hub.blobs
        if srs is not None:
            store = MemoryBlobStore()
            store.put(srs)
        return zk_setup_of(bundle, self._zk.resolver, store)

    # -- chat (LLM) -------------------------------------------------------------------------
    def chat(
        self,
        model_ref: ModelRef,
        request: Mapping[str, Any],
        *,
        private: bool = False,
        nonce: str | None = None,
    ) -> ChatResult:
        """Answer an OpenAI-shaped chat request (``messages``, ``max_tokens``,
        ``temperature``, ``seed``…) with the GGUF model ``model_ref``; sign and log it.

        ``private=True`` commits to salted digests of the request and the answer; the
        opening is in :attr:`ChatResult.opening` (and the response's ``inferproof``
        field). Bad requests raise :class:`InputError`.
        """
        return _chat.answer(
            self.issuer, self._chat, "chat", model_ref, request, private=private, nonce=nonce
        )

    def complete(
        self,
        model_ref: ModelRef,
        request: Mapping[str, Any],
        *,
        private: bool = False,
        nonce: str | None = None,
    ) -> ChatResult:
        """As :meth:`chat` for a text completion (``prompt`` instead of ``messages``)."""
        return _chat.answer(
            self.issuer, self._chat, "completion", model_ref, request, private=private, nonce=nonce
        )

    def chat_stream(
        self,
        model_ref: ModelRef,
        request: Mapping[str, Any],
        *,
        private: bool = False,
        nonce: str | None = None,
    ) -> ChatStream:
        """As :meth:`chat`, streamed. The request is checked (and bad requests raise
        :class:`InputError`) before this returns, so an error never starts a stream."""
        return _chat.open_stream(
            self.issuer, self._chat, "chat", model_ref, request, private=private, nonce=nonce
        )

    def complete_stream(
        self,
        model_ref: ModelRef,
        request: Mapping[str, Any],
        *,
        private: bool = False,
        nonce: str | None = None,
    ) -> ChatStream:
        """As :meth:`complete`, streamed."""
        return _chat.open_stream(
            self.issuer, self._chat, "completion", model_ref, request, private=private,
            nonce=nonce,
        )  # fmt: skip

    def relay_chat(
        self,
        upstream: str,
        request: Mapping[str, Any],
        *,
        api_key: str | None = None,
        private: bool = False,
        nonce: str | None = None,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> ChatResult:
        """Forward a chat request to an OpenAI-compatible ``upstream`` and sign what
        came back; the receipt says it was relayed (see :mod:`._relay`)."""
        return _relay.relay_chat(
            self.issuer, self.hub, upstream, request, api_key=api_key, private=private,
            nonce=nonce, timeout=timeout, transport=transport,
        )  # fmt: skip

    def embed(
        self,
        model_ref: ModelRef,
        request: Mapping[str, Any],
        *,
        private: bool = False,
        nonce: str | None = None,
    ) -> EmbeddingResult:
        """Embed an OpenAI-shaped request (``{"input": str | [str], "encoding_format"?}``)
        with the GGUF model ``model_ref``; sign and log the receipt. The response is
        OpenAI's embedding ``list``, the receipt in its ``inferproof`` field; a
        verifier re-runs the inputs and requires identical float32 bytes.

        ``private=True`` commits to salted digests of the inputs and the vectors; the
        opening is in :attr:`EmbeddingResult.opening`. Bad requests raise
        :class:`InputError`.
        """
        return _embed.embed(
            self.issuer, self._chat, model_ref, request, private=private, nonce=nonce
        )

    def chat_model(self, model_ref: ModelRef) -> LlamaModel:
        """Load the GGUF model ``model_ref`` now (it is kept loaded for later answers)."""
        return self._chat.resolve(model_ref)[2]

    def chat_models(self) -> dict[str, Any]:
        """The hub's GGUF models as OpenAI's ``GET /v1/models`` list."""
        return self._chat.listing()

    def configure_chat(self, config: ChatConfig) -> None:
        """Run GGUF models with ``config`` from now on (loaded models are unloaded)."""
        self._chat.configure(config)

    # -- agent runs ---------------------------------------------------------------------------
    def sign_run(
        self,
        run_id: str,
        calls: list[tuple[str, str]],
        started: str,
        agent: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], str | None]:
        """Sign and log the chain of an agent run's calls, ``(tool, receipt digest)`` in
        order (see :class:`RunRecorder`, which calls this)."""
        return self.issuer.sign_run(run_id, calls, started=started, agent=agent)

    def run_recorder(
        self, *, run_id: str | None = None, agent: dict[str, Any] | None = None
    ) -> RunRecorder:
        """A :class:`RunRecorder` whose records this node signs."""
        return RunRecorder(self.sign_run, run_id=run_id, agent=agent)

    # -- verification -------------------------------------------------------------------------
    def trust_root(self) -> TrustRoot:
        """This install's trust: its own node and log keys, and what is under trust/:
        ``nodes/*.pub`` (base64 Ed25519), ``publishers/*.pem``, ``logs/*.vkey`` and
        ``witnesses/*.vkey`` (C2SP note verifier keys)."""
        return TrustRoot.from_directory(
            self.home.trust, node_keys=[self.public_key], log_keys=[self.log.verifier_key]
        )

    def verifier(
        self,
        policy: Policy | None = None,
        trust: TrustRoot | None = None,
        *,
        srs: bytes | None = None,
        images: LoggedImages | None = None,
    ) -> Verifier:
        """A verifier with this install's trust root (or ``trust``), remembering
        checkpoints under INFERPROOF_HOME and proving consistency from the local log;
        ``images`` are the logged images it accepts (docs/environment.md).

        ZK setups come from this hub, or from the bundle itself; the SRS from this
        hub, or ``srs`` (the bytes of an SRS file the caller trusts)."""
        srs_store: BlobStore = self.hub.blobs
        if srs is not None:
            srs_store = MemoryBlobStore()
            srs_store.put(srs)
        return Verifier(
            trust or self.trust_root(),
            policy,
            checkpoint_memory=self.home.checkpoints,
            consistency=self.consistency_proof,
            zk_resolver=self._zk.resolver,
            zk_srs=srs_store,
            images=images,
        )

    def consistency_proof(self, origin: str, old: int, new: int) -> list[bytes]:
        """An RFC 9162 consistency proof between two sizes of this node's log."""
        if origin != self.log.origin:
            raise InputError(f"no consistency proofs for log {origin!r} on this machine")
        return self.log.consistency_proof(old, new)
