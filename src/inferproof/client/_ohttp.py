"""An httpx transport that sends every request through an Oblivious HTTP relay.

Each request is written as Binary HTTP (RFC 9292), its token and body included, sealed
to the node's gateway key (RFC 9458) and posted to the relay; the relay forwards it to
the node, which alone can open it, and the sealed answer comes back the same way. What
the relay sees is ciphertext; what the node sees is the relay.

Every request is sent chunked (draft-ietf-ohai-chunked-ohttp-08) by default, streamed
chat or not: the answer is opened a chunk at a time as it arrives, so streamed deltas
reach the caller before the answer ends, and a relay watching sizes cannot tell a
streamed request from another by its media type. Nothing falls back to the one-shot
form once chunked was asked for (draft section 5: a fallback would be a downgrade).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

import httpx

from .._canonical import decode_b64
from .._checks import Check, failed, not_checked, passed
from ..attest import (
    AttestationPolicy,
    NodeIdentity,
    check_ohttp_binding,
    identity_age_check,
    max_identity_age,
    verify_identity,
)
from ..confidential import (
    BinaryRequest,
    ChunkedResponseReader,
    KeyConfig,
    ResponseReader,
    decode_response,
    encapsulate_chunked_request,
    encapsulate_request,
    encode_request,
    parse_key_configs,
)
from ..errors import Error, InputError, VerificationError

__all__ = ["GATEWAY_PATH", "SEALED", "ObliviousTransport", "bind_gateway"]

GATEWAY_PATH = "/.well-known/ohttp-gateway"
_REQUEST, _RESPONSE = "message/ohttp-req", "message/ohttp-res"
_CHUNKED_REQUEST, _CHUNKED_RESPONSE = "message/ohttp-chunked-req", "message/ohttp-chunked-res"
_KEYS = "application/ohttp-keys"
# The response extension that marks a streamed answer opened from chunked OHTTP: its
# reader must be drained to the final chunk before the answer is accepted.
SEALED = "inferproof.sealed"
_MAX_KEYS = 64 * 1024
# Headers that would only describe the hop to the relay, or be wrong inside: the
# sealed request is its own message (RFC 9292 section 3.6 carries no connection fields).
_HOP = frozenset({"host", "connection", "content-length", "transfer-encoding", "keep-alive"})


def bind_gateway(
    node_url: str,
    relay: str,
    *,
    transport: httpx.BaseTransport | None = None,
    trusted: set[bytes] | None = None,
    require_attested: bool = False,
    allow_software: bool = False,
    attestation: AttestationPolicy | None = None,
) -> tuple[KeyConfig, Check]:
    """The node's gateway key configuration, checked before anything but the identity
    request is sealed to it, and the ``confidential`` check that says what binds it.

    Everything goes through ``relay``: the keys (``GET`` on the relay, RFC 9540
    section 4), then ``GET /v1/identity`` sealed to them. The identity must name the
    very keys the request was sealed to, signed by its node key (attest/_keybinding.py),
    and when this client already trusts node keys (its trust root, or the identity it
    pinned) the node key must be one of them: a relay that swapped the keys cannot
    answer with an identity that passes. ``require_attested`` (the policy's
    ``require.confidential``) also wants the node key bound by verified hardware
    evidence; a software node passes only with ``allow_software``, and says so.
    """
    keys = _relayed_keys(relay, transport)
    config = _usable(keys)
    with httpx.Client(
        base_url=node_url, transport=ObliviousTransport(config, relay, transport=transport)
    ) as http:
        try:
            answer = http.get("/v1/identity")
            ident = answer.json() if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            raise Error(f"cannot read the node's identity through the relay: {exc}") from exc
    info = ident.get("ohttp") if isinstance(ident, dict) else None
    if not isinstance(ident, dict) or not isinstance(info, dict):
        raise Error(f"the node at {node_url} serves no Oblivious HTTP gateway")
    node_key = decode_b64(ident.get("node_key"), "the identity's node_key")
    if trusted is not None and node_key not in trusted:
        raise VerificationError(
            "ohttp.key_binding", "the node's identity names a node key this client does not trust"
        )
    named = decode_b64(info.get("keys"), "the identity's ohttp keys")
    if named != keys:
        raise VerificationError(
            "ohttp.key_binding", "the relay's key configuration is not the one the node signed"
        )
    check_ohttp_binding(node_key, keys, decode_b64(info.get("binding"), "the ohttp binding"))
    check = _confidential(ident.get("attestation"), node_key, attestation,
                          required=require_attested, allow_software=allow_software)  # fmt: skip
    if require_attested and not check.passed:
        raise VerificationError(check.name, check.detail)
    return config, check


def _relayed_keys(relay: str, transport: httpx.BaseTransport | None) -> bytes:
    try:
        with httpx.Client(transport=transport, timeout=30) as http:
            answer = http.get(relay)
    except httpx.HTTPError as exc:
        raise Error(f"the relay {relay} is unreachable: {exc}") from exc
    kind = answer.headers.get("content-type", "").split(";")[0].strip()
    if answer.status_code != 200 or kind != _KEYS or len(answer.content) > _MAX_KEYS:
        raise Error(f"the relay {relay} serves no Oblivious HTTP key configuration")
    return answer.content


def _usable(keys: bytes) -> KeyConfig:
    usable = [c for c in parse_key_configs(keys) if c.accepts()]
    if not usable:
        raise InputError("the node's Oblivious HTTP keys offer no suite this client speaks")
    return usable[0]


def _confidential(
    doc: Any,
    node_key: bytes,
    policy: AttestationPolicy | None,
    *,
    required: bool,
    allow_software: bool,
) -> Check:
    """What vouches for the HPKE key: hardware evidence binding the node key that
    signed it, or, on a software node, that key alone (passed only when opted in)."""
    if doc is not None:
        try:
            identity = NodeIdentity.from_json(doc)
        except InputError as exc:
            return failed("confidential", f"the node's attestation is unreadable: {exc}")
        evidence = verify_identity(identity, node_key, policy)
        age = max_identity_age(identity.platform, policy)
        stale = identity_age_check(identity, datetime.now(UTC), age)
        if not evidence.passed or stale is not None:
            why = (stale or evidence).detail
            return failed("confidential", f"the node's attestation: {why}")
        return passed(
            "confidential",
            f"the gateway key is signed by the node key that verified {identity.platform} "
            "evidence binds",
        )
    if not required:
        return not_checked(
            "confidential",
            "software node: the gateway key is bound by the node key alone, no hardware "
            "attests it (require.confidential is not set)",
        )
    if allow_software:
        return passed(
            "confidential",
            "software node (opted in): the gateway key is bound by the node key alone, "
            "no hardware attests it",
        )
    return failed(
        "confidential",
        "the node's gateway key is not bound by hardware attestation (a software node "
        "needs confidential.allow_software)",
    )  # fmt: skip


class ObliviousTransport(httpx.BaseTransport):
    """Seal each request to ``config`` and send it to ``relay``; ``chunked=False`` sends
    the one-shot RFC 9458 form instead of chunked OHTTP.

    Example::

        config, _ = bind_gateway("https://node.example", "https://relay.example/")
        with httpx.Client(base_url="https://node.example",
                          transport=ObliviousTransport(config, "https://relay.example/")) as c:
            c.get("/v1/log/checkpoint")
    """

    def __init__(
        self,
        config: KeyConfig,
        relay: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 120.0,
        chunked: bool = True,
    ) -> None:
        self.config = config
        self.relay = relay
        self.chunked = chunked
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)

    def _message(self, request: httpx.Request) -> bytes:
        body = request.read()
        pairs = ((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.headers.raw)
        headers = [(k, v) for k, v in pairs if k not in _HOP]
        # RFC 9458 section 6.5.1: the gateway refuses a request not dated now.
        headers.append(("date", formatdate(usegmt=True)))
        url = urlsplit(str(request.url))
        path = url.path + (f"?{url.query}" if url.query else "")
        message = BinaryRequest(request.method, url.scheme, url.netloc, path, tuple(headers), body)
        return encode_request(message)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        message = self._message(request)
        if not self.chunked:
            return self._one_shot(message)
        sealed = encapsulate_chunked_request(self.config, message)
        answer = self._post(sealed.encapsulated, _CHUNKED_REQUEST)
        if _refused(answer, _CHUNKED_RESPONSE):
            return _refusal(answer)
        return _open_stream(answer, sealed.response_reader())

    def _one_shot(self, message: bytes) -> httpx.Response:
        sealed = encapsulate_request(self.config, message)
        answer = self._post(sealed.encapsulated, _REQUEST)
        if _refused(answer, _RESPONSE):
            return _refusal(answer)
        try:
            inner = decode_response(sealed.open_response(answer.read()))
        finally:
            answer.close()
        return httpx.Response(inner.status, headers=list(inner.headers), content=inner.content)

    def _post(self, sealed: bytes, kind: str) -> httpx.Response:
        try:
            sent = self._http.build_request(
                "POST", self.relay, content=sealed, headers={"content-type": kind}
            )
            return self._http.send(sent, stream=True)
        except httpx.HTTPError as exc:
            raise httpx.ConnectError(f"the relay {self.relay} is unreachable: {exc}") from exc

    def close(self) -> None:
        self._http.close()


def _refused(answer: httpx.Response, kind: str) -> bool:
    media = answer.headers.get("content-type", "").split(";")[0].strip()
    return answer.status_code != 200 or media != kind


def _refusal(answer: httpx.Response) -> httpx.Response:
    """The relay or the gateway refused the sealed request itself: say so as it did."""
    try:
        content = answer.read()
    finally:
        answer.close()
    return httpx.Response(answer.status_code, headers=answer.headers, content=content)


def _open_stream(answer: httpx.Response, chunks: ChunkedResponseReader) -> httpx.Response:
    """Read the sealed stream until the inner answer's head is in, then hand back a
    response whose body keeps opening chunks as they arrive."""
    inner = ResponseReader()
    raw = answer.iter_bytes()
    early: list[bytes] = []
    try:
        for data in raw:
            for chunk in chunks.feed(data):
                early += inner.feed(chunk)
            if inner.head_ready:
                break
        else:
            # The stream ended before the head was in: the answer is whole (or cut).
            whole = _finish(chunks, inner, early)
            answer.close()
            return whole
    except BaseException:
        answer.close()
        raise
    assert inner.status is not None
    body = _OpenedStream(answer, raw, chunks, inner, early)
    return httpx.Response(
        inner.status, headers=list(inner.headers), stream=body, extensions={SEALED: True}
    )


def _finish(
    chunks: ChunkedResponseReader, inner: ResponseReader, early: list[bytes]
) -> httpx.Response:
    early += inner.feed(chunks.close())
    known = inner.close()
    if known is not None:
        return httpx.Response(known.status, headers=list(known.headers), content=known.content)
    if inner.status is None:
        raise VerificationError("ohttp.response", "the sealed answer ended before its head")
    return httpx.Response(inner.status, headers=list(inner.headers), content=b"".join(early))


class _OpenedStream(httpx.SyncByteStream):
    """The rest of a chunked answer, opened as it arrives; it raises when the stream
    is cut short or altered, never handing a partial answer over as complete."""

    def __init__(
        self,
        answer: httpx.Response,
        raw: Iterator[bytes],
        chunks: ChunkedResponseReader,
        inner: ResponseReader,
        early: list[bytes],
    ) -> None:
        self._answer, self._raw, self._chunks, self._inner = answer, raw, chunks, inner
        self._early = early

    def __iter__(self) -> Iterator[bytes]:
        yield from self._early
        try:
            for data in self._raw:
                for chunk in self._chunks.feed(data):
                    yield from self._inner.feed(chunk)
        except httpx.HTTPError as exc:
            raise VerificationError(
                "ohttp.response", f"the sealed answer broke off: {exc}"
            ) from exc
        yield from self._inner.feed(self._chunks.close())
        if self._inner.close() is not None:
            raise VerificationError("ohttp.response", "a known-length answer inside a stream")

    def close(self) -> None:
        self._answer.close()
