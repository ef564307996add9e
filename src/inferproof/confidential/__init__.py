"""Confidential inference: Oblivious HTTP (RFC 9458) carrying Binary HTTP (RFC 9292).

A client seals a request to the node's HPKE key, a relay forwards it without reading
it, and only the node opens it; the answer comes back sealed to the client's request.

Example::

    from inferproof.confidential import BinaryRequest, Gateway, encapsulate_request
    from inferproof.confidential import encode_request

    gateway = Gateway(secret_key)                 # the node's X25519 key
    sealed = encapsulate_request(gateway.config, encode_request(
        BinaryRequest("POST", "https", "node", "/v1/infer", content=b"{}")))
    request, reply = gateway.open(sealed.encapsulated)
    answer = sealed.open_response(reply(b"..."))
"""

from ..attest import (
    OHTTP_BINDING_CONTEXT,
    check_ohttp_binding,
    ohttp_binding_message,
    sign_ohttp_binding,
)
from ._bhttp import (
    MAX_FIELDS,
    MAX_MESSAGE,
    BinaryRequest,
    BinaryResponse,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from ._bhttpstream import RESPONSE_END, ResponseReader, content_chunk, response_head
from ._chunked import (
    CHUNK_SIZE,
    ChunkedClientRequest,
    ChunkedResponse,
    ChunkedResponseReader,
    encapsulate_chunked_request,
    open_chunked_request,
)
from ._ohttp import (
    AEAD_ID,
    KDF_ID,
    KEM_ID,
    MAX_ENCAPSULATED,
    ClientRequest,
    Gateway,
    KeyConfig,
    Response,
    encapsulate_request,
    parse_key_configs,
)

__all__ = [
    "AEAD_ID",
    "CHUNK_SIZE",
    "KDF_ID",
    "KEM_ID",
    "MAX_ENCAPSULATED",
    "MAX_FIELDS",
    "MAX_MESSAGE",
    "OHTTP_BINDING_CONTEXT",
    "RESPONSE_END",
    "BinaryRequest",
    "BinaryResponse",
    "ChunkedClientRequest",
    "ChunkedResponse",
    "ChunkedResponseReader",
    "ClientRequest",
    "Gateway",
    "KeyConfig",
    "Response",
    "ResponseReader",
    "check_ohttp_binding",
    "content_chunk",
    "decode_request",
    "decode_response",
    "encapsulate_chunked_request",
    "encapsulate_request",
    "encode_request",
    "encode_response",
    "ohttp_binding_message",
    "open_chunked_request",
    "parse_key_configs",
    "response_head",
    "sign_ohttp_binding",
]
