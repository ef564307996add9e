"""An httpx transport that sends every request through an Oblivious HTTP relay.

Each request is written as Binary HTTP (RFC 9292), its token and body included, sealed
to the node's gateway key (RFC 9458) and posted to the relay; the relay forwards it to
the node, which alone can open it, and the sealed answer comes back the same way. What
the relay sees is ciphertext; what the node sees is the relay.
"""

from __future__ import annotations

from email.utils import formatdate
from urllib.parse import urlsplit

import httpx

from .._canonical import decode_b64
from ..attest import check_ohttp_binding
from ..confidential import (
    BinaryRequest,
    KeyConfig,
    decode_response,
    encapsulate_request,
    encode_request,
    parse_key_configs,
)
from ..errors import Error, InputError, VerificationError

__all__ = ["GATEWAY_PATH", "ObliviousTransport", "bound_key_config"]

GATEWAY_PATH = "/.well-known/ohttp-gateway"
_REQUEST = "message/ohttp-req"
_RESPONSE = "message/ohttp-res"
# Headers that would only describe the hop to the relay, or be wrong inside: the
# sealed request is its own message (RFC 9292 section 3.6 carries no connection fields).
_HOP = frozenset({"host", "connection", "content-length", "transfer-encoding", "keep-alive"})


def bound_key_config(
    node_url: str,
    transport: httpx.BaseTransport | None = None,
    trusted: set[bytes] | None = None,
) -> KeyConfig:
    """The node's gateway key configuration, from its identity (``GET /v1/identity``),
    checked before anything is sealed to it: the node key must have signed the keys
    (attest/_keybinding.py), and when this client already trusts node keys (its trust
    root, or the identity it pinned) the identity's key must be one of them.

    A software node's binding rests on the node key alone; on a TEE node the node key is
    the one the hardware attests, so the binding carries the attestation to the HPKE key.
    """
    try:
        with httpx.Client(transport=transport, timeout=30) as http:
            answer = http.get(node_url.rstrip("/") + "/v1/identity")
        ident = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        raise Error(f"cannot read the node's identity: {exc}") from exc
    info = ident.get("ohttp") if isinstance(ident, dict) else None
    if not isinstance(ident, dict) or not isinstance(info, dict):
        raise Error(f"the node at {node_url} serves no Oblivious HTTP gateway")
    node_key = decode_b64(ident.get("node_key"), "the identity's node_key")
    if trusted is not None and node_key not in trusted:
        raise VerificationError(
            "ohttp.key_binding", "the node's identity names a node key this client does not trust"
        )
    keys = decode_b64(info.get("keys"), "the identity's ohttp keys")
    check_ohttp_binding(node_key, keys, decode_b64(info.get("binding"), "the ohttp binding"))
    usable = [c for c in parse_key_configs(keys) if c.accepts()]
    if not usable:
        raise InputError("the node's Oblivious HTTP keys offer no suite this client speaks")
    return usable[0]


class ObliviousTransport(httpx.BaseTransport):
    """Seal each request to ``config`` and send it to ``relay``.

    Example::

        config = bound_key_config("https://node.example")
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
    ) -> None:
        self.config = config
        self.relay = relay
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        pairs = ((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.headers.raw)
        headers = [(k, v) for k, v in pairs if k not in _HOP]
        # RFC 9458 section 6.5.1: the gateway refuses a request not dated now.
        headers.append(("date", formatdate(usegmt=True)))
        url = urlsplit(str(request.url))
        path = url.path + (f"?{url.query}" if url.query else "")
        message = BinaryRequest(request.method, url.scheme, url.netloc, path, tuple(headers), body)
        sealed = encapsulate_request(self.config, encode_request(message))
        try:
            answer = self._http.post(self.relay, content=sealed.encapsulated,
                                     headers={"content-type": _REQUEST})  # fmt: skip
        except httpx.HTTPError as exc:
            raise httpx.ConnectError(f"the relay {self.relay} is unreachable: {exc}") from exc
        if answer.status_code != 200 or not answer.headers.get("content-type", "").startswith(
            _RESPONSE
        ):
            # The relay or the gateway refused the sealed request itself: say so as it.
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=answer.content
            )
        inner = decode_response(sealed.open_response(answer.content))
        return httpx.Response(inner.status, headers=list(inner.headers), content=inner.content)

    def close(self) -> None:
        self._http.close()
