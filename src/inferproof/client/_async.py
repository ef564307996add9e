"""The asyncio client: the shared flows driven by httpx's async client."""

from __future__ import annotations

import asyncio
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

__all__ = ["AsyncClient"]


class AsyncClient(ClientCore):
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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``transport`` replaces the network (for example ``httpx.ASGITransport(app=...)``
        to run against a node's app in this process)."""
        super().__init__(url, token, policy, trust, verify, home)
        self.retries = retries
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport)

    async def _send(self, req: Req) -> httpx.Response:
        headers, kwargs = prepare(req, self._headers)
        for attempt in range(self.retries + 1):
            try:
                response = await self._http.request(req.method, req.path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                raise Error(f"cannot reach the node at {self.url}: {exc}") from exc
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                await asyncio.sleep(retry_after(response, attempt))
                continue
            raise_for(response)
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
        return cast(dict[str, Any], await self._run(get_flow("/v1/identity")))

    async def trust_root(self) -> TrustRoot:
        return (await self._run(self._trust_flow())).trust

    async def push(
        self,
        model: PathLike | bytes,
        *,
        name: str,
        version: str | None = None,
        signature: PathLike | bytes | None = None,
    ) -> ModelRecord:
        return await self._run(self._push_flow(model, name, version, signature))

    async def models(self) -> list[ModelRecord]:
        return [record_of(r) for r in (await self._run(get_flow("/v1/models"))).get("models", [])]

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
        private_output: bool | None = None,
        progress: Progress | None = None,
    ) -> Inference:
        flow = self._infer_flow(
            model, inputs, mode, nonce, (private_input, private_output), progress
        )
        return await self._run(flow)

    async def infer_batch(
        self,
        model: str,
        batch: Sequence[Inputs],
        *,
        nonces: Sequence[str] | None = None,
        private_input: bool = False,
        private_output: bool | None = None,
    ) -> list[Inference]:
        return await self._run(
            self._batch_flow(model, batch, nonces, (private_input, private_output))
        )

    async def bundle(self, bundle_id: str) -> Bundle:
        return Bundle.from_json(await self._run(get_flow(f"/v1/bundles/{bundle_id_of(bundle_id)}")))

    async def bundle_for(self, receipt_digest: str) -> Bundle:
        path = f"/v1/receipts/{check_digest(receipt_digest)}/bundle"
        return Bundle.from_json(await self._run(get_flow(path, auth=True)))

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
