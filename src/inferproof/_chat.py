"""Deprecated: the chat functions of 0.1, now methods of :class:`~inferproof.LocalNode`
(this module goes in 0.3).

``chat(node, ...)`` is ``node.chat(...)``, ``chat_stream(node, ...)`` is
``node.chat_stream(...)``, and ``push_gguf(node, ...)`` is ``node.push(...)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .engine import ChatResult, ChatStream, LocalNode
from .errors import ModelNotFound, UpstreamError
from .hub import ModelRecord
from .runtime import gguf_signature

__all__ = ["ModelNotFound", "UpstreamError", "chat", "chat_stream", "push_gguf"]


def _moved(name: str) -> None:
    warnings.warn(
        f"inferproof._chat.{name}(node, ...) is now node.{name}(...)",
        DeprecationWarning,
        stacklevel=3,
    )


def chat(node: LocalNode, model_ref: str, request: Mapping[str, Any], **kw: Any) -> ChatResult:
    """Deprecated: :meth:`LocalNode.chat`."""
    _moved("chat")
    return node.chat(model_ref, request, **kw)


def chat_stream(
    node: LocalNode, model_ref: str, request: Mapping[str, Any], **kw: Any
) -> ChatStream:
    """Deprecated: :meth:`LocalNode.chat_stream`."""
    _moved("chat_stream")
    return node.chat_stream(model_ref, request, **kw)


def push_gguf(node: LocalNode, model: Path | bytes, **kw: Any) -> ModelRecord:
    """Deprecated: :meth:`LocalNode.push`, which takes GGUF and ONNX alike."""
    _moved("push")
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    gguf_signature(data)  # "not a GGUF file" before anything is stored
    return node.push(data, **kw)
