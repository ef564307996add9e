"""Deterministic model execution and tensor encoding (no signing, no logging).

ONNX models run in onnxruntime with pinned settings; GGUF language models in
llama.cpp with pinned, recorded settings (chat, completions and embeddings).
Requests, outputs and OpenAI shapes of LLM answers live here too, as do the relay's
upstream calls: everything about running a model, nothing about vouching for it.
"""

from __future__ import annotations

from . import _llm_openai as openai_shapes
from ._llm import DEFAULT_MAX_CTX, ENGINE, MAX_TOKENS_CAP, LlamaModel, LlamaSettings, Prompt
from ._llm_embed import (
    DEFAULT_EMBED_CTX,
    EMBEDDING_TASK,
    ENCODING_FORMATS,
    MAX_EMBED_INPUTS,
    EmbeddingMode,
    EmbeddingOpening,
    EmbeddingOutput,
    EmbeddingRequest,
    LlamaEmbedder,
    ParsedEmbedding,
    parse_embedding_request,
)
from ._llm_fingerprint import SCHEME as FINGERPRINT_SCHEME
from ._llm_fingerprint import Fingerprint, commit_fingerprint, fingerprint_opens
from ._llm_fingerprint import top_values as fingerprint_values
from ._llm_gguf import file_digest as gguf_file_digest
from ._llm_gguf import gguf_signature, is_gguf, read_gguf_metadata
from ._llm_output import SALT_BYTES as CHAT_SALT_BYTES
from ._llm_output import SALT_SCHEME as CHAT_SALT_SCHEME
from ._llm_output import ChatOpening, ChatOutput, commit_output, output_opens
from ._llm_request import (
    MAX_SEED,
    MAX_STOP,
    MAX_STOP_CHARS,
    ROLES,
    TASKS,
    ChatRequest,
    ParsedBody,
    parse_request,
)
from ._llm_upstream import (
    check_upstream,
    post_chat,
    relay_claim,
    relay_model_digest,
    upstream_body,
    upstream_output,
)
from ._onnx import DETERMINISM, OnnxModel, conform, engine_info
from ._onnx_guard import check_self_contained
from ._spec import TensorSpec
from ._tensors import (
    NamedInputs,
    Tensors,
    decode_tensors,
    describe_tensors,
    encode_tensors,
    load_tensors,
    parse_json_tensors,
    parse_npz_tensors,
    tensors_digest,
)

__all__ = [
    "CHAT_SALT_BYTES",
    "CHAT_SALT_SCHEME",
    "DEFAULT_EMBED_CTX",
    "DEFAULT_MAX_CTX",
    "DETERMINISM",
    "EMBEDDING_TASK",
    "ENCODING_FORMATS",
    "ENGINE",
    "FINGERPRINT_SCHEME",
    "MAX_EMBED_INPUTS",
    "MAX_SEED",
    "MAX_STOP",
    "MAX_STOP_CHARS",
    "MAX_TOKENS_CAP",
    "ROLES",
    "TASKS",
    "ChatOpening",
    "ChatOutput",
    "ChatRequest",
    "EmbeddingMode",
    "EmbeddingOpening",
    "EmbeddingOutput",
    "EmbeddingRequest",
    "Fingerprint",
    "LlamaEmbedder",
    "LlamaModel",
    "LlamaSettings",
    "NamedInputs",
    "OnnxModel",
    "ParsedBody",
    "ParsedEmbedding",
    "Prompt",
    "TensorSpec",
    "Tensors",
    "check_self_contained",
    "check_upstream",
    "commit_fingerprint",
    "commit_output",
    "conform",
    "decode_tensors",
    "describe_tensors",
    "encode_tensors",
    "engine_info",
    "fingerprint_opens",
    "fingerprint_values",
    "gguf_file_digest",
    "gguf_signature",
    "is_gguf",
    "load_tensors",
    "openai_shapes",
    "output_opens",
    "parse_embedding_request",
    "parse_json_tensors",
    "parse_npz_tensors",
    "parse_request",
    "post_chat",
    "read_gguf_metadata",
    "relay_claim",
    "relay_model_digest",
    "tensors_digest",
    "upstream_body",
    "upstream_output",
]
