"""The verifier: a trust root and a policy in, a typed report of every check out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .._canonical import canonical_json, sha256_digest
from .._checks import Check, CheckStatus, failed, not_checked, passed
from .._keys import raw_public
from ..attest import (
    NodeIdentity,
    attested_measurements,
    identity_age_check,
    identity_signer_check,
    max_identity_age,
    verify_identity_evidence,
)
from ..errors import InputError, VerificationError
from ..hub import BlobStore, verify_model_signature
from ..log import CheckpointMemory, VerifierKey
from ..proofs import (
    Reexecution,
    VerifyContext,
    chat_checks,
    embedding_checks,
    is_chat_receipt,
    is_embedding_receipt,
)
from ..receipts import Bundle, Receipt, opens, verify_envelope
from ..runtime import (
    ChatOpening,
    EmbeddingOpening,
    EmbeddingOutput,
    OnnxModel,
    decode_tensors,
    output_opens,
    tensors_digest,
)
from ._imagecheck import LoggedImages, attested_image, logged_image_check
from ._logcheck import ConsistencySource, Logged, log_checks
from ._policy import Policy, TrustRoot
from ._zkcheck import ZkResolver, zk_checks

# Receipts stamped in the future by more than this are refused: it allows for
# ordinary clock skew between a node and a verifier, and no more.
CLOCK_SKEW_SECONDS = 300.0


@dataclass(frozen=True)
class Material:
    """What the user supplied beside the bundle: model bytes, input, opening, nonce, time.

    ``salt`` opens a private receipt's commitments; ``outputs`` are the outputs a
    receipt that commits to them keeps out of its bundle (from the opening)."""

    model_bytes: bytes | None = None
    inputs: Mapping[str, np.ndarray] | None = None
    untyped: frozenset[str] = frozenset()
    salt: bytes | None = None
    outputs: Mapping[str, np.ndarray] | None = None
    nonce: str | None = None
    now: datetime | None = None
    chat_opening: ChatOpening | None = None
    embedding_opening: EmbeddingOpening | None = None


@dataclass(frozen=True)
class VerificationReport:
    """Every check made and not made; ``verified`` only when the policy is satisfied."""

    verified: bool
    checks: tuple[Check, ...]
    receipt: Receipt

    def to_json(self) -> dict[str, Any]:
        return {"verified": self.verified, "checks": [c.to_json() for c in self.checks]}

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if c.status is CheckStatus.FAILED), None)


@dataclass(frozen=True)
class VerifiedReceipt:
    """A receipt whose checks all satisfied the policy."""

    receipt: Receipt
    checks: tuple[Check, ...]
    outputs: dict[str, np.ndarray] = field(default_factory=dict)


class Verifier:
    """Verify receipt bundles against a trust root and a policy, offline.

    Example::

        verifier = Verifier(TrustRoot.from_keys([node_key]), Policy())
        report = verifier.check(Bundle.read(path))
        for check in report.checks:
            print(check.name, check.status.value, check.detail)
    """

    def __init__(
        self,
        trust: TrustRoot,
        policy: Policy | None = None,
        *,
        checkpoint_memory: Path | None = None,
        consistency: ConsistencySource | None = None,
        zk_resolver: ZkResolver | None = None,
        zk_srs: BlobStore | None = None,
        extra_checks: tuple[Callable[[Bundle, Material], Check], ...] = (),
        images: LoggedImages | None = None,
    ) -> None:
        self.trust = trust
        self.policy = policy or Policy()
        # Where the latest checkpoint of each log is remembered, and how to get a
        # consistency proof when a newer one is seen; nothing is fetched otherwise.
        self._memory = checkpoint_memory
        self._consistency = consistency
        self._zk_resolver = zk_resolver
        # Where the SRS of a ZK bundle carrying its own setup is found (a hub, a file).
        self._zk_srs = zk_srs
        self._extra = extra_checks
        # The image entries this verifier accepts (signature and log inclusion checked).
        self._images = images
        self._identities: dict[str, Check] = {}
        self._attested_images: dict[str, tuple[str, str] | Check] = {}
        self._memories: dict[str, CheckpointMemory] = {}

    def check(self, bundle: Bundle, material: Material | None = None) -> VerificationReport:
        """Run every check; never raises (see :meth:`verify` for the raising form).

        Each group of checks runs on its own: whatever a hostile bundle makes one of
        them stumble on fails that group, under its own name, and the others still
        run (a malformed bundle fails, it never raises)."""
        m = material or Material()
        r = bundle.receipt
        steps: list[tuple[str, Callable[[], Check | list[Check]]]] = [
            ("signature", lambda: self._signature(bundle)),
            ("output.digest", lambda: self._answer_checks(bundle, m)),
            ("nonce", lambda: self._nonce(r, m)),
            ("freshness", lambda: self._freshness(r, m)),
            ("log.inclusion", lambda: self._log_checks(bundle, m)),
            *((f"extra.{i}", lambda e=e: e(bundle, m)) for i, e in enumerate(self._extra)),
        ]
        checks: list[Check] = []
        for name, step in steps:
            try:
                made = step()
            except Exception as exc:
                made = failed(name, f"malformed bundle ({type(exc).__name__}): {exc}"[:500])
            checks.extend(made if isinstance(made, list) else [made])
        ok = all(c.status is not CheckStatus.FAILED for c in checks)
        return VerificationReport(ok, tuple(checks), r)

    def _answer_checks(self, bundle: Bundle, m: Material) -> list[Check]:
        """Output, model, environment, input and output proofs, chat or tensors."""
        r = bundle.receipt
        if is_embedding_receipt(r):
            out_c, in_c, proof_c = embedding_checks(
                bundle,
                model=m.model_bytes,
                opening=m.embedding_opening,
                require_input=self.policy.require_input,
                require_reexecution=self.policy.require_reexecution,
            )
            env = self._environment(bundle)
            return [out_c, _model_digest(r, m), self._model_signature(bundle), env, in_c, proof_c]
        if not is_chat_receipt(r):
            return self._tensor_checks(bundle, m)
        env = self._environment(bundle)
        out_c, in_c, *answer_c = chat_checks(
            bundle,
            model=m.model_bytes,
            opening=m.chat_opening,
            require_input=self.policy.require_input,
            require_reexecution=self.policy.require_reexecution,
            accept_relayed=self.policy.accept_relayed,
            hardware_attested=env.passed and r.environment.get("type") == "hardware",
            mode=self.policy.reexecution_mode,
            tolerance=self.policy.fingerprint_tolerance,
        )
        return [out_c, _model_digest(r, m), self._model_signature(bundle), env, in_c, *answer_c]

    def _log_checks(self, bundle: Logged, m: Material) -> list[Check]:
        # The verification time, read once here at the edge: cosignatures dated after it
        # (beyond the skew allowance) do not count toward the witness quorum.
        now = int((m.now or datetime.now(UTC)).timestamp())
        return log_checks(
            bundle,
            self.trust.log_keys,
            self.trust.witness_keys,
            self.policy.witness_quorum,
            self.policy.require_log,
            self._memory_for if self._memory else None,
            self._consistency,
            now=now,
        )

    def _memory_for(self, key: VerifierKey) -> CheckpointMemory:
        # One memory per log for this verifier's life, writing at most once a second.
        memory = self._memories.get(str(key))
        if memory is None:
            assert self._memory is not None
            memory = CheckpointMemory(self._memory, key, flush_interval=1.0)
            self._memories[str(key)] = memory
        return memory

    def flush(self) -> None:
        """Write the remembered checkpoints to disk now (also done at exit)."""
        for memory in self._memories.values():
            memory.flush()

    def _tensor_checks(self, bundle: Bundle, m: Material) -> list[Check]:
        """Output, model, environment, input and output proofs of a tensor receipt."""
        r = bundle.receipt
        checks = [_output_digest(bundle, m), _model_digest(r, m), self._model_signature(bundle)]
        checks.append(self._environment(bundle))
        inputs, input_check = self._input(bundle, m)
        checks.append(input_check)
        if "provenance" in r.input:  # a workflow run's: where its input data came from
            checks.append(_provenance(bundle))
        ctx = VerifyContext(
            r,
            m.model_bytes,
            inputs,
            self.policy.require_reexecution,
            m.salt,
            claimed=_claimed_outputs(bundle, m),
            tolerance=self.policy.onnx_tolerance,
        )
        checks.append(Reexecution().verify(_proof(r, "reexecution"), ctx))
        checks.extend(
            zk_checks(
                bundle,
                inputs,
                m.model_bytes,
                required=self.policy.require_zk,
                allow_dev_srs=self.policy.allow_dev_srs,
                resolver=self._zk_resolver,
                srs=self._zk_srs,
            )
        )
        return checks

    def verify(self, bundle: Bundle, material: Material | None = None) -> VerifiedReceipt:
        """Return a :class:`VerifiedReceipt`, or raise :class:`VerificationError`
        naming the first failed check."""
        report = self.check(bundle, material)
        bad = report.first_failure
        if bad is not None:
            raise VerificationError(bad.name, bad.detail)
        return VerifiedReceipt(report.receipt, report.checks, _verified_outputs(bundle, material))

    def _signature(self, bundle: Bundle) -> Check:
        try:
            _, kid = verify_envelope(bundle.envelope, self.trust.node_keys)
        except VerificationError as exc:
            return failed("signature", exc.detail)
        if bundle.receipt.node_id != kid:
            return failed(
                "signature", f"receipt names node {bundle.receipt.node_id}, signed by {kid}"
            )
        return passed("signature", f"DSSE envelope signed by trusted node key {kid}")

    def _model_signature(self, bundle: Bundle) -> Check:
        name, recorded = "model.signature", bundle.receipt.model.get("signature")
        sig = bundle.model_signature
        if sig is None or recorded is None:
            if recorded is not None:
                return failed(name, f"receipt records signature {recorded} but the bundle lacks it")
            why = "model is unsigned (no publisher signature in the bundle)"
            return (
                failed(name, f"required by the policy: {why}")
                if self.policy.require_model_signature
                else not_checked(name, why)
            )
        if sha256_digest(sig.encode()) != recorded:
            return failed(
                name, f"bundle's signature is not the one the receipt records ({recorded})"
            )
        try:
            pid = verify_model_signature(
                sig.encode(), bundle.receipt.model_digest, self.trust.publishers
            )
        except VerificationError as exc:
            trusted_elsewhere = "not a publisher the policy trusts" in exc.detail
            if trusted_elsewhere and not self.policy.require_model_signature:
                return not_checked(name, exc.detail)
            return failed(name, exc.detail)
        except InputError as exc:
            return failed(name, str(exc))
        return passed(name, f"OpenSSF model-signing signature by trusted publisher {pid}")

    def _environment(self, bundle: Bundle) -> Check:
        name, r = "environment", bundle.receipt
        env = r.environment
        measurement = env.get("measurement")
        if not isinstance(measurement, dict) or sha256_digest(
            canonical_json(measurement)
        ) != env.get("digest"):
            return failed(name, "environment digest does not match its measurement")
        if self.policy.require_logged_image:
            if env.get("type") != "hardware":
                return logged_image_check(env, self._images)
            hardware = self._hardware(bundle)
            if not hardware.passed:
                return hardware
            return logged_image_check(env, self._images, self._attested(bundle))
        if env.get("type") == "hardware":
            return self._hardware(bundle)
        if env.get("type") != "software":
            return failed(name, f"unknown environment type {env.get('type')!r}")
        digest = env["digest"]
        label = (
            f"software measurement {digest} (inferproof {measurement.get('inferproof')}, "
            f"{measurement.get('python')}, onnxruntime {measurement.get('onnxruntime')}, "
            f"{measurement.get('platform')}): self-reported, not hardware-backed"
        )
        if self.policy.require_hardware:
            return failed(name, f"policy requires hardware attestation; got {label}")
        if not self.policy.allowed_environments:
            return not_checked(name, f"{label}; the policy has no allow-list")
        if digest not in self.policy.allowed_environments:
            return failed(name, f"{label} is not in the policy's allow-list")
        return passed(name, f"{label}; in the policy's allow-list")

    def _attested(self, bundle: Bundle) -> tuple[str, str] | Check:
        """The image a hardware receipt's (already verified) identity attests to."""
        identity = NodeIdentity.from_json(bundle.attestation)
        cached = self._attested_images.get(identity.digest)
        if cached is None:
            try:
                measured = attested_measurements(identity, self.policy.attestation)
                cached = attested_image(identity, measured)
            except (VerificationError, InputError) as exc:
                cached = failed("environment", f"policy requires a logged image: {exc}")
            self._attested_images[identity.digest] = cached
        return cached

    def _hardware(self, bundle: Bundle) -> Check:
        name, r = "environment", bundle.receipt
        if bundle.attestation is None:
            return failed(name, "receipt claims hardware attestation; the bundle has no evidence")
        try:
            identity = NodeIdentity.from_json(bundle.attestation)
        except InputError as exc:
            return failed(name, str(exc))
        if identity.digest != r.environment.get("identity"):
            return failed(name, "the bundle's node identity is not the one the receipt names")
        key = self.trust.node_keys.get(r.node_id)
        if key is None:
            return failed(name, "cannot check the key binding of an untrusted node key")
        try:
            at = datetime.fromisoformat(r.finished.replace("Z", "+00:00"))
        except ValueError:
            return failed(name, f"receipt time {r.finished!r} is not RFC 3339")
        policy = self.policy.attestation
        too_old = identity_age_check(identity, at, max_identity_age(identity.platform, policy))
        if too_old is not None:
            return too_old
        # The evidence is verified once per identity, however many receipts name it;
        # whether the identity binds *this* receipt's signer is checked every time.
        # (The signature check requires the receipt's node id to be its signer's.)
        cached = self._identities.get(identity.digest)
        if cached is None:
            cached = verify_identity_evidence(identity, policy)
            self._identities[identity.digest] = cached
        if not cached.passed:
            return cached
        return identity_signer_check(identity, raw_public(key)) or cached

    def _input(self, bundle: Bundle, m: Material) -> tuple[dict[str, np.ndarray] | None, Check]:
        name, r = "input", bundle.receipt
        inputs: dict[str, np.ndarray] | None = None
        source = ""
        if m.inputs is not None:
            inputs, source = dict(m.inputs), "given input"
        elif bundle.inputs is not None:
            inputs, source = decode_tensors(bundle.inputs, "bundle inputs"), "bundle's input"
        if inputs is None:
            why = (
                "no input given (the receipt holds only a commitment)"
                if r.input_commitment
                else "no input given"
            )
            return None, (
                failed(name, f"required by the policy: {why}")
                if self.policy.require_input
                else not_checked(name, why)
            )
        if m.untyped and m.inputs is not None:
            if m.model_bytes is None:
                return None, failed(
                    name, "plain JSON input has no dtypes: give the model so it can be typed"
                )
            try:
                inputs = OnnxModel(m.model_bytes).conform(inputs, m.untyped)
            except InputError as exc:
                return None, failed(name, f"the given input does not fit the model: {exc}")
        digest = tensors_digest(inputs)
        if r.input_digest is not None:
            if digest != r.input_digest:
                return None, failed(
                    name, f"{source} hashes to {digest}, the receipt says {r.input_digest}"
                )
            return inputs, passed(name, f"{source} matches the receipt's input digest {digest}")
        if m.salt is None:
            return None, failed(
                name, "the receipt commits to a salted input digest: give the opening"
            )
        if not opens(str(r.input_commitment), digest, m.salt):
            return None, failed(
                name, f"{source} with the given opening does not match the commitment"
            )
        return inputs, passed(name, f"{source} opens the receipt's salted commitment")

    def _nonce(self, r: Receipt, m: Material) -> Check:
        name = "nonce"
        if m.nonce is not None:
            if r.nonce != m.nonce:
                return failed(name, f"receipt nonce {r.nonce!r} is not the expected {m.nonce!r}")
            return passed(name, f"receipt carries the expected nonce {m.nonce!r}")
        if self.policy.require_nonce:
            return failed(name, "required by the policy: give the expected nonce (--nonce)")
        return not_checked(name, f"no expected nonce given (receipt nonce: {r.nonce!r})")

    def _freshness(self, r: Receipt, m: Material) -> Check:
        name, limit = "freshness", self.policy.max_age_seconds
        if limit is None:
            return not_checked(name, f"the policy sets no maximum age (issued {r.finished})")
        try:
            issued = datetime.fromisoformat(r.finished.replace("Z", "+00:00"))
        except ValueError:
            return failed(name, f"receipt time {r.finished!r} is not RFC 3339")
        now = m.now or datetime.now(UTC)
        age = (now - issued).total_seconds()
        if age < -CLOCK_SKEW_SECONDS:
            return failed(name, f"receipt is dated {-age:.0f} s in the future")
        if age > limit:
            return failed(name, f"receipt is {age:.0f} s old, over the policy's {limit:.0f} s")
        return passed(name, f"receipt is {max(age, 0):.0f} s old (limit {limit:.0f} s)")


def _verified_outputs(bundle: Bundle, m: Material | None) -> dict[str, np.ndarray]:
    """The outputs of a verified bundle: tensors, an embedding receipt's vectors (from
    the bundle or the opening) as ``embeddings``, nothing for a chat answer."""
    r = bundle.receipt
    if is_embedding_receipt(r):
        opening = m.embedding_opening if m else None
        vectors = (
            opening.output if opening is not None else EmbeddingOutput.from_json(bundle.outputs)
        )
        return {"embeddings": vectors.vectors}
    return {} if is_chat_receipt(r) else decode_tensors(bundle.outputs, "outputs")


def _proof(r: Receipt, kind: str) -> dict[str, Any] | None:
    return next((p for p in r.proofs if p.get("type") == kind), None)


def _claimed_outputs(bundle: Bundle, m: Material) -> Mapping[str, np.ndarray] | None:
    """The outputs the node claimed: the bundle's, or for a private receipt the given ones
    (re-execution checks them against the receipt before comparing)."""
    if m.outputs is not None:
        return m.outputs
    try:
        return decode_tensors(bundle.outputs, "bundle outputs") or None
    except InputError:
        return None


def _provenance(bundle: Bundle) -> Check:
    """``input.provenance``: the bundle's record of the input data's origin (feed, the
    fetched bytes' digest, window, fetch time, signature check) is the one the signed
    input block commits to."""
    name, want = "input.provenance", bundle.receipt.input.get("provenance")
    carried = bundle.proofs.get("provenance")
    if carried is None:
        return failed(name, "the receipt commits to data provenance the bundle does not carry")
    got = sha256_digest(canonical_json(carried))
    if got != want:
        return failed(name, f"the bundle's provenance hashes to {got}, the receipt says {want}")
    feed = carried.get("feed", {}) if isinstance(carried, dict) else {}
    signed = (carried.get("signature") or {}).get("verified") if isinstance(carried, dict) else None
    how = "signed: the node recorded its signature check" if signed else "an unsigned feed"
    return passed(name, f"input data from {feed.get('source', '?')} ({how}), fetched bytes "
                  f"{carried.get('digest')}, as the receipt commits")  # fmt: skip


def _output_digest(bundle: Bundle, m: Material) -> Check:
    name, signed = "output.digest", bundle.receipt.output_digest
    committed = bundle.receipt.parameters.get("output") == "committed"
    try:
        outputs = decode_tensors(bundle.outputs, "bundle outputs")
    except InputError as exc:
        return failed(name, str(exc))
    if not committed:
        digest = tensors_digest(outputs)
        if digest != signed:
            return failed(
                name, f"bundle outputs hash to {digest}, the signed receipt says {signed}"
            )
        return passed(name, f"outputs match the signed subject digest {digest}")
    # A private receipt: the subject is a salted commitment to the outputs' digest.
    if m.outputs is not None:
        outputs, source = dict(m.outputs), "the given outputs"
    else:
        source = "the bundle's outputs"
    if not outputs:
        return not_checked(
            name, "the receipt commits to a salted output digest: give the opening's outputs"
        )
    if m.salt is None:
        return failed(name, "the receipt commits to a salted output digest: give the opening")
    if not output_opens(signed, tensors_digest(outputs), m.salt):
        return failed(name, f"{source} with the given opening do not match the commitment")
    return passed(name, f"{source} open the receipt's salted output commitment")


def _model_digest(r: Receipt, m: Material) -> Check:
    name = "model.digest"
    if m.model_bytes is None:
        return not_checked(
            name, f"receipt names model {r.model_digest}; model bytes not available to compare"
        )
    actual = sha256_digest(m.model_bytes)
    if actual != r.model_digest:
        return failed(name, f"the given model is {actual}, the receipt names {r.model_digest}")
    return passed(name, f"the given model's bytes hash to the receipt's {actual}")
