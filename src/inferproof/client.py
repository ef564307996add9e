"""The Python SDK for an inferproof node: every answer is verified before it is returned.

``Client`` (sync) and ``AsyncClient`` (asyncio) share one behaviour. With ``verify=True``
(the default) each bundle is checked by :class:`~inferproof.verify.Verifier` against the
client's trust root and policy, the receipt must name the model asked for, carry the
client's nonce and commit to the client's input, and its log checkpoint must be
consistent with every checkpoint this client saw before (consistency proofs are fetched
from the node when a newer one appears). A failed check raises
:class:`~inferproof.errors.VerificationError`: an unverified answer is never returned.

Trust: with ``trust=None`` the client pins the node's Ed25519 key and log key on first
use (``INFERPROOF_HOME/known_nodes/``, like SSH's known_hosts) and later receipts must
match the pin; publishers and witnesses come from ``INFERPROOF_HOME/trust/``. Pass an
explicit :class:`~inferproof.verify.TrustRoot` to trust nothing learned from the node.

Example::

    from inferproof.client import Client
    with Client("http://127.0.0.1:8080", token=token) as node:
        node.push(Path("model.onnx"), name="risk", version="1")
        answer = node.infer("risk:1", {"X": np.array([[52, 0.41, 34, 2]], np.float32)})
        print(answer.outputs, answer.report.verified)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import httpx

from ._canonical import check_digest
from ._client import (
    _RETRY_STATUSES,
    DEFAULT_POLICY,
    Flow,
    Inference,
    Inputs,
    Progress,
    T,
    _Base,
    _get_flow,
    _id,
    _prepare,
    _raise_for,
    _record,
    _Req,
    _retry_after,
)
from .errors import Error
from .hub import ModelRecord
from .log import SignedCheckpoint
from .receipts import Bundle
from .verify import Material, Policy, TrustRoot, VerificationReport

__all__ = ["DEFAULT_POLICY", "AsyncClient", "Client", "Inference"]


class Client(_Base):
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
    ) -> None:
        super().__init__(url, token, policy, trust, verify, home)
        self.retries = retries
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def _send(self, req: _Req) -> httpx.Response:
        headers, kwargs = _prepare(req, self._headers)
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(req.method, req.path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                raise Error(f"cannot reach the node at {self.url}: {exc}") from exc
            if response.status_code in _RETRY_STATUSES and attempt < self.retries:
                time.sleep(_retry_after(response, attempt))
                continue
            _raise_for(response)
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
        return cast(dict[str, Any], self._run(_get_flow("/v1/identity")))

    def trust_root(self) -> TrustRoot:
        """The trust root in use: the explicit one, or the node pinned on first use."""
        return self._run(self._trust_flow()).trust

    def push(
        self,
        model: Path | bytes,
        *,
        name: str,
        version: str | None = None,
        signature: Path | bytes | None = None,
    ) -> ModelRecord:
        """Upload a model (and its OpenSSF model-signing bundle); needs a token."""
        return self._run(self._push_flow(model, name, version, signature))

    def models(self) -> list[ModelRecord]:
        return [_record(r) for r in self._run(_get_flow("/v1/models")).get("models", [])]

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
        progress: Progress | None = None,
    ) -> Inference:
        """Run ``model`` on ``inputs`` (numpy arrays, or plain lists typed by the model).

        A fresh random nonce is used when none is given. Long modes run as jobs and
        ``progress`` receives their progress lines.
        """
        return self._run(self._infer_flow(model, inputs, mode, nonce, private_input, progress))

    def infer_batch(
        self,
        model: str,
        batch: Sequence[Inputs],
        *,
        nonces: Sequence[str] | None = None,
        private_input: bool = False,
    ) -> list[Inference]:
        """Several inferences in one request; each has its own receipt, all are verified."""
        return self._run(self._batch_flow(model, batch, nonces, private_input))

    def bundle(self, bundle_id: str) -> Bundle:
        return Bundle.from_json(self._run(_get_flow(f"/v1/bundles/{_id(bundle_id)}")))

    def bundle_for(self, receipt_digest: str) -> Bundle:
        path = f"/v1/receipts/{check_digest(receipt_digest)}/bundle"
        return Bundle.from_json(self._run(_get_flow(path)))

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


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client`: same methods, awaited.

    Example::

        async with AsyncClient(url, token=token) as node:
            answers = await asyncio.gather(*(node.infer("risk", x) for x in rows))
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
    ) -> None:
        super().__init__(url, token, policy, trust, verify, home)
        self.retries = retries
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout)

    async def _send(self, req: _Req) -> httpx.Response:
        headers, kwargs = _prepare(req, self._headers)
        for attempt in range(self.retries + 1):
            try:
                response = await self._http.request(req.method, req.path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                raise Error(f"cannot reach the node at {self.url}: {exc}") from exc
            if response.status_code in _RETRY_STATUSES and attempt < self.retries:
                await asyncio.sleep(_retry_after(response, attempt))
                continue
            _raise_for(response)
            return response
        raise AssertionError("unreachable")

    async def _run(self, flow: Flow[T]) -> T:
        try:
            request = next(flow)
            while True:
                try:
                    response = await self._send(request)
                except Error as exc:
                    request = flow.throw(exc)
                    continue
                request = flow.send(response)
        except StopIteration as stop:
            return cast(T, stop.value)

    async def identity(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._run(_get_flow("/v1/identity")))

    async def trust_root(self) -> TrustRoot:
        return (await self._run(self._trust_flow())).trust

    async def push(
        self,
        model: Path | bytes,
        *,
        name: str,
        version: str | None = None,
        signature: Path | bytes | None = None,
    ) -> ModelRecord:
        return await self._run(self._push_flow(model, name, version, signature))

    async def models(self) -> list[ModelRecord]:
        return [_record(r) for r in (await self._run(_get_flow("/v1/models"))).get("models", [])]

    async def model(self, ref: str) -> ModelRecord:
        return await self._run(self._record_flow(ref))

    async def download(self, digest: str) -> bytes:
        return await self._run(self._model_flow(digest))

    async def infer(
        self,
        model: str,
        inputs: Inputs,
        *,
        mode: str = "vanilla",
        nonce: str | None = None,
        private_input: bool = False,
        progress: Progress | None = None,
    ) -> Inference:
        flow = self._infer_flow(model, inputs, mode, nonce, private_input, progress)
        return await self._run(flow)

    async def infer_batch(
        self,
        model: str,
        batch: Sequence[Inputs],
        *,
        nonces: Sequence[str] | None = None,
        private_input: bool = False,
    ) -> list[Inference]:
        return await self._run(self._batch_flow(model, batch, nonces, private_input))

    async def bundle(self, bundle_id: str) -> Bundle:
        return Bundle.from_json(await self._run(_get_flow(f"/v1/bundles/{_id(bundle_id)}")))

    async def bundle_for(self, receipt_digest: str) -> Bundle:
        path = f"/v1/receipts/{check_digest(receipt_digest)}/bundle"
        return Bundle.from_json(await self._run(_get_flow(path)))

    async def check(self, bundle: Bundle, material: Material | None = None) -> VerificationReport:
        return await self._run(self._check_flow(bundle, material, None))

    async def checkpoint(self) -> SignedCheckpoint:
        return await self._run(self._checkpoint_flow())

    async def aclose(self) -> None:
        try:
            await self._run(self._close_flow())
        finally:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
