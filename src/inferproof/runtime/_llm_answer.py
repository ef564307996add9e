"""An answer's text as its tokens arrive: the stop rules the node generates under
and a verifier replays (end-of-generation token, stop strings, ``max_tokens``)."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any

from ._llm_request import ChatRequest


class Answer:
    """The text of an answer as tokens arrive: stop token, stop strings, max_tokens,
    and the part that is safe to emit (text that might begin a stop string waits)."""

    def __init__(self, vocab: Any, piece: Callable[[int], bytes], request: ChatRequest) -> None:
        self._vocab, self._piece, self._stop = vocab, piece, request.stop
        self._max = int(request.max_tokens or 0)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.tokens: list[int] = []
        self.text, self.finish, self._emitted, self._cut = "", "length", 0, False

    def push(self, token: int) -> bool:
        """Take one sampled token; True when the answer is complete."""
        import llama_cpp

        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            self.finish = "stop"
            return True
        self.tokens.append(token)
        self.text += self._decoder.decode(self._piece(token))
        cut = _find_stop(self.text, self._stop, self._emitted)
        if cut is not None:
            self.text, self.finish, self._cut = self.text[:cut], "stop", True
            return True
        return len(self.tokens) >= self._max

    def ready(self) -> str:
        """Text that can be emitted now (and is counted as emitted)."""
        safe = len(self.text) - _holdback(self.text, self._stop)
        if safe <= self._emitted:
            return ""
        delta, self._emitted = self.text[self._emitted : safe], safe
        return delta

    def rest(self) -> str:
        """The end of the answer, once it is complete."""
        if not self._cut:
            self.text += self._decoder.decode(b"", final=True)
        delta, self._emitted = self.text[self._emitted :], len(self.text)
        return delta


def _find_stop(text: str, stops: tuple[str, ...], emitted: int) -> int | None:
    """Index of the earliest stop string in the text not yet emitted, if any."""
    hits = [i for s in stops if (i := text.find(s, max(0, emitted - len(s) + 1))) >= 0]
    return min(hits) if hits else None


def _holdback(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that is a proper prefix of a stop string."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if s.startswith(text[-n:]):
                best = n
                break
    return best


__all__ = ["Answer"]
