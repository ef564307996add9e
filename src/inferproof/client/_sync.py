"""The synchronous client: the shared flows driven by httpx's sync client."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, Literal, cast, overload

import httpx

from .._canonical import check_digest
from .._files import PathLike
from ..errors import Error, InputError
from ..hub import ModelRecord
from ..log import SignedCheckpoint
from ..receipts import Bundle, RunRecord, RunRecorder
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
from ._chatstream import ChatStream
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
from ._ohttp import SEALED, ObliviousTransport, bind_gateway
from ._runs import sign_run_flow
from ._stream import Emit, Pull, StreamFlow
from ._workflows import VerifiedRun, WorkflowFlows

__all__ = ["Client"]


class Client(ClientCore):
    """A synchronous client of one node (see the module docs for what it verifies).

    Example::

        with Client("http://127.0.0.1:8080", token=os.environ["INFERPROOF_TOKEN"]) as node:
            answer = node.infer("risk:1", {"X": [[52, 0.41, 34, 2]]})
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
        transport: httpx.BaseTransport | None = None,
        confidential: bool = False,
        relay: str | None = None,
        images: LoggedImages | None = None,
    ) -> None:
        """``url`` and ``token`` default to ``INFERPROOF_NODE`` and ``INFERPROOF_TOKEN``.
        ``transport`` replaces the network (any httpx transport: ``MockTransport``,
        ``WSGITransport``...); by default httpx's own HTTP/1.1 pool is used.

        ``confidential=True`` sends every request sealed to the node's Oblivious HTTP key
        through ``relay`` (docs/confidential.md): the relay reads nothing, the node does
        not learn who asked.

        ``images`` are the logged node images the policy's
        ``environment.require_logged_image`` accepts (docs/environment.md)."""
        super().__init__(url, token, policy, trust, verify, home, images)
        self.retries = retries
        self._wf = WorkflowFlows(self)
        if confidential:
            if relay is None:
                raise InputError("a confidential client needs a relay (relay=URL)")
            config, self._confidential = bind_gateway(
                self.url, relay, transport=transport, trusted=self._known_node_keys(),
                require_attested=self.policy.require_confidential,
                allow_software=self.policy.confidential_allow_software,
                attestation=self.policy.attestation,
            )  # fmt: skip
            transport = ObliviousTransport(config, relay, transport=transport, timeout=timeout)
        elif relay is not None:
            raise InputError("relay= is for a confidential client (confidential=True)")
        elif self.policy.require_confidential:
            raise InputError("the policy requires confidential inference (confidential=True)")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def _send(self, req: Req) -> httpx.Response:
        """Send ``req``; a streamed response comes back before its body is read."""
        headers, kwargs = prepare(req, self._headers)
        for attempt in range(self.retries + 1):
            try:
                request = self._http.build_request(req.method, req.path, headers=headers, **kwargs)
                response = self._http.send(request, stream=req.stream)
                if req.stream and response.status_code >= 400:
                    response.read()
                    response.close()
            except httpx.HTTPError as exc:
                raise Error(f"cannot reach the node at {self.url}: {exc}") from exc
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                time.sleep(retry_after(response, attempt))
                continue
            raise_for(response)
            return response
        raise AssertionError("unreachable")

    def _drive(self, flow: StreamFlow[T], done: Callable[[T], None]) -> Generator[Any, None, None]:
        """Run ``flow``: send its requests, pull its streamed bodies, yield what it
        emits; ``done`` receives its result. Errors of a request are thrown into the
        flow (it may handle them: a missing proof is a check)."""
        with contextlib.ExitStack() as opened:
            body: Iterator[bytes] = iter(())
            reply: Any = None
            error: Error | None = None
            sealed = False
            try:
                while True:
                    try:
                        step = flow.send(reply) if error is None else flow.throw(error)
                    except StopIteration as stop:
                        if sealed:
                            # A sealed stream is complete only at its final chunk
                            # (client/_ohttp.py): read to it before the answer counts.
                            while self._pull(body):
                                pass
                        done(cast(T, stop.value))
                        return
                    reply, error = None, None
                    if isinstance(step, Emit):
                        yield step.item
                    elif isinstance(step, Pull):
                        reply = self._pull(body)
                    else:
                        try:
                            reply = self._send(step)
                        except Error as exc:
                            error = exc
                            continue
                        if step.stream:
                            opened.callback(reply.close)
                            body = reply.iter_bytes()
                            sealed = bool(reply.extensions.get(SEALED))
            finally:
                flow.close()

    def _pull(self, body: Iterator[bytes]) -> bytes:
        try:
            return next((chunk for chunk in body if chunk), b"")
        except httpx.HTTPError as exc:
            raise Error(f"the stream from the node at {self.url} broke: {exc}") from exc

    def _run(self, flow: Flow[T]) -> T:
        result: list[T] = []
        for _ in self._drive(flow, result.append):
            raise AssertionError("a flow without a stream emitted an item")
        return result[0]

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

    def zk_setup(
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

            info = client.zk_setup("credit-risk:1", [{"X": [[52, 0.41, 34, 2]]}], srs="dev")
            answer = client.infer("credit-risk:1", {"X": [[52, 0.41, 34, 2]]}, mode="zk")
        """
        options = {"srs": srs, "target": target, "input_visibility": input_visibility,
                   "param_visibility": param_visibility}  # fmt: skip
        return self._run(self._zk_setup_flow(model, samples, options, progress))

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

    def chat(
        self,
        model: str,
        messages: ChatInput,
        *,
        nonce: str | None = None,
        private: bool = False,
        **params: Any,
    ) -> ChatAnswer:
        """Ask a chat model through ``/v1/chat/completions``; return the answer only once
        its receipt verified (module docs; a failed check raises VerificationError).

        ``messages`` is a user message, OpenAI's messages, or a whole OpenAI request
        body; ``params`` are OpenAI's (``temperature``, ``max_tokens``, ``seed``,
        ``stop``...). ``private`` makes the receipt commit to salted digests of the
        request and answer: ``answer.opening`` opens them.

        Example::

            answer = client.chat("tiny", "What is the capital of France?", temperature=0)
            print(answer.text, answer.receipt_digest)
        """
        call = chat_call("chat", model, messages, params, nonce=nonce, private=private,
                         stream=False)  # fmt: skip
        return self._run(chat_flow(self, call))

    def complete(
        self, model: str, prompt: ChatInput, *, nonce: str | None = None, private: bool = False,
        **params: Any,
    ) -> ChatAnswer:  # fmt: skip
        """A text completion (``/v1/completions``), verified as :meth:`chat` is."""
        call = chat_call("completion", model, prompt, params, nonce=nonce, private=private,
                         stream=False)  # fmt: skip
        return self._run(chat_flow(self, call))

    @overload
    def chat_stream(
        self, model: str, messages: ChatInput, *, chunks: Literal[False] = False,
        nonce: str | None = None, private: bool = False, verified_stream: bool = False,
        **params: Any,
    ) -> ChatStream[str]: ...  # fmt: skip
    @overload
    def chat_stream(
        self, model: str, messages: ChatInput, *, chunks: Literal[True],
        nonce: str | None = None, private: bool = False, verified_stream: bool = False,
        **params: Any,
    ) -> ChatStream[dict[str, Any]]: ...  # fmt: skip
    def chat_stream(
        self, model: str, messages: ChatInput, *, chunks: bool = False,
        nonce: str | None = None, private: bool = False, verified_stream: bool = False,
        **params: Any,
    ) -> ChatStream[str] | ChatStream[dict[str, Any]]:  # fmt: skip
        """A streamed chat answer: iterate it for the text deltas (``chunks=True``:
        OpenAI's chunk dicts). The receipt comes last, so the answer is verified at the
        end: items are unverified until the iteration ends without raising, and
        ``stream.answer`` is set only then; ``verified_stream=True`` yields nothing
        before the receipt verified (see :class:`ChatStream`).

        Example::

            with client.chat_stream("tiny", "Hi", temperature=0) as stream:
                for delta in stream:
                    print(delta, end="")
            print(stream.answer.report.verified)
        """
        call = chat_call("chat", model, messages, params, nonce=nonce, private=private,
                         stream=True)  # fmt: skip
        return self._stream(call, chunks, verified_stream)

    @overload
    def complete_stream(
        self, model: str, prompt: ChatInput, *, chunks: Literal[False] = False,
        nonce: str | None = None, private: bool = False, verified_stream: bool = False,
        **params: Any,
    ) -> ChatStream[str]: ...  # fmt: skip
    @overload
    def complete_stream(
        self, model: str, prompt: ChatInput, *, chunks: Literal[True],
        nonce: str | None = None, private: bool = False, verified_stream: bool = False,
        **params: Any,
    ) -> ChatStream[dict[str, Any]]: ...  # fmt: skip
    def complete_stream(
        self, model: str, prompt: ChatInput, *, chunks: bool = False,
        nonce: str | None = None, private: bool = False, verified_stream: bool = False,
        **params: Any,
    ) -> ChatStream[str] | ChatStream[dict[str, Any]]:  # fmt: skip
        """A streamed text completion, verified as :meth:`chat_stream` is."""
        call = chat_call("completion", model, prompt, params, nonce=nonce, private=private,
                         stream=True)  # fmt: skip
        return self._stream(call, chunks, verified_stream)

    def _stream(self, call: ChatCall, chunks: bool, hold: bool) -> ChatStream[Any]:
        return ChatStream(lambda done: self._drive(stream_flow(self, call, chunks, hold), done))

    def verify_openai(
        self,
        response: Any,
        *,
        nonce: str | None = None,
        model: str | None = None,
        request: Mapping[str, Any] | None = None,
    ) -> VerificationReport:
        """Verify the receipt on an official ``openai`` client's answer with this
        client's trust, policy and checkpoint memory (see :func:`verify_openai`)."""
        return self._run(openai_flow(self, response, nonce, model, request))

    def bundles(
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

            page = client.bundles(model="credit-risk:1", limit=10)
            bundles = [client.bundle(row["id"]) for row in page["bundles"]]
        """
        params = {"model": model, "nonce": nonce, "since": since, "until": until,
                  "limit": limit, "cursor": cursor}  # fmt: skip
        return self._run(bundles_flow(params))

    def bundle(self, bundle_id: str) -> Bundle:
        return Bundle.from_json(self._run(get_flow(f"/v1/bundles/{bundle_id_of(bundle_id)}")))

    def bundle_for(self, receipt_digest: str) -> Bundle:
        path = f"/v1/receipts/{check_digest(receipt_digest)}/bundle"
        return Bundle.from_json(self._run(get_flow(path, auth=True)))

    def check(self, bundle: Bundle, material: Material | None = None) -> VerificationReport:
        """Verify any bundle with this client's trust, policy and checkpoint memory."""
        return self._run(self._check_flow(bundle, material, None))

    def sign_run(
        self,
        run_id: str,
        calls: list[tuple[str, str]],
        started: str,
        agent: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], str | None]:
        """Have the node sign and log the chain of an agent run's calls, ``(tool,
        receipt digest)`` in order; every receipt must be one it issued to this token.
        Returns the signed envelope and its tlog-proof (see :class:`RunRecorder`)."""
        return self._run(sign_run_flow(run_id, calls, started, dict(agent or {})))

    def run_recorder(
        self, *, run_id: str | None = None, agent: dict[str, Any] | None = None
    ) -> RunRecorder:
        """A :class:`~inferproof.engine.RunRecorder` whose records this node signs.

        Example::

            run = client.run_recorder(agent={"name": "loan-desk"})
            run.add("infer", client.infer("risk:1", inputs).bundle)
            client.check_run(run.record()).verified
        """
        return RunRecorder(self.sign_run, run_id=run_id, agent=agent)

    def check_run(self, record: RunRecord) -> RunReport:
        """Verify a run record with this client's trust root and policy, less two
        requirements an audit after the fact cannot meet: the nonce and the input this
        client compared each answer with when it arrived (each receipt still carries
        its nonce, and public inputs are in the bundles)."""
        verifier = self._run(self._trust_flow())
        return RunVerifier.for_audit(verifier).check(record)

    # -- workflows (docs/workflows.md, "Over HTTP") -------------------------------------------
    def create_workflow(
        self, name: str, model: str, feed: FeedSpec | str, query: Query, schedule: Schedule,
        alerts: Sequence[AlertSpec] = (),
    ) -> WorkflowInfo:  # fmt: skip
        """Define and schedule a workflow on the node (needs a token). The node refuses,
        with the reason, a query the model cannot take, an alert on an output it lacks,
        or a feed or webhook host outside its allow-list (``serve --feed-host``).

        Example::

            client.create_workflow("risk", "credit:1", "https://feeds.example/applicants",
                                   Query("X", ("income", "debt", "age", "late"), 1),
                                   Schedule(every=60), [AlertSpec("output.prob > 0.8")])
        """
        return self._run(self._wf.create(name, model, feed, query, schedule, alerts))

    def workflows(self) -> list[WorkflowInfo]:
        return self._run(self._wf.listing())

    def workflow(self, name: str) -> WorkflowInfo:
        return self._run(self._wf.show(name))

    def pause_workflow(self, name: str) -> WorkflowInfo:
        return self._run(self._wf.change(name, "pause"))

    def resume_workflow(self, name: str) -> WorkflowInfo:
        return self._run(self._wf.change(name, "resume"))

    def delete_workflow(self, name: str) -> None:
        """Delete a workflow with its schedule and stored runs (export its history first)."""
        self._run(self._wf.delete(name))

    def run_workflow(self, name: str) -> VerifiedRun:
        """Run a workflow now, off schedule; the run is verified as a subscription's are,
        except its link to the run before (``verify_workflow`` checks the chain)."""
        return self._run(self._wf.run_now(name))

    def workflow_history(self, name: str) -> History:
        """The workflow's history file as the node sends it (verify it with
        :meth:`verify_workflow`, or :func:`~inferproof.workflows.verify_history`)."""
        return self._run(self._wf.history(name))

    def verify_workflow(self, name: str) -> HistoryReport:
        """Fetch the workflow's history and verify it here, with this client's trust
        root: every entry signed and logged, one definition, an unbroken chain."""
        return self._run(self._wf.verify(name))

    def subscribe_workflow(self, name: str, after: int = 0) -> Iterator[VerifiedRun]:
        """The workflow's runs as the node makes them (its server-sent events), the runs
        after ``after`` first; each is verified before it is yielded (see
        :mod:`inferproof.client._workflows`: a failed check raises VerificationError).
        The iteration ends when the node closes the stream.

        Example::

            with contextlib.closing(client.subscribe_workflow("risk")) as runs:
                for run in runs:
                    print(run.run, run.status, run.alerts)
        """
        return self._drive(self._wf.subscribe(name, after), lambda _: None)

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
