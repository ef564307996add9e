"""Streamed chat answers: iterators whose end is the verification.

A stream yields the text deltas (or OpenAI's chunk objects) as the node sends them.
The receipt arrives with the last chunk, so the answer is verified at the end:

- by default (``verified_stream=False``) items are yielded as they arrive and are
  **unverified until the stream ends**. If the receipt fails, the iteration raises
  :class:`~inferproof.errors.VerificationError` naming the check, after the text was
  shown: only a stream that ran to its end without raising is verified, and only
  then is :attr:`ChatStream.answer` set (``verified`` is True);
- with ``verified_stream=True`` nothing is yielded until the receipt verified: the
  items then come all at once, and a failed check raises before the first.

Any exception from the iteration (a failed check, a broken connection, an error event,
a stream cut before its receipt) means the text yielded so far is not verified.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Generic, TypeVar

from ..errors import InputError
from ._chatflows import ChatAnswer

__all__ = ["AsyncChatStream", "ChatStream"]

I = TypeVar("I")  # noqa: E741 - the item type: str (deltas) or dict (chunks)
# The end of a stream: the verified answer, and the items held back until it verified.
Ending = tuple[ChatAnswer, list[Any]]
# Opens the items, given the callback that receives the ending.
Opener = Callable[[Callable[[Ending], None]], Generator[I, None, None]]
AsyncOpener = Callable[[Callable[[Ending], None]], AsyncGenerator[I, None]]
_NOT_YET = (
    "the stream has not ended verified: iterate it to its end (a failed check raises "
    "VerificationError there)"
)


class _Ending:
    """The verified answer, once the stream has ended without a failure, and the items
    held back until then (``verified_stream=True``), handed out after it is set."""

    def __init__(self) -> None:
        self._answer: ChatAnswer | None = None
        self._held: deque[Any] = deque()

    def _finish(self, ending: Ending) -> None:
        self._answer, held = ending
        self._held.extend(held)

    @property
    def verified(self) -> bool:
        """True once the stream ended and its receipt verified."""
        return self._answer is not None and self._answer.report is not None

    @property
    def answer(self) -> ChatAnswer:
        """The verified answer (raises InputError before the stream ended verified)."""
        if self._answer is None:
            raise InputError(_NOT_YET)
        return self._answer


class ChatStream(_Ending, Generic[I]):
    """A streamed answer from :meth:`Client.chat_stream` (see the module docs).

    Example::

        with client.chat_stream("tiny", "Hi", max_tokens=32) as stream:
            for delta in stream:
                print(delta, end="", flush=True)   # unverified until the loop ends
        print(stream.answer.receipt_digest)        # verified here
    """

    def __init__(self, open_items: Opener[I]) -> None:
        super().__init__()
        self._items = open_items(self._finish)

    def __iter__(self) -> ChatStream[I]:
        return self

    def __next__(self) -> I:
        try:
            return next(self._items)
        except StopIteration:
            if self._held:
                item: I = self._held.popleft()
                return item
            raise

    def close(self) -> None:
        """Stop reading (the node stops generating; nothing is verified)."""
        self._items.close()

    def __enter__(self) -> ChatStream[I]:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncChatStream(_Ending, Generic[I]):
    """The asyncio twin of :class:`ChatStream`, from :meth:`AsyncClient.chat_stream`.

    Example::

        async with client.chat_stream("tiny", "Hi") as stream:
            async for delta in stream:
                print(delta, end="")
        print(stream.answer.report.verified)
    """

    def __init__(self, open_items: AsyncOpener[I]) -> None:
        super().__init__()
        self._items = open_items(self._finish)

    def __aiter__(self) -> AsyncChatStream[I]:
        return self

    async def __anext__(self) -> I:
        try:
            return await anext(self._items)
        except StopAsyncIteration:
            if self._held:
                item: I = self._held.popleft()
                return item
            raise

    async def aclose(self) -> None:
        await self._items.aclose()

    async def __aenter__(self) -> AsyncChatStream[I]:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
