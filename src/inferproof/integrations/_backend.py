"""Where an agent's model calls go: a local node in this process, or a remote node.

Both backends return a :class:`Verified` answer only once its receipt verified: the
local one with the node's own verifier (signature, log inclusion, nonce, input, and
re-execution when asked), the remote one through the verifying :class:`Client`. A
failed check raises :class:`VerificationError` naming it; the adapters turn that into
a tool error and never show the answer.

Nothing here signs or verifies by itself: it calls the engine, the client and the
verifier (DESIGN.md, ``integrations/``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from .._canonical import canonical_json
from .._checks import Check
from ..client import DEFAULT_POLICY, Client, verify_openai
from ..engine import LocalNode, named_inputs
from ..errors import InputError, VerificationError
from ..hub import ModelRecord
from ..log import SignedCheckpoint, TlogProof, verify_tlog_proof
from ..receipts import Bundle, RunRecorder, receipt_digest
from ..runtime import conform
from ..verify import Material, Policy, VerificationReport

__all__ = ["Backend", "LocalBackend", "RemoteBackend", "Verified"]

# Chat models are GGUF files in the hub; tensor models are everything else (ONNX).
CHAT_FORMAT = "gguf"


@dataclass(frozen=True)
class Verified:
    """One model call's verified answer: what the model said, its bundle, and the
    checks that passed (and those not made).

    ``answer`` is JSON: ``{"outputs": {name: nested lists}}`` for a tensor model,
    ``{"text", "finish_reason"}`` for a chat model, each taken from the verified bundle.
    """

    tool: str
    model: str
    answer: dict[str, Any]
    bundle: Bundle
    checks: tuple[Check, ...]

    @property
    def receipt_digest(self) -> str:
        return receipt_digest(self.bundle)

    @property
    def log_index(self) -> int | None:
        entry = self.bundle.tlog_entry
        return TlogProof.parse(entry).index if entry else None

    def to_json(self) -> dict[str, Any]:
        """What a tool result carries: the answer, the receipt digest, the log index
        and the verification report."""
        return {
            **self.answer,
            "model": self.model,
            "model_digest": self.bundle.receipt.model_digest,
            "receipt_digest": self.receipt_digest,
            "log_index": self.log_index,
            "verification": {"verified": True, "checks": [c.to_json() for c in self.checks]},
        }


class Backend(Protocol):
    """What the MCP server and the LangChain adapters call."""

    def models(self) -> list[ModelRecord]: ...

    def infer(self, model: str, inputs: Mapping[str, Any]) -> Verified: ...

    def chat(self, model: str, body: Mapping[str, Any]) -> Verified: ...

    def chat_stream(self, model: str, body: Mapping[str, Any]) -> Iterator[str | Verified]: ...

    def check(self, bundle: Bundle) -> VerificationReport: ...

    def bundle_for(self, receipt: str) -> Bundle | None: ...

    def lookup(self, receipt: str) -> dict[str, Any]: ...

    def run_recorder(self, agent: Mapping[str, str] | None = None) -> RunRecorder: ...

    def close(self) -> None: ...


def _outputs(outputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    return {"outputs": {k: np.asarray(v).tolist() for k, v in outputs.items()}}


def _chat_answer(bundle: Bundle) -> dict[str, Any]:
    out = bundle.outputs
    return {"text": out.get("text"), "finish_reason": out.get("finish_reason")}


class _Kept:
    """The bundles this server returned, by receipt digest (for show_receipt and
    log_lookup on a node that keeps no bundles of its own: the local one)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._by_digest: dict[str, Bundle] = {}
        self._limit = limit

    def add(self, bundle: Bundle) -> None:
        if len(self._by_digest) >= self._limit:
            self._by_digest.pop(next(iter(self._by_digest)))
        self._by_digest[receipt_digest(bundle)] = bundle

    def get(self, digest: str) -> Bundle | None:
        return self._by_digest.get(digest)


def _checkpoint_json(cp: SignedCheckpoint) -> dict[str, Any]:
    return {"origin": cp.origin, "size": cp.size, "root": cp.checkpoint.root_hash.hex()}


class LocalBackend:
    """Model calls on a :class:`LocalNode` in this process, verified by its verifier.

    ``reexecute=True`` also re-runs each answer from the hub's model file (ONNX
    bit-for-bit or within the policy's tolerance; LLM answers by their fingerprint),
    which costs about one more inference per call.

    Example::

        backend = LocalBackend(LocalNode(), reexecute=True)
        answer = backend.infer("credit", {"X": [[52, 0.41, 34, 2]]})
    """

    def __init__(
        self, node: LocalNode, *, policy: Policy | None = None, reexecute: bool = False
    ) -> None:
        self.node = node
        self.policy = policy or DEFAULT_POLICY
        if reexecute:
            self.policy = replace(self.policy, require_reexecution=True)
        self.reexecute = reexecute
        self._kept = _Kept()

    def models(self) -> list[ModelRecord]:
        return self.node.hub.list()

    def _model_bytes(self, bundle: Bundle) -> bytes | None:
        return self.node.model_bytes(bundle.receipt.model_digest) if self.reexecute else None

    def infer(self, model: str, inputs: Mapping[str, Any]) -> Verified:
        # Typed by the hub's signature of the model first, as the client types what it
        # sends: the verifier then compares the receipt with these very tensors.
        named = named_inputs(inputs)
        tensors = conform(named.tensors, self.node.hub.resolve(model).inputs, named.untyped)
        nonce = secrets.token_hex(16)
        result = self.node.infer(model, tensors, nonce=nonce)
        material = Material(
            model_bytes=self._model_bytes(result.bundle), inputs=tensors, nonce=nonce
        )
        verified = self.node.verifier(self.policy).verify(result.bundle, material)
        self._kept.add(result.bundle)
        return Verified("infer", model, _outputs(verified.outputs), result.bundle, verified.checks)

    def chat(self, model: str, body: Mapping[str, Any]) -> Verified:
        nonce = secrets.token_hex(16)
        request = {**body, "model": model}
        result = self.node.chat(model, request, nonce=nonce)
        report = verify_openai(
            result.response,
            trust=self.node.trust_root(),
            policy=self.policy,
            nonce=nonce,
            model=model,
            request=request,
            model_file=self._model_bytes(result.bundle),
        )
        self._kept.add(result.bundle)
        return Verified("chat", model, _chat_answer(result.bundle), result.bundle, report.checks)

    def chat_stream(self, model: str, body: Mapping[str, Any]) -> Iterator[str | Verified]:
        """The text deltas as they are generated (unverified until the end), then the
        :class:`Verified` answer: its receipt rides on the last event, checked as the
        client checks a stream (the deltas must spell the signed text)."""
        nonce = secrets.token_hex(16)
        request = {**body, "model": model, "stream": True}
        stream = self.node.chat_stream(model, request, nonce=nonce)
        events = []
        for event in stream:
            events.append(event)
            choices = event.get("choices") or [{}]
            delta = (choices[0].get("delta") or {}).get("content")
            if delta:
                yield delta
        report = verify_openai(
            events,
            trust=self.node.trust_root(),
            policy=self.policy,
            nonce=nonce,
            model=model,
            request=request,
            model_file=None if stream.result is None else self._model_bytes(stream.result.bundle),
        )
        assert stream.result is not None  # the stream ended with its receipt (just verified)
        bundle = stream.result.bundle
        self._kept.add(bundle)
        yield Verified("chat", model, _chat_answer(bundle), bundle, report.checks)

    def check(self, bundle: Bundle) -> VerificationReport:
        # A bundle from outside: re-executed from this hub's copy of its model when the
        # hub has it and re-execution is on; nothing else is fetched.
        policy = replace(self.policy, require_nonce=False, require_input=False)
        material = Material(model_bytes=self._model_bytes(bundle))
        return self.node.verifier(policy).check(bundle, material)

    def bundle_for(self, receipt: str) -> Bundle | None:
        return self._kept.get(receipt)

    def lookup(self, receipt: str) -> dict[str, Any]:
        bundle = self._kept.get(receipt)
        if bundle is None or bundle.tlog_entry is None:
            raise InputError(f"no receipt {receipt} among this server's answers")
        index = TlogProof.parse(bundle.tlog_entry).index
        log = self.node.log
        # A fresh proof against the log's current checkpoint, checked here.
        text = log.tlog_proof(index).encode()
        result = verify_tlog_proof(text, canonical_json(bundle.envelope), log.verifier_key)
        return {
            "receipt_digest": receipt,
            "log_index": index,
            "checkpoint": _checkpoint_json(result.checkpoint),
            "inclusion": "verified: an RFC 9162 inclusion proof against the current "
            "checkpoint, signed by the log key",
        }

    def run_recorder(self, agent: Mapping[str, str] | None = None) -> RunRecorder:
        return self.node.run_recorder(agent=dict(agent or {}))

    def close(self) -> None:
        self.node.close()


class RemoteBackend:
    """Model calls on a node over HTTP through the verifying :class:`Client`.

    Example::

        backend = RemoteBackend(Client("http://127.0.0.1:8080", token=token))
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self._kept = _Kept()

    def models(self) -> list[ModelRecord]:
        return self.client.models()

    def infer(self, model: str, inputs: Mapping[str, Any]) -> Verified:
        answer = self.client.infer(model, dict(inputs))
        if answer.report is None:  # a client made with verify=False
            raise VerificationError("receipt", "this client does not verify answers")
        self._kept.add(answer.bundle)
        return Verified(
            "infer", model, _outputs(answer.outputs), answer.bundle, answer.report.checks
        )

    def chat(self, model: str, body: Mapping[str, Any]) -> Verified:
        answer = self.client.chat(model, dict(body))
        if answer.report is None:
            raise VerificationError("receipt", "this client does not verify answers")
        self._kept.add(answer.bundle)
        return Verified("chat", model, _chat_answer(answer.bundle), answer.bundle,
                        answer.report.checks)  # fmt: skip

    def chat_stream(self, model: str, body: Mapping[str, Any]) -> Iterator[str | Verified]:
        """As :meth:`LocalBackend.chat_stream`, through the client's verified stream."""
        with self.client.chat_stream(model, dict(body)) as stream:
            yield from stream
        answer = stream.answer  # set only once the stream ended and verified
        if answer.report is None:
            raise VerificationError("receipt", "this client does not verify answers")
        self._kept.add(answer.bundle)
        yield Verified("chat", model, _chat_answer(answer.bundle), answer.bundle,
                       answer.report.checks)  # fmt: skip

    def check(self, bundle: Bundle) -> VerificationReport:
        return self.client.check(bundle)

    def bundle_for(self, receipt: str) -> Bundle | None:
        found = self._kept.get(receipt)
        if found is not None:
            return found
        try:
            return self.client.bundle_for(receipt)
        except InputError:
            return None

    def lookup(self, receipt: str) -> dict[str, Any]:
        bundle = self.bundle_for(receipt)
        if bundle is None or bundle.tlog_entry is None:
            raise InputError(f"no receipt {receipt} issued to this token")
        report = self.client.check(bundle)  # the entry's inclusion, under a checked checkpoint
        inclusion = next((c for c in report.checks if c.name == "log.inclusion"), None)
        if inclusion is None or not inclusion.passed:
            why = inclusion.detail if inclusion else "no log check"
            raise VerificationError("log.inclusion", why)
        current = self.client.checkpoint()  # signature checked, consistent with all seen
        proof = TlogProof.parse(bundle.tlog_entry)
        return {
            "receipt_digest": receipt,
            "log_index": proof.index,
            "checkpoint": _checkpoint_json(current),
            "inclusion": f"verified: {inclusion.detail}; the current checkpoint is proven "
            "consistent with it (RFC 9162)",
        }

    def run_recorder(self, agent: Mapping[str, str] | None = None) -> RunRecorder:
        return self.client.run_recorder(agent=dict(agent or {}))

    def close(self) -> None:
        self.client.close()


def tensor_signature(record: ModelRecord) -> str:
    """``X: float32[1, 4] -> probabilities: float32[1, 2], label: int64[1]``."""

    def one(specs: Sequence[Any]) -> str:
        return ", ".join(
            f"{s.name}: {s.dtype}[{', '.join('?' if d is None else str(d) for d in s.shape)}]"
            for s in specs
        )

    return f"{one(record.inputs)} -> {one(record.outputs)}"
