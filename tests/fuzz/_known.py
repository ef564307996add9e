"""Crashes the fuzzers found in code another owner is fixing (issue 11).

Each is kept as a vector under ``vectors/<target>/`` and replayed by
``test_vectors.py`` as a strict xfail, so the fix shows up as an XPASS that
fails the run until its entry here is removed. Meanwhile the fuzz run treats an
exception matching an entry as already reported, so the bounded CI run keeps
fuzzing everything behind it instead of stopping at the same crash every time.

An entry matches an exception (or one it was raised from) of its type whose
traceback passes through ``function`` in ``file`` (a path under src/inferproof).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass


@dataclass(frozen=True)
class Known:
    vector: str
    error: type[BaseException]
    file: str
    function: str
    reason: str

    def matches(self, exc: BaseException) -> bool:
        for link in _chain(exc):
            if isinstance(link, self.error) and self._raised_through(link):
                return True
        return False

    def _raised_through(self, exc: BaseException) -> bool:
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"inferproof/{self.file}"
        return any(f.filename.endswith(where) and f.name == self.function for f in frames)


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in out:
        out.append(link)
        link = link.__cause__ or link.__context__
    return out


KNOWN: tuple[Known, ...] = ()


def known(exc: BaseException) -> Known | None:
    """The entry ``exc`` matches, if any."""
    return next((k for k in KNOWN if k.matches(exc)), None)


def reason_for(vector: str) -> str | None:
    """The xfail reason of a vector (``<target>/<file name>``) that is a known crash."""
    return next((k.reason for k in KNOWN if k.vector == vector), None)
