"""LangChain components over verified inference (``pip install 'inferproof[agents]'``).

- :class:`VerifiedChatModel`: a ``BaseChatModel`` over a node's chat models, with
  streaming. Each answer's receipt and verification report are in the message's
  ``response_metadata["inferproof"]``; a receipt that fails a check raises
  :class:`~inferproof.errors.VerificationError` and no message is returned (a stream
  raises at its end, before its last chunk).
- :class:`VerifiedModelTool` and :func:`model_tools`: a ``BaseTool`` per tensor model,
  its arguments' JSON Schema made from the model's signature; the tool's artifact is
  the verified receipt.
- :class:`ReceiptCollector`: a callback handler that collects the receipt of every
  model call and tool call of a run, in order, and has the node sign them as a run
  record (:meth:`ReceiptCollector.record`).

Example::

    backend = LocalBackend(LocalNode())
    receipts = ReceiptCollector(backend)
    llm = VerifiedChatModel(backend=backend, model="smollm2", max_tokens=64)
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | llm | StrOutputParser()
    print(chain.invoke({"q": "Why verify?"}, config={"callbacks": [receipts]}))
    receipts.record().write("run.json")
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult
from langchain_core.tools import BaseTool
from pydantic import ConfigDict

from ..errors import InputError
from ..receipts import Bundle, RunRecord
from ._backend import Backend, Verified, tensor_signature
from ._schemas import tensor_models, tensor_schema
from ._tools import CHAT_KEYS

__all__ = ["ReceiptCollector", "VerifiedChatModel", "VerifiedModelTool", "model_tools"]

META = "inferproof"
_ROLES = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant"}


def _metadata(answer: Verified) -> dict[str, Any]:
    """What ``response_metadata["inferproof"]`` (and a tool's artifact) holds."""
    out = answer.to_json()
    return {
        "receipt_digest": out["receipt_digest"],
        "log_index": out["log_index"],
        "model_digest": out["model_digest"],
        "verification": out["verification"],
        "tool": answer.tool,
        "bundle": answer.bundle.to_json(),
    }


def _messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    out = []
    for m in messages:
        role = next((r for t, r in _ROLES.items() if isinstance(m, t)), None)
        if role is None or not isinstance(m.content, str):
            raise InputError(
                f"a {type(m).__name__} cannot be sent to a chat model here: system, human "
                "and AI messages of text only"
            )
        out.append({"role": role, "content": m.content})
    return out


class VerifiedChatModel(BaseChatModel):
    """A chat model whose every answer comes with a verified receipt (module docs).

    Example::

        llm = VerifiedChatModel(backend=LocalBackend(LocalNode()), model="smollm2")
        message = llm.invoke("What is a receipt?")
        print(message.content, message.response_metadata["inferproof"]["receipt_digest"])
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: Any  # a Backend (LocalBackend or RemoteBackend)
    model: str
    max_tokens: int = 256
    temperature: float | None = 0.0
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None

    @property
    def _llm_type(self) -> str:
        return "inferproof"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "max_tokens": self.max_tokens}

    def _body(self, messages: list[BaseMessage], stop: list[str] | None, kw: Any) -> Any:
        if unknown := sorted(set(kw) - CHAT_KEYS):
            raise InputError(f"unknown chat parameter(s) {unknown}")
        params = {"max_tokens": self.max_tokens, "temperature": self.temperature,
                  "top_p": self.top_p, "top_k": self.top_k, "seed": self.seed, **kw}  # fmt: skip
        body = {k: v for k, v in params.items() if v is not None}
        if stop:
            body["stop"] = list(stop)
        return {"messages": _messages(messages), **body}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        backend: Backend = self.backend
        answer = backend.chat(self.model, self._body(messages, stop, kwargs))
        meta = {META: _metadata(answer), "model_name": self.model,
                "finish_reason": answer.answer.get("finish_reason")}  # fmt: skip
        message = AIMessage(content=answer.answer["text"] or "", response_metadata=meta)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        backend: Backend = self.backend
        for item in backend.chat_stream(self.model, self._body(messages, stop, kwargs)):
            if isinstance(item, Verified):
                meta = {META: _metadata(item), "model_name": self.model,
                        "finish_reason": item.answer.get("finish_reason")}  # fmt: skip
                last = AIMessageChunk(content="", response_metadata=meta)
                yield ChatGenerationChunk(message=last)
                return
            if run_manager is not None:
                run_manager.on_llm_new_token(item)
            yield ChatGenerationChunk(message=AIMessageChunk(content=item))


def _tool_name(ref: str) -> str:
    return "infer_" + re.sub(r"[^A-Za-z0-9_]", "_", ref.split(":", 1)[0])[:48]


class VerifiedModelTool(BaseTool):
    """A tensor model as a LangChain tool; its artifact is the verified receipt.

    Example::

        [risk] = model_tools(backend)
        message = risk.invoke({"name": risk.name, "args": {"X": [[52, 0.41, 34, 2]]},
                               "id": "1", "type": "tool_call"})
        print(message.content, message.artifact["receipt_digest"])
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: Any
    model: str
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"

    def _run(self, *args: Any, run_manager: Any = None, **kwargs: Any) -> tuple[str, Any]:
        backend: Backend = self.backend
        answer = backend.infer(self.model, kwargs)
        out = answer.to_json()
        content = json.dumps({"outputs": out["outputs"], "receipt_digest": out["receipt_digest"],
                              "verified": True})  # fmt: skip
        return content, _metadata(answer)


def model_tools(backend: Backend) -> list[VerifiedModelTool]:
    """One tool per tensor model of the backend's hub."""
    tools = []
    for ref, record in tensor_models(backend.models()).items():
        schema = {
            "title": _tool_name(ref),
            "type": "object",
            "properties": {s.name: tensor_schema(s) for s in record.inputs},
            "required": [s.name for s in record.inputs],
        }
        tools.append(
            VerifiedModelTool(
                name=_tool_name(ref),
                description=f"Run {ref} ({tensor_signature(record)}); the answer comes with "
                "a verified receipt.",
                args_schema=schema,
                backend=backend,
                model=ref,
            )
        )
    return tools


class ReceiptCollector(BaseCallbackHandler):
    """Collects the receipt of every verified model and tool call it sees, in order.

    Pass it in a run's ``callbacks``; :meth:`record` has the node sign the chain of
    what it collected (a :class:`~inferproof.receipts.RunRecord`).
    """

    def __init__(self, backend: Backend, *, agent: dict[str, str] | None = None) -> None:
        self.run = backend.run_recorder({"framework": "langchain", **(agent or {})})

    def _add(self, meta: Any) -> None:
        if isinstance(meta, dict) and isinstance(meta.get("bundle"), dict):
            self.run.add(str(meta.get("tool", "chat")), Bundle.from_json(meta["bundle"]))

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        for gens in response.generations:
            for gen in gens:
                message = getattr(gen, "message", None)
                if message is not None:
                    self._add(message.response_metadata.get(META))

    def on_tool_end(self, output: Any, **kwargs: Any) -> None:
        if isinstance(output, ToolMessage):
            self._add(output.artifact)

    @property
    def receipts(self) -> list[str]:
        return self.run.receipts

    def record(self) -> RunRecord:
        """The run record of every call collected so far, signed by the node."""
        return self.run.record()
