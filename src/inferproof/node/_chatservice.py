"""Chat and embedding requests on the node: library calls on worker threads, events to
the event loop.

A request is checked by the library's parser on arrival, then answered on a chat
thread: by the node's own GGUF model when the hub holds one under that name, else
(relay mode, chat only) by the upstream through :meth:`LocalNode.relay_chat`. Every answer's
bundle goes to the node's bundle store under an id drawn before the answer starts,
so a stream can name it in its headers.

Both kinds of request run the library's stream (:func:`chat_stream`): a whole
answer is the same stream drained on the worker, which lets a timeout or a
vanished client stop generation between two tokens (no receipt is made for an
answer never finished) and guarantees that streamed and whole answers agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..engine import ChatResult, ChatStream, EmbeddingResult
from ..errors import InputError, ModelNotFound
from ..log import TlogProof
from ..runtime import check_upstream, parse_embedding_request, parse_request
from ..runtime import openai_shapes as oai
from ._bundles import new_id
from ._chaterrors import ChatError, chat_error
from ._config import NodeConfig
from ._schemas import MAX_NONCE, MODEL_REF
from ._service import Service

_REF = re.compile(MODEL_REF)
_DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Ask:
    """One checked chat request: the task, the body as sent, and the receipt options."""

    task: str
    body: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    nonce: str | None
    private: bool
    # The hash of the token that asked: its bundle is listed to that token only.
    owner: str | None = None


@dataclass(frozen=True)
class EmbedAsk:
    """One checked embedding request: the body as sent, and the receipt options."""

    body: dict[str, Any]
    model: str
    nonce: str | None
    private: bool
    owner: str | None = None


class _Stopped(Exception):
    """Generation was stopped because nobody waits for the answer any more."""


def sse(event: dict[str, Any]) -> bytes:
    """One server-sent event as OpenAI streams them: ``data: {json}`` and a blank line."""
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def relay_events(result: ChatResult, include_usage: bool) -> list[dict[str, Any]]:
    """A relayed (whole) answer as the events of a stream, as :class:`ChatStream` ends one:
    the role, the text, the finish reason, the usage if asked; the receipt on the last."""
    r = result.response
    rid, created, model, fp = r["id"], r["created"], r["model"], r["system_fingerprint"]
    events = [oai.chunk("chat", rid, created, model, first=True, text="", system_fingerprint=fp)]
    if result.text:
        events.append(oai.chunk("chat", rid, created, model, text=result.text,
                                system_fingerprint=fp))  # fmt: skip
    finish = result.output.finish_reason
    last = oai.chunk("chat", rid, created, model, finish_reason=finish, system_fingerprint=fp)
    if include_usage:
        events.append(last)
        last = oai.usage_chunk("chat", rid, created, model, result.output)
    last[oai.EXTRA_FIELD] = r[oai.EXTRA_FIELD]
    return [*events, last]


class ChatService:
    """The chat endpoints' work: see the module docs.

    Example::

        chat = ChatService(service, NodeConfig(relay_url="http://upstream:8080/v1"))
        ask = chat.parse("chat", body, nonce=None, private=False)
        data, bundle_id = await chat.answer(ask)
    """

    def __init__(self, svc: Service, config: NodeConfig) -> None:
        self.svc, self.node = svc, svc.node
        self.relay = check_upstream(config.relay_url) if config.relay_url else None
        self._api_key = config.relay_api_key
        self._relay_transport = config.relay_transport
        if config.chat_timeout <= 0 or config.chat_threads < 1:
            raise InputError("chat_timeout must be > 0 and chat_threads >= 1")
        self.timeout = config.chat_timeout
        self.pool = ThreadPoolExecutor(config.chat_threads, thread_name_prefix="chat")
        self._closing = threading.Event()

    # -- requests ----------------------------------------------------------------------
    def parse(
        self, task: str, body: Any, nonce: str | None, private: bool, owner: str | None = None
    ) -> Ask:
        """Check the body with the library's parser (bad requests raise InputError)."""
        parsed = parse_request(body, task)
        if nonce is not None and not 0 < len(nonce) <= MAX_NONCE:
            raise InputError(f"nonce must be 1 to {MAX_NONCE} characters")
        return Ask(task, body, parsed.model_ref, parsed.stream, parsed.include_usage,
                   nonce, private, owner)  # fmt: skip

    def parse_embedding(
        self, body: Any, nonce: str | None, private: bool, owner: str | None = None
    ) -> EmbedAsk:
        """Check an embeddings body with the library's parser."""
        parsed = parse_embedding_request(body)
        if nonce is not None and not 0 < len(nonce) <= MAX_NONCE:
            raise InputError(f"nonce must be 1 to {MAX_NONCE} characters")
        return EmbedAsk(body, parsed.model_ref, nonce, private, owner)

    def _open(self, ask: Ask, deadline: float) -> ChatStream | ChatResult:
        """A local stream, or the whole relayed answer. Only a hub reference (never a
        file path: names come from the network) is looked up in the hub."""
        # Relay mode forwards chat only: relay_chat has no text-completion form.
        upstream = self.relay if ask.task == "chat" else None
        why = "; relay mode forwards chat completions only" if self.relay is not None else ""
        if _REF.match(ask.model):
            opener = self.node.chat_stream if ask.task == "chat" else self.node.complete_stream
            try:
                return opener(ask.model, ask.body, private=ask.private, nonce=ask.nonce)
            except ModelNotFound as exc:
                if upstream is None:
                    raise ModelNotFound(f"{exc}{why}") from None
        elif upstream is None:
            raise ModelNotFound(f"no chat model {ask.model!r} on this node{why}")
        return self.node.relay_chat(
            upstream, ask.body, api_key=self._api_key, private=ask.private,
            nonce=ask.nonce, timeout=max(0.001, deadline - time.monotonic()),
            transport=self._relay_transport,
        )  # fmt: skip

    def _store(
        self, result: ChatResult | EmbeddingResult, bundle_id: str, owner: str | None
    ) -> None:
        """Keep the bundle under ``bundle_id`` (listed to ``owner``), name it in the
        receipt field."""
        bundle = result.bundle
        data = json.dumps(bundle.to_json(), separators=(",", ":")).encode()
        index = TlogProof.parse(bundle.tlog_entry).index if bundle.tlog_entry else None
        self.svc.bundles.add(result.receipt_digest, index, data, bundle_id, owner=owner)
        result.response[oai.EXTRA_FIELD]["bundle_id"] = bundle_id
        params = result.bundle.receipt.parameters
        mode = "relay" if params.get("mode") == "relay" else "chat"
        mode = "embedding" if isinstance(result, EmbeddingResult) else mode
        self.svc.metrics.inferences.labels(mode).inc()

    def _check(self, cancel: threading.Event, deadline: float) -> None:
        if cancel.is_set():
            raise _Stopped("the request was abandoned")
        if self._closing.is_set():
            raise ChatError(503, "the node is stopping", kind="server_error", code="unavailable")
        if time.monotonic() > deadline:
            raise _timeout(self.timeout)

    # -- whole answers -----------------------------------------------------------------
    def _whole(self, ask: Ask, bundle_id: str, cancel: threading.Event, deadline: float) -> bytes:
        self._check(cancel, deadline)  # it may have waited for a thread
        source = self._open(ask, deadline)
        if isinstance(source, ChatStream):
            with contextlib.closing(source):
                for _ in source:
                    if source.result is None:  # once it is set, the receipt is logged
                        self._check(cancel, deadline)
            assert source.result is not None  # the stream ran to its end
            source = source.result
        self._store(source, bundle_id, ask.owner)
        return json.dumps(source.response, separators=(",", ":")).encode()

    async def answer(self, ask: Ask) -> tuple[bytes, str]:
        """The whole answer's JSON and its bundle id; errors raise :class:`ChatError`."""
        deadline, cancel, bundle_id = time.monotonic() + self.timeout, threading.Event(), new_id()
        future = self.pool.submit(self._whole, ask, bundle_id, cancel, deadline)
        try:
            data: bytes = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            raise _timeout(self.timeout) from None
        except Exception as exc:
            raise chat_error(exc, ask.task) from exc
        finally:
            cancel.set()  # no effect once the answer is complete
        return data, bundle_id

    # -- embeddings --------------------------------------------------------------------
    def _embed(self, ask: EmbedAsk, bundle_id: str, deadline: float) -> bytes:
        # Checked once before the work starts: llama.cpp cannot be stopped inside a
        # decode, and every input of a request is one receipt, so an embedding that
        # has begun runs to its end (the 504 still comes at the deadline).
        self._check(threading.Event(), deadline)
        if not _REF.match(ask.model):
            raise ModelNotFound(f"no embedding model {ask.model!r} on this node")
        result = self.node.embed(ask.model, ask.body, private=ask.private, nonce=ask.nonce)
        self._store(result, bundle_id, ask.owner)
        return json.dumps(result.response, separators=(",", ":")).encode()

    async def embed(self, ask: EmbedAsk) -> tuple[bytes, str]:
        """The embeddings' JSON and their bundle id; errors raise :class:`ChatError`."""
        deadline, bundle_id = time.monotonic() + self.timeout, new_id()
        future = self.pool.submit(self._embed, ask, bundle_id, deadline)
        try:
            data: bytes = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            raise _timeout(self.timeout) from None
        except Exception as exc:
            raise chat_error(exc, "embedding") from exc
        return data, bundle_id

    # -- streams -----------------------------------------------------------------------
    async def stream(self, ask: Ask) -> tuple[AsyncIterator[bytes], str]:
        """Open the stream (errors before the first event raise :class:`ChatError`);
        return the SSE bytes as they come, and the bundle id."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        cancel, opened = threading.Event(), Future[None]()
        deadline, bundle_id = time.monotonic() + self.timeout, new_id()

        def emit(item: bytes | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                cancel.set()

        self.pool.submit(self._pump, ask, bundle_id, emit, opened, cancel, deadline)
        try:
            await asyncio.wait_for(asyncio.wrap_future(opened), self.timeout)
        except BaseException as exc:
            cancel.set()
            if isinstance(exc, TimeoutError):
                raise _timeout(self.timeout) from None
            if isinstance(exc, Exception):
                raise chat_error(exc, ask.task) from exc
            raise
        return _drain(queue, cancel), bundle_id

    def _pump(
        self,
        ask: Ask,
        bundle_id: str,
        emit: Callable[[bytes | None], None],
        opened: Future[None],
        cancel: threading.Event,
        deadline: float,
    ) -> None:
        """On a chat thread: open the answer, then hand its events to the loop."""
        if not opened.set_running_or_notify_cancel():
            return  # the caller gave up waiting
        try:
            self._check(cancel, deadline)
            source = self._open(ask, deadline)
        except BaseException as exc:
            opened.set_exception(exc)
            return
        opened.set_result(None)
        try:
            if isinstance(source, ChatResult):
                self._store(source, bundle_id, ask.owner)
                for event in relay_events(source, ask.include_usage):
                    emit(sse(event))
            else:
                with contextlib.closing(source):
                    for event in source:
                        if source.result is not None:  # the last event: the receipt is logged
                            self._store(source.result, bundle_id, ask.owner)
                        else:
                            self._check(cancel, deadline)
                        emit(sse(event))
            emit(_DONE)
        except _Stopped:
            pass
        except BaseException as exc:
            # Mid-stream failures are an error event, as OpenAI streams them; the
            # official client raises APIError on it.
            emit(sse(chat_error(exc, ask.task).body()))
        finally:
            emit(None)

    def close(self) -> None:
        """Stop streams in progress and wait for the chat threads."""
        self._closing.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _timeout(seconds: float) -> ChatError:
    return ChatError(504, f"the answer did not finish within {seconds:g} s",
                     kind="server_error", code="timeout")  # fmt: skip


async def _drain(
    queue: asyncio.Queue[bytes | None], cancel: threading.Event
) -> AsyncIterator[bytes]:
    """The queued SSE bytes, several events per write when they pile up; the worker
    is told to stop when this ends early (the client left)."""
    try:
        done = False
        while not done:
            item = await queue.get()
            chunk = bytearray()
            while True:
                if item is None:
                    done = True
                    break
                chunk += item
                if queue.empty():
                    break
                item = queue.get_nowait()
            if chunk:
                yield bytes(chunk)
    finally:
        cancel.set()
