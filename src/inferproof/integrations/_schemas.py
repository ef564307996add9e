"""JSON Schemas of the agent tools, made from the hub's models and their signatures.

An ONNX model's signature becomes the schema of its inputs: a tensor of shape
``[1, 4]`` and dtype ``float32`` is an array of one array of four numbers, described
``X: float32[1, 4]``, so an agent sees what to send before it sends it. Symbolic
dimensions (``None``) take any length, up to the node's own caps.
"""

from __future__ import annotations

from typing import Any

from ..hub import ModelRecord
from ..runtime import TensorSpec
from ._backend import CHAT_FORMAT, tensor_signature

__all__ = [
    "chat_models",
    "chat_schema",
    "infer_schema",
    "tensor_models",
    "tensor_schema",
]

# OpenAI's chat parameters the tool passes on (the node checks their values).
_CHAT_PARAMS: dict[str, Any] = {
    "max_tokens": {"type": "integer", "minimum": 1, "maximum": 4096},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "top_k": {"type": "integer", "minimum": 0},
    "seed": {"type": "integer", "minimum": 0},
    "stop": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
}
_JSON_TYPES = {"bool": "boolean"}


def _refs(records: list[ModelRecord], chat: bool) -> dict[str, ModelRecord]:
    """One entry per model digest, under its ``name:version`` (the hub also keeps a
    ``latest`` alias, which is listed only when no named version is)."""
    out: dict[str, ModelRecord] = {}
    seen: dict[str, str] = {}
    for r in sorted(records, key=lambda r: (r.version == "latest", r.name, r.version)):
        if (r.format == CHAT_FORMAT) != chat or r.digest in seen:
            continue
        seen[r.digest] = r.ref
        out[r.ref] = r
    return out


def tensor_models(records: list[ModelRecord]) -> dict[str, ModelRecord]:
    return _refs(records, chat=False)


def chat_models(records: list[ModelRecord]) -> dict[str, ModelRecord]:
    return _refs(records, chat=True)


def tensor_schema(spec: TensorSpec) -> dict[str, Any]:
    """Nested arrays of the tensor's shape, of numbers of its dtype."""
    leaf = _JSON_TYPES.get(spec.dtype)
    if leaf is None:
        leaf = "integer" if spec.dtype.startswith(("int", "uint")) else "number"
    schema: dict[str, Any] = {"type": leaf}
    for dim in reversed(spec.shape):
        schema = {"type": "array", "items": schema}
        if dim is not None:
            schema |= {"minItems": dim, "maxItems": dim}
    dims = ", ".join("?" if d is None else str(d) for d in spec.shape)
    return {**schema, "description": f"{spec.name}: {spec.dtype}[{dims}]"}


def _inputs_of(record: ModelRecord) -> dict[str, Any]:
    return {
        "type": "object",
        "title": record.ref,
        "description": f"{record.ref}: {tensor_signature(record)}",
        "properties": {s.name: tensor_schema(s) for s in record.inputs},
        "required": [s.name for s in record.inputs],
        "additionalProperties": False,
    }


def infer_schema(records: list[ModelRecord]) -> dict[str, Any]:
    """The ``infer`` tool's arguments: a model and its named input tensors."""
    models = tensor_models(records)
    inputs: dict[str, Any] = {"type": "object", "description": "Named input tensors."}
    if models:
        inputs["anyOf"] = [_inputs_of(r) for r in models.values()]
    return {
        "type": "object",
        "properties": {
            "model": {
                "type": "string",
                "description": "The model, as name:version (see list_models).",
                **({"enum": sorted(models)} if models else {}),
            },
            "inputs": inputs,
        },
        "required": ["model", "inputs"],
        "additionalProperties": False,
    }


def chat_schema(records: list[ModelRecord]) -> dict[str, Any]:
    """The ``chat`` tool's arguments: a GGUF model, a prompt or OpenAI messages, and
    the usual sampling parameters."""
    models = chat_models(records)
    message = {
        "type": "object",
        "properties": {
            "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
            "content": {"type": "string"},
        },
        "required": ["role", "content"],
    }
    return {
        "type": "object",
        "properties": {
            "model": {
                "type": "string",
                "description": "The chat model (a GGUF file in the hub).",
                **({"enum": sorted(models)} if models else {}),
            },
            "prompt": {"type": "string", "description": "A user message (or give messages)."},
            "messages": {"type": "array", "items": message, "minItems": 1},
            **_CHAT_PARAMS,
        },
        "required": ["model"],
        "additionalProperties": False,
    }
