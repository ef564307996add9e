"""Streamed answers in the sans-IO pattern: the steps a streaming flow yields, and an
incremental parser of server-sent events.

A streaming flow yields three kinds of step, and the drivers (``Client._drive``,
``AsyncClient._drive``) answer each:

- a :class:`~._core.Req` (``stream=True`` or not): the driver sends the request and
  sends back the response; for a streamed one, before its body is read;
- :data:`PULL`: the driver sends back the next piece of the streamed body, ``b""``
  once it has ended;
- :class:`Emit`: the driver hands ``item`` to whoever iterates the stream.

No step does I/O by itself, so the flows that parse, check and verify a stream are
written once for both clients.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import InputError
from ._core import MAX_RESPONSE_BYTES, Req

__all__ = ["PULL", "Emit", "Pull", "SseParser", "Step", "StreamFlow", "pull"]

T = TypeVar("T")


@dataclass(frozen=True)
class Pull:
    """Ask the driver for the next piece of the streamed body (``b""`` at its end)."""


@dataclass(frozen=True)
class Emit:
    """Hand ``item`` to the caller iterating the stream; the driver sends back None."""

    item: Any


PULL = Pull()
Step = Req | Pull | Emit
# A flow that may also pull a streamed body and emit items on the way to its result.
StreamFlow = Generator[Step, Any, T]


def pull() -> StreamFlow[bytes]:
    """The next piece of the streamed body, ``b""`` once it has ended."""
    data = yield PULL
    if not isinstance(data, bytes):
        raise AssertionError("the driver answered a pull with something else than bytes")
    return data


class SseParser:
    """The ``data`` of each server-sent event, as the bytes arrive (WHATWG HTML,
    "Interpreting an event stream": ``data:`` lines joined by newlines, one event per
    blank line, ``:`` comments and other fields ignored). Lines end with LF or CRLF
    (a lone CR, which no OpenAI-compatible server sends, is not a line end here).

    The whole stream is capped at ``limit`` bytes (``per_event``: each event, for a
    stream without end): a node cannot make the client buffer without bound.

    Example::

        parser = SseParser()
        assert parser.feed(b'data: {"a": 1}\\n\\ndata: [DO') == ['{"a": 1}']
        assert parser.feed(b"NE]\\n\\n") == ["[DONE]"]
    """

    def __init__(self, limit: int = MAX_RESPONSE_BYTES, *, per_event: bool = False) -> None:
        self._limit, self._per_event = limit, per_event
        self._seen = 0
        self._partial = b""
        self._data: list[str] = []

    def feed(self, data: bytes) -> list[str]:
        """The data of every event ``data`` completes, in order."""
        self._seen += len(data)
        if self._seen > self._limit:
            raise InputError(f"the node's stream is over the cap of {self._limit} bytes")
        *lines, self._partial = (self._partial + data).split(b"\n")
        events = []
        for raw in lines:
            line = self._text(raw.removesuffix(b"\r"))
            if not line:
                if self._data:
                    events.append("\n".join(self._data))
                self._data = []
                continue
            name, _, value = line.partition(":")
            if name == "data":
                self._data.append(value.removeprefix(" "))
        if self._per_event and events:  # what counts is the event being received
            self._seen = len(self._partial) + sum(len(d) for d in self._data)
        return events

    @staticmethod
    def _text(raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError("the node's stream is not UTF-8") from exc
