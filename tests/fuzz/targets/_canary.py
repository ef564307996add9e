"""Planted bugs, to show the engines catch and record them: a crash on any input with
a ``!`` in it, and a hang (30 s) on any input with a ``?``."""

from __future__ import annotations

import time

from .._harness import Target
from .._material import Material


def crash(m: Material) -> Target:
    def run(data: bytes) -> None:
        if b"!" in data:
            raise KeyError("planted crash")

    return Target("_crash", run, (b"fuzz",), (b"!",))


def hang(m: Material) -> Target:
    def run(data: bytes) -> None:
        if b"?" in data:
            time.sleep(30)

    return Target("_hang", run, (b"fuzz",), (b"?",))
