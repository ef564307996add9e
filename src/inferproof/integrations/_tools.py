"""The agent tools, framework-free: arguments in, a JSON result out, or a ToolFailure.

The MCP server and the LangChain tools both call :class:`Tools`. Every model call
(``infer``, ``chat``) returns its answer only with a verified receipt, and joins the
run's :class:`~inferproof.receipts.RunRecorder`; ``run_record`` has the node sign
the chain so far.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from .._canonical import check_digest
from ..errors import Error, InputError, VerificationError
from ..receipts import Bundle, RunRecord, RunRecorder
from ..verify import RunVerifier, Verifier
from ._backend import Backend, Verified, tensor_signature
from ._schemas import chat_models, tensor_models

__all__ = ["CHAT_KEYS", "ToolFailure", "Tools"]

CHAT_KEYS = {"max_tokens", "temperature", "top_p", "top_k", "seed", "stop"}
_CHAT_ARGS = {"model", "prompt", "messages", *CHAT_KEYS}


class ToolFailure(Exception):
    """A tool call that returns no answer: bad arguments, or a receipt that failed a
    check (the message names it)."""


def _args(given: Mapping[str, Any] | None, allowed: set[str], required: set[str]) -> dict[str, Any]:
    args = dict(given or {})
    if unknown := sorted(set(args) - allowed):
        raise ToolFailure(f"bad arguments: unknown argument(s) {unknown}")
    if missing := sorted(required - set(args)):
        raise ToolFailure(f"bad arguments: missing argument(s) {missing}")
    return args


def _string(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise ToolFailure(f"bad arguments: {key} must be a non-empty string")
    return value


class Tools:
    """The tools over one backend, and the run their model calls make.

    Example::

        tools = Tools(LocalBackend(LocalNode()))
        result = tools.call("infer", {"model": "credit:1", "inputs": {"X": [[52, 0.41, 34, 2]]}})
    """

    def __init__(self, backend: Backend, *, agent: Mapping[str, str] | None = None) -> None:
        self.backend = backend
        self.run: RunRecorder = backend.run_recorder(agent)
        # The backends are blocking and not all of them thread-safe: one call at a time.
        self._lock = threading.Lock()

    def call(self, name: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """Run tool ``name``; raise :class:`ToolFailure` with a one-line reason."""
        handler = getattr(self, f"_tool_{name}", None)
        if handler is None:
            raise ToolFailure(f"unknown tool {name!r}")
        with self._lock:
            try:
                result: dict[str, Any] = handler(arguments)
                return result
            except ToolFailure:
                raise
            except VerificationError as exc:
                raise ToolFailure(
                    f"verification failed: check {exc.check} failed: {exc.detail}; "
                    "the answer is withheld"
                ) from exc
            except InputError as exc:
                raise ToolFailure(f"bad arguments: {exc}") from exc
            except Error as exc:
                raise ToolFailure(f"the node failed: {exc}") from exc

    # -- model calls -------------------------------------------------------------------------
    def _joined(self, answer: Verified) -> dict[str, Any]:
        index = self.run.add(answer.tool, answer.bundle)
        return {**answer.to_json(), "run": {"id": self.run.run_id, "call": index}}

    def _tool_infer(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        args = _args(arguments, {"model", "inputs"}, {"model", "inputs"})
        inputs = args["inputs"]
        if not isinstance(inputs, dict) or not inputs:
            raise ToolFailure("bad arguments: inputs must be an object of named tensors")
        return self._joined(self.backend.infer(_string(args, "model"), inputs))

    def _tool_chat(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        args = _args(arguments, _CHAT_ARGS, {"model"})
        model = _string(args, "model")
        if ("prompt" in args) == ("messages" in args):
            raise ToolFailure("bad arguments: give a prompt or messages (one of them)")
        body = {k: v for k, v in args.items() if k in CHAT_KEYS}
        if "prompt" in args:
            body["messages"] = [{"role": "user", "content": _string(args, "prompt")}]
        else:
            body["messages"] = args["messages"]
        body.setdefault("max_tokens", 256)
        return self._joined(self.backend.chat(model, body))

    # -- looking things up -------------------------------------------------------------------
    def _tool_list_models(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        _args(arguments, set(), set())
        records = self.backend.models()
        tensors = [
            {**_summary(r), "signature": tensor_signature(r)}
            for r in tensor_models(records).values()
        ]
        chats = [_summary(r) for r in chat_models(records).values()]
        return {"tensor_models": tensors, "chat_models": chats}

    def _tool_verify_bundle(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        args = _args(arguments, {"bundle"}, {"bundle"})
        bundle = Bundle.from_json(args["bundle"])
        report = self.backend.check(bundle)
        return {**_receipt_view(bundle), **report.to_json()}

    def _tool_show_receipt(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        args = _args(arguments, {"receipt_digest"}, {"receipt_digest"})
        digest = check_digest(args["receipt_digest"], "receipt_digest")
        bundle = self.backend.bundle_for(digest)
        if bundle is None:
            raise ToolFailure(f"no receipt {digest} here (this server's answers, or the node's)")
        report = self.backend.check(bundle)
        return {**_receipt_view(bundle), "bundle": bundle.to_json(), **report.to_json()}

    def _tool_log_lookup(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        args = _args(arguments, {"receipt_digest"}, {"receipt_digest"})
        return self.backend.lookup(check_digest(args["receipt_digest"], "receipt_digest"))

    def _tool_run_record(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        _args(arguments, set(), set())
        record = self.record()
        return {"run": record.statement.run_id, "calls": len(record.bundles),
                "record": record.to_json()}  # fmt: skip

    def record(self, verifier: Verifier | None = None) -> RunRecord:
        """The run record so far, signed by the node (and checked with ``verifier``)."""
        record = self.run.record()
        if verifier is not None:
            RunVerifier(verifier).verify(record)
        return record


def _summary(r: Any) -> dict[str, Any]:
    return {"model": r.ref, "digest": r.digest, "format": r.format,
            "signed_by": r.publisher}  # fmt: skip


def _receipt_view(bundle: Bundle) -> dict[str, Any]:
    """The receipt in the words of the CLI's receipt view: model, input, output, node,
    times, log entry."""
    r = bundle.receipt
    return {
        "model": {k: r.model.get(k) for k in ("name", "version", "digest")},
        "input": r.input,
        "output_digest": r.output_digest,
        "outputs": bundle.outputs,
        "proofs": [p.get("type") for p in r.proofs],
        "node": r.node_id,
        "time": {"started": r.started, "finished": r.finished},
        "nonce": r.nonce,
    }
