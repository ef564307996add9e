"""What every fuzz target promises, and the guard each input runs under.

The property (issue 11, "Also"): fed hostile bytes, a parser either returns or
raises :class:`inferproof.errors.Error` (``InputError``, ``VerificationError``),
never any other exception; it never hangs and never allocates memory out of
proportion to the input. ``Verifier.check`` never raises at all.

A target is a function of one input that raises only when the property is
broken. :func:`parse` is how a target calls a parser: the library's refusal is a
normal outcome, anything else escapes and is a crash. :func:`bounded` adds the
memory bound (tracemalloc sees Python objects and numpy buffers alike, even
pages the OS has not committed yet); the engines in ``_run.py`` add the time bound.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from inferproof.errors import Error

from ._known import known

T = TypeVar("T")

# A fuzz input is at most 64 KiB; the largest buffer a parser may build from one is an
# archive expanding to MAX_INPUT_FILE_BYTES (256 MiB) plus one copy of its largest
# member. Anything above this peak is an allocation driven by a declared size.
MEMORY_CAP = 512 * 1024 * 1024
MAX_LEN = 64 * 1024


@dataclass(frozen=True)
class Target:
    """One fuzz target: its check, the real inputs it starts from, its dictionary.

    ``accepts`` says whether the library takes an input as valid all the way
    through; every seed must be accepted, or the fuzzer would start from inputs
    refused at the first step and never reach the code behind it.
    """

    name: str
    run: Callable[[bytes], None]
    seeds: tuple[bytes, ...]
    tokens: tuple[bytes, ...] = ()
    accepts: Callable[[bytes], bool] | None = None
    max_len: int = MAX_LEN


class PropertyBroken(AssertionError):
    """The code under test returned, but broke a promise the target checks."""


class MemoryCapExceeded(PropertyBroken):
    """One input made the code allocate more than :data:`MEMORY_CAP`."""


def parse(fn: Callable[..., T], *args: Any) -> T | None:
    """``fn(*args)``, or None when the library refuses the input with its own Error."""
    try:
        return fn(*args)
    except Error:
        return None


def must(condition: bool, what: str) -> None:
    """Raise :class:`PropertyBroken` naming ``what`` unless ``condition`` holds."""
    if not condition:
        raise PropertyBroken(what)


def bounded(
    run: Callable[[bytes], None], cap: int = MEMORY_CAP, *, skip_known: bool = True
) -> Callable[[bytes], None]:
    """``run`` with the memory bound: its peak allocation per input is at most ``cap``.

    With ``skip_known``, a crash already reported to its owner (``_known.py``) is not
    one again, so a fuzz run goes on past it.
    """

    def one(data: bytes) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        try:
            run(data)
        except Exception as exc:
            if skip_known and known(exc) is not None:
                return
            raise
        peak = tracemalloc.get_traced_memory()[1] - before
        if peak > cap:
            raise MemoryCapExceeded(f"{peak} bytes allocated for a {len(data)}-byte input")

    return one


# Tokens that help a byte-level mutator through JSON and into our fields: literals,
# numbers at the edges of the types we parse, and escapes for lone surrogates and NUL.
JSON_TOKENS = (
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b'"',
    b"true",
    b"false",
    b"null",
    b"-1",
    b"0",
    b"1.5",
    b"1e400",
    b"-0.0",
    b"4294967296",
    b"9007199254740993",
    b"18446744073709551616",
    b"\\ud800",
    b"\\u0000",
    b"\\n",
)


def dictionary_line(token: bytes) -> str:
    """One libFuzzer dictionary entry: a quoted string with \\xNN escapes."""
    body = "".join(
        chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\x{b:02x}" for b in token
    )
    return f'"{body}"'
