"""The one receipt-issuing path: sign, bundle, log.

Every flow (ONNX, chat, relay, ZK) states what it computed as a :class:`Claim`
and hands it to :meth:`Issuer.issue`, which adds who issued it (node id, the
signature proof, the environment), signs the in-toto statement with the node's
Ed25519 key in a DSSE envelope, bundles it with what it commits to and the node
identity document, and appends the envelope to the transparency log. Nothing
else in the engine touches the node's private key or its log.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._canonical import canonical_json, parse_json
from .._files import write_atomic
from .._keys import key_id, raw_public
from ..attest import (
    EvidenceProducer,
    NodeIdentity,
    produce_identity,
    sign_ohttp_binding,
    software_environment,
)
from ..errors import InputError
from ..log import Log, LogStore, open_default_log
from ..receipts import (
    PREDICATE_TYPE,
    Bundle,
    build_run_statement,
    build_statement,
    receipt_from_statement,
    sign_envelope,
    utc_now,
)
from ._home import Home

__all__ = ["Claim", "Issuer", "utc_now"]

# Seconds between looks for a new identity document (Issuer.identity).
_IDENTITY_RECHECK = 1.0


@dataclass(frozen=True)
class Claim:
    """What a flow computed, as the receipt states it (all but the issuer's part).

    ``proofs`` are the output proofs beyond the node's signature, which the
    issuer always lists first.
    """

    output_digest: str
    model: dict[str, Any]
    input_block: dict[str, Any]
    runtime: dict[str, Any]
    nonce: str | None
    started: str
    finished: str
    parameters: dict[str, Any]
    proofs: list[dict[str, Any]] = field(default_factory=list)


class Issuer:
    """The node's key, identity and log; issues every receipt (see the module docs).

    Example::

        issuer = Issuer(Home.open())
        bundle = issuer.issue(claim, outputs=encoded, inputs=None, model_signature=None)
    """

    def __init__(
        self,
        home: Home,
        *,
        log: bool = True,
        log_store: Callable[[], LogStore | None] | None = None,
    ) -> None:
        """``log_store`` opens the log's store when the log is first used (None, or
        returning None: ``log/log.sqlite`` in the home)."""
        self.home = home
        self.log_enabled = log
        self._log_store = log_store
        self._key = home.node_key()
        self.public_key = raw_public(self._key.public_key())
        self.node_id = key_id(self.public_key)
        self._log: Log | None = None
        self._identity: NodeIdentity | None = None
        self._identity_checked = -_IDENTITY_RECHECK
        self._lock = threading.Lock()

    def sign_ohttp_keys(self, keys: bytes) -> bytes:
        """The node key's signature binding an ``application/ohttp-keys`` body to this
        node (domain-separated: attest/_keybinding.py), for the identity document."""
        return sign_ohttp_binding(self._key, keys)

    # -- the log ------------------------------------------------------------------------
    @property
    def log(self) -> Log:
        """The node's transparency log (opened on first use)."""
        with self._lock:
            if self._log is None:
                # Group commit without an artificial wait: appends that arrive while a
                # batch is being made durable form the next batch.
                store = self._log_store() if self._log_store is not None else None
                self._log = open_default_log(self.home.root, max_delay=0.0, store=store)
            return self._log

    def close(self) -> None:
        """Flush pending log appends and close the log."""
        with self._lock:
            log, self._log = self._log, None
        if log is not None:
            log.close()

    # -- identity and environment ---------------------------------------------------------
    @property
    def identity(self) -> NodeIdentity | None:
        """The node identity document from ``node attest``, if this node is in a TEE."""
        path = self.home.identity
        if self._identity is None and self._look_for_identity() and path.is_file():
            self._identity = NodeIdentity.from_json(parse_json(path.read_bytes(), "identity"))
            if self._identity.node_key != self.public_key:
                raise InputError(f"{path} binds another key than this node's; run node attest")
        return self._identity

    def _look_for_identity(self) -> bool:
        """Whether to look for an identity file now: at most once a second (a stat per
        receipt was 3% of a node's time; ``node attest`` beside a running node is seen
        within the second)."""
        now = time.monotonic()
        if now - self._identity_checked < _IDENTITY_RECHECK:
            return False
        self._identity_checked = now
        return True

    def environment(self) -> dict[str, Any]:
        """The environment block this node puts in its receipts."""
        env = software_environment()
        identity = self.identity
        if identity is None:
            return env
        # The software measurement stays, beside the evidence that backs the key.
        env = {
            **env,
            "type": "hardware",
            "hardware_backed": True,
            "platform": identity.platform,
            "identity": identity.digest,
        }
        if identity.app_compose is not None:
            # dstack: the compose hash RTMR3 carries, beside the image the measurement
            # names; a verifier derives it again (docs/environment.md).
            env["compose_hash"] = hashlib.sha256(identity.app_compose).hexdigest()
        return env

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
        write_atomic(self.home.identity, canonical_json(identity.doc), mode=0o644)
        self._identity = identity
        return identity

    # -- issuing ------------------------------------------------------------------------
    def statement(self, claim: Claim) -> dict[str, Any]:
        """The full receipt statement for ``claim``, as this node signs it."""
        return build_statement(
            output_digest=claim.output_digest,
            model=claim.model,
            input_block=claim.input_block,
            runtime=claim.runtime,
            environment=self.environment(),
            proofs=[{"type": "signature", "key": self.node_id}, *claim.proofs],
            node_id=self.node_id,
            nonce=claim.nonce,
            started=claim.started,
            finished=claim.finished,
            parameters=claim.parameters,
        )

    def issue(
        self,
        claim: Claim,
        *,
        outputs: dict[str, Any],
        inputs: dict[str, Any] | None,
        model_signature: bytes | None,
        proofs: dict[str, Any] | None = None,
    ) -> Bundle:
        """Sign the receipt for ``claim``, bundle it with what it commits to, and log it.

        ``outputs`` and ``inputs`` are the bundle's clear-text copies (``inputs`` is
        None for a private input), ``proofs`` the bundle's proofs too big for the
        receipt (a ZK proof)."""
        statement = self.statement(claim)
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

    def sign_run(
        self,
        run_id: str,
        calls: list[tuple[str, str]],
        *,
        started: str,
        agent: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], str | None]:
        """Sign and log the chain of a run whose calls are ``(tool, receipt digest)``
        (receipts/_runrecord.py); return the envelope and its tlog-proof."""
        statement = build_run_statement(
            run_id=run_id,
            node_id=self.node_id,
            calls=calls,
            started=started,
            finished=utc_now(),
            agent=agent,
        )
        return self.sign_statement(statement)

    def sign_statement(self, statement: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Sign an in-toto statement other than a receipt (a run record, a workflow
        run's failure) with the node's key, and log it; return the envelope and its
        tlog-proof. Its predicate type keeps it from passing for a receipt."""
        if statement.get("predicateType") == PREDICATE_TYPE:
            raise InputError("receipts are issued through Issuer.issue, with their checks")
        envelope = sign_envelope(canonical_json(statement), self._key)
        if not self.log_enabled:
            return envelope, None
        return envelope, self.log.append(canonical_json(envelope)).tlog_proof().encode()
