"""The synchronous client: the shared flows driven by httpx's sync client."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import httpx

from .._canonical import check_digest
from .._files import PathLike
from ..errors import Error
from ..hub import ModelRecord
from ..log import SignedCheckpoint
from ..receipts import Bundle
from ..verify import Material, Policy, TrustRoot, VerificationReport
from ._core import (
    RETRY_STATUSES,
    ClientCore,
    Flow,
    Inference,
    Inputs,
    Progress,
    Req,
    T,
    bundle_id_of,
    get_flow,
    prepare,
    raise_for,
    record_of,
    retry_after,
)

__all__ = ["Client"]


class Client(ClientCore):
    """A synchronous client of one node (see the module docs for what it verifies).

    Example::

        with Client("http://127.0.0.1:8080", token=os.environ["INFERPROOF_TOKEN"]) as node:
            answer = node.infer("risk:1", {"X": [[52, 0.41, 34, 2]]})
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        policy: Policy | None = None,
        trust: TrustRoot | None = None,
        verify: bool = True,
        *,
        home: Path | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``transport`` replaces the network (any httpx transport: ``MockTransport``,
        ``WSGITransport``...); by default httpx's own HTTP/1.1 pool is used."""
        super().__init__(url, token, policy, trust, verify, home)
        self.retries = retries
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def _send(self, req: Req) -> httpx.Response:
        headers, kwargs = prepare(req, self._headers)
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(req.method, req.path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                raise Error(f"cannot reach the node at {self.url}: {exc}") from exc
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                time.sleep(retry_after(response, attempt))
                continue
            raise_for(response)
            return response
        raise AssertionError("unreachable")

    def _run(self, flow: Flow[T]) -> T:
        try:
            request = next(flow)
            while True:
                try:
                    response = self._send(request)
                except Error as exc:  # the flow may handle it (a missing proof is a check)
                    request = flow.throw(exc)
                    continue
                request = flow.send(response)
        except StopIteration as stop:
            return cast(T, stop.value)

    def identity(self) -> dict[str, Any]:
        """The node's identity document (keys, measurement, attestation)."""
        return cast(dict[str, Any], self._run(get_flow("/v1/identity")))

    def trust_root(self) -> TrustRoot:
        """The trust root in use: the explicit one, or the node pinned on first use."""
        return self._run(self._trust_flow()).trust

    def push(
        self,
        model: PathLike | bytes,
        *,
        name: str,
        version: str | None = None,
        signature: PathLike | bytes | None = None,
    ) -> ModelRecord:
        """Upload a model (and its OpenSSF model-signing bundle); needs a token."""
        return self._run(self._push_flow(model, name, version, signature))

    def models(self) -> list[ModelRecord]:
        return [record_of(r) for r in self._run(get_flow("/v1/models")).get("models", [])]

    def model(self, ref: str) -> ModelRecord:
        return self._run(self._record_flow(ref))

    def download(self, digest: str) -> bytes:
        """A blob (model, signature, artifact) by digest, checked against the digest."""
        return self._run(self._model_flow(digest))

    def infer(
        self,
        model: str,
        inputs: Inputs,
        *,
        mode: str = "vanilla",
        nonce: str | None = None,
        private_input: bool = False,
        private_output: bool | None = None,
        progress: Progress | None = None,
    ) -> Inference:
        """Run ``model`` on ``inputs`` (numpy arrays, or plain lists typed by the model).

        A fresh random nonce is used when none is given. Long modes run as jobs and
        ``progress`` receives their progress lines.
        """
        return self._run(
            self._infer_flow(model, inputs, mode, nonce, (private_input, private_output), progress)
        )

    def infer_batch(
        self,
        model: str,
        batch: Sequence[Inputs],
        *,
        nonces: Sequence[str] | None = None,
        private_input: bool = False,
        private_output: bool | None = None,
    ) -> list[Inference]:
        """Several inferences in one request; each has its own receipt, all are verified."""
        return self._run(self._batch_flow(model, batch, nonces, (private_input, private_output)))

    def bundle(self, bundle_id: str) -> Bundle:
        return Bundle.from_json(self._run(get_flow(f"/v1/bundles/{bundle_id_of(bundle_id)}")))

    def bundle_for(self, receipt_digest: str) -> Bundle:
        path = f"/v1/receipts/{check_digest(receipt_digest)}/bundle"
        return Bundle.from_json(self._run(get_flow(path, auth=True)))

    def check(self, bundle: Bundle, material: Material | None = None) -> VerificationReport:
        """Verify any bundle with this client's trust, policy and checkpoint memory."""
        return self._run(self._check_flow(bundle, material, None))

    def checkpoint(self) -> SignedCheckpoint:
        """The node's latest checkpoint, signature and consistency checked."""
        return self._run(self._checkpoint_flow())

    def close(self) -> None:
        """Write the checkpoint memory to disk and close the connection."""
        try:
            self._run(self._close_flow())
        finally:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
