"""The asyncio client: the shared flows driven by httpx's async client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Literal, cast, overload

import httpx

from .._canonical import check_digest
from .._files import PathLike
from ..errors import Error, InputError
from ..hub import ModelRecord
from ..log import SignedCheckpoint
from ..receipts import Bundle, RunRecord
from ..verify import (
    LoggedImages,
    Material,
    Policy,
    RunReport,
    RunVerifier,
    TrustRoot,
    VerificationReport,
)
from ..workflows import AlertSpec, FeedSpec, History, HistoryReport, Query, Schedule, WorkflowInfo
from ._chatflows import (
    ChatAnswer,
    ChatCall,
    ChatInput,
    chat_call,
    chat_flow,
    openai_flow,
    stream_flow,
)
from ._chatstream import AsyncChatStream
from ._core import (
    RETRY_STATUSES,
    ClientCore,
    Flow,
    Inference,
    Inputs,
    Progress,
    Req,
    T,
    ZkSetupInfo,
    bundle_id_of,
    bundles_flow,
    get_flow,
    prepare,
    raise_for,
    record_of,
    retry_after,
)
from ._runs import sign_run_flow
from ._stream import Emit, Pull, StreamFlow
from ._workflows import VerifiedRun, WorkflowFlows

__all__ = ["AsyncClient"]


class AsyncClient(ClientCore):
    """The asyncio twin of :class:`Client`: same methods, awaited.

    Example::

        async with AsyncClient(url, token=token) as node:
            answers = await asyncio.gather(*(node.infer("risk", x) for x in rows))
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        policy: Policy | None = None,
        trust: TrustRoot | None = None,
        verify: bool = True,
        *,
        home: PathLike | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        images: LoggedImages | None = None,
    ) -> None:
        """``url`` and ``token`` default to ``INFERPROOF_NODE`` and ``INFERPROOF_TOKEN``.
        ``transport`` replaces the network (for example ``httpx.ASGITransport(app=...)``
        to run against a node's app in this process). ``images``: as for ``Client``."""
        super().__init__(url, token, policy, trust, verify, home, images)
        if self.policy.require_confidential:
            raise InputError(
                "the asyncio client does not send confidentially yet: use Client(..., "
                "confidential=True, relay=URL)"
            )
        self.retries = retries
        self._wf = WorkflowFlows(self)
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport)

    async def _send(self, req: Req) -> httpx.Response:
        """Send ``req``; a streamed response comes back before its body is read."""
        headers, kwargs = prepare(req, self._headers)
        for attempt in range(self.retries + 1):
            try:
                request = self._http.build_request(req.method, req.path, headers=headers, **kwargs)
                response = await self._http.send(request, stream=req.stream)
                if req.stream and response.status_code >= 400:
                    await response.aread()
                    await response.aclose()
            except httpx.HTTPError as exc:
                raise Error(f"cannot reach the node at {self.url}: {exc}") from exc
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                await asyncio.sleep(retry_after(response, attempt))
                continue
            raise_for(response)
            return response
        raise AssertionError("unreachable")

    async def _drive(
        self, flow: StreamFlow[T], done: Callable[[T], None]
    ) -> AsyncGenerator[Any, None]:
        """Run ``flow`` as ``Client._drive`` does, awaiting each request and pull."""
        async with contextlib.AsyncExitStack() as opened:
            body: AsyncIterator[bytes] = _empty()
            reply: Any = None
            error: Error | None = None
            try:
                while True:
                    try:
                        step = flow.send(reply) if error is None else flow.throw(error)
                    except StopIteration as stop:
                        done(cast(T, stop.value))
                        return
                    reply, error = None, None
                    if isinstance(step, Emit):
                        yield step.item
                    elif isinstance(step, Pull):
                        reply = await self._pull(body)
                    else:
                        try:
                            reply = await self._send(step)
                        except Error as exc:
                            error = exc
                            continue
                        if step.stream:
                            opened.push_async_callback(reply.aclose)
                            body = reply.aiter_bytes()
            finally:
                flow.close()

    async def _pull(self, body: AsyncIterator[bytes]) -> bytes:
        try:
            async for chunk in body:
                if chunk:
                    return chunk
        except httpx.HTTPError as exc:
            raise Error(f"the stream from the node at {self.url} broke: {exc}") from exc
        return b""

    async def _run(self, flow: Flow[T]) -> T:
        result: list[T] = []
        async for _ in self._drive(flow, result.append):
            raise AssertionError("a flow without a stream emitted an item")
        return result[0]

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

    async def zk_setup(
        self,
        model: str,
        samples: Sequence[Inputs],
        *,
        srs: str = "online",
        target: str = "resources",
        input_visibility: str = "public",
        param_visibility: str = "fixed",
        progress: Progress | None = None,
    ) -> ZkSetupInfo:
        """Have the node set ``model`` up for ZK proofs (a job: ``progress`` gets its
        lines). ``srs`` is ``online`` (EZKL fetches the public SRS), ``dev`` (local,
        development only) or the digest of a public SRS file the node holds.

        Example::

            info = await client.zk_setup("credit-risk:1", [{"X": [[52, 0.41, 34, 2]]}], srs="dev")
            answer = await client.infer("credit-risk:1", {"X": [[52, 0.41, 34, 2]]}, mode="zk")
        """
        options = {"srs": srs, "target": target, "input_visibility": input_visibility,
                   "param_visibility": param_visibility}  # fmt: skip
        return await self._run(self._zk_setup_flow(model, samples, options, progress))

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

    async def chat(
        self,
        model: str,
        messages: ChatInput,
        *,
        nonce: str | None = None,
        private: bool = False,
        **params: Any,
    ) -> ChatAnswer:
        """:meth:`Client.chat`, awaited."""
        call = chat_call("chat", model, messages, params, nonce=nonce, private=private,
                         stream=False)  # fmt: skip
        return await self._run(chat_flow(self, call))

    async def complete(
        self, model: str, prompt: ChatInput, *, nonce: str | None = None, private: bool = False,
        **params: Any,
    ) -> ChatAnswer:  # fmt: skip
        """:meth:`Client.complete`, awaited."""
        call = chat_call("completion", model, prompt, params, nonce=nonce, private=private,
                         stream=False)  # fmt: skip
        return await self._run(chat_flow(self, call))

    @overload
    def chat_stream(
        self, model: str, messages: ChatInput, *, chunks: Literal[False] = False,
        nonce: str | None = None, private: bool = False, verified_stream: bool = False,
        **params: Any,
    ) -> AsyncChatStream[str]: ...  # fmt: skip
    @overload
    def chat_stream(
        self, model: str, messages: ChatInput, *, chunks: Literal[True],
        nonce: str | None = None, private: bool = False, verified_stream: bool = False,
        **params: Any,
    ) -> AsyncChatStream[dict[str, Any]]: ...  # fmt: skip
    def chat_stream(
        self, model: str, messages: ChatInput, *, chunks: bool = False,
        nonce: str | None = None, private: bool = False, verified_stream: bool = False,
        **params: Any,
    ) -> AsyncChatStream[str] | AsyncChatStream[dict[str, Any]]:  # fmt: skip
        """:meth:`Client.chat_stream` as an async iterator (``async for``); not awaited.

        Example::

            async with client.chat_stream("tiny", "Hi") as stream:
                async for delta in stream:
                    print(delta, end="")
            print(stream.answer.receipt_digest)
        """
        call = chat_call("chat", model, messages, params, nonce=nonce, private=private,
                         stream=True)  # fmt: skip
        return self._stream(call, chunks, verified_stream)

    @overload
    def complete_stream(
        self, model: str, prompt: ChatInput, *, chunks: Literal[False] = False,
        nonce: str | None = None, private: bool = False, verified_stream: bool = False,
        **params: Any,
    ) -> AsyncChatStream[str]: ...  # fmt: skip
    @overload
    def complete_stream(
        self, model: str, prompt: ChatInput, *, chunks: Literal[True],
        nonce: str | None = None, private: bool = False, verified_stream: bool = False,
        **params: Any,
    ) -> AsyncChatStream[dict[str, Any]]: ...  # fmt: skip
    def complete_stream(
        self, model: str, prompt: ChatInput, *, chunks: bool = False,
        nonce: str | None = None, private: bool = False, verified_stream: bool = False,
        **params: Any,
    ) -> AsyncChatStream[str] | AsyncChatStream[dict[str, Any]]:  # fmt: skip
        """:meth:`Client.complete_stream` as an async iterator."""
        call = chat_call("completion", model, prompt, params, nonce=nonce, private=private,
                         stream=True)  # fmt: skip
        return self._stream(call, chunks, verified_stream)

    def _stream(self, call: ChatCall, chunks: bool, hold: bool) -> AsyncChatStream[Any]:
        flow = stream_flow(self, call, chunks, hold)
        return AsyncChatStream(lambda done: self._drive(flow, done))

    async def verify_openai(
        self,
        response: Any,
        *,
        nonce: str | None = None,
        model: str | None = None,
        request: Mapping[str, Any] | None = None,
    ) -> VerificationReport:
        """:meth:`Client.verify_openai`, awaited."""
        return await self._run(openai_flow(self, response, nonce, model, request))

    async def bundles(
        self,
        *,
        model: str | None = None,
        nonce: str | None = None,
        since: float | str | None = None,
        until: float | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of the bundles the node issued to this client's token, newest first:
        ``{"bundles": [{"id", "receipt_digest", "log_index", "created", "model",
        "nonce"}], "next_cursor"}`` (``since``/``until``: Unix seconds or ISO 8601).

        Example::

            page = await client.bundles(model="credit-risk:1", limit=10)
            bundles = [await client.bundle(row["id"]) for row in page["bundles"]]
        """
        params = {"model": model, "nonce": nonce, "since": since, "until": until,
                  "limit": limit, "cursor": cursor}  # fmt: skip
        return await self._run(bundles_flow(params))

    async def bundle(self, bundle_id: str) -> Bundle:
        return Bundle.from_json(await self._run(get_flow(f"/v1/bundles/{bundle_id_of(bundle_id)}")))

    async def bundle_for(self, receipt_digest: str) -> Bundle:
        path = f"/v1/receipts/{check_digest(receipt_digest)}/bundle"
        return Bundle.from_json(await self._run(get_flow(path, auth=True)))

    async def check(self, bundle: Bundle, material: Material | None = None) -> VerificationReport:
        return await self._run(self._check_flow(bundle, material, None))

    async def sign_run(
        self,
        run_id: str,
        calls: list[tuple[str, str]],
        started: str,
        agent: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], str | None]:
        """Have the node sign and log the chain of an agent run's calls, ``(tool,
        receipt digest)`` in order; every receipt must be one it issued to this token.
        Returns the signed envelope and its tlog-proof (see :class:`RunRecorder`)."""
        return await self._run(sign_run_flow(run_id, calls, started, dict(agent or {})))

    async def check_run(self, record: RunRecord) -> RunReport:
        """Verify a run record with this client's trust root and policy, less two
        requirements an audit after the fact cannot meet: the nonce and the input this
        client compared each answer with when it arrived (each receipt still carries
        its nonce, and public inputs are in the bundles)."""
        verifier = await self._run(self._trust_flow())
        return RunVerifier.for_audit(verifier).check(record)

    # -- workflows (docs/workflows.md, "Over HTTP") -------------------------------------------
    async def create_workflow(
        self, name: str, model: str, feed: FeedSpec | str, query: Query, schedule: Schedule,
        alerts: Sequence[AlertSpec] = (),
    ) -> WorkflowInfo:  # fmt: skip
        """:meth:`Client.create_workflow`, awaited."""
        return await self._run(self._wf.create(name, model, feed, query, schedule, alerts))

    async def workflows(self) -> list[WorkflowInfo]:
        return await self._run(self._wf.listing())

    async def workflow(self, name: str) -> WorkflowInfo:
        return await self._run(self._wf.show(name))

    async def pause_workflow(self, name: str) -> WorkflowInfo:
        return await self._run(self._wf.change(name, "pause"))

    async def resume_workflow(self, name: str) -> WorkflowInfo:
        return await self._run(self._wf.change(name, "resume"))

    async def delete_workflow(self, name: str) -> None:
        """Delete a workflow with its schedule and stored runs (export its history first)."""
        await self._run(self._wf.delete(name))

    async def run_workflow(self, name: str) -> VerifiedRun:
        """:meth:`Client.run_workflow`, awaited."""
        return await self._run(self._wf.run_now(name))

    async def workflow_history(self, name: str) -> History:
        """The workflow's history file as the node sends it (verify it with
        :meth:`verify_workflow`, or :func:`~inferproof.workflows.verify_history`)."""
        return await self._run(self._wf.history(name))

    async def verify_workflow(self, name: str) -> HistoryReport:
        """:meth:`Client.verify_workflow`, awaited."""
        return await self._run(self._wf.verify(name))

    def subscribe_workflow(self, name: str, after: int = 0) -> AsyncIterator[VerifiedRun]:
        """:meth:`Client.subscribe_workflow` as an async iterator (``async for``)."""
        return self._drive(self._wf.subscribe(name, after), lambda _: None)

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


async def _empty() -> AsyncIterator[bytes]:
    """No body (a pull before any streamed request answers that the body ended)."""
    nothing: tuple[bytes, ...] = ()
    for chunk in nothing:
        yield chunk
