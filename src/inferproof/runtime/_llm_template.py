"""GGUF chat templates, rendered within bounds of steps, time and size.

A GGUF model carries its chat template (``tokenizer.chat_template``, Jinja) and
whoever pushes the model writes it. The node renders it for every chat request
and every verifier renders it again to re-execute a receipt, so a template is
hostile input. Jinja's sandbox (:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`)
keeps it away from Python's internals, but not from running for hours
(``{% for a in range(100000) %}{% for b in range(100000) %}``), building
gigabytes (``'x' * 10**9``, ``{% set x = x ~ x %}`` in a loop, ``[x, x]`` nested
forty deep and printed) or crashing the process (CPython hashes nested tuples
recursively on the C stack: ``{x: 1}`` for an ``x`` that a loop nested a few
hundred thousand deep is a segmentation fault). Rendering here renders exactly
what llama-cpp-python's ``Jinja2ChatFormatter`` renders (the same sandbox,
options, extensions, ``tojson`` and variables, so prompts and receipts do not
change), and adds:

1. Steps and time: a trace function on the rendering thread counts the Python
   events of the render and raises past :data:`MAX_RENDER_STEPS` (the same count
   on a node and on a verifier) or :data:`MAX_RENDER_SECONDS` (a backstop), and
   past :data:`MAX_RENDER_DEPTH` frames (a recursive macro), before Python's own
   recursion limit or the thread's C stack is reached.
2. Sizes: every value the template creates by an operation that can grow data
   (``+ * ** %``, ``~``, literals, slices, calls, filters, captured output) is
   measured: one value over :data:`MAX_VALUE_SIZE`, nested over :data:`MAX_NESTING`,
   an integer over :data:`MAX_INT_BITS`, or more than :data:`MAX_CREATED_SIZE`
   created in all is refused. Operations that multiply their input (``'x' * n``,
   ``center``, ``replace``, ``join``, ``%`` and ``format`` widths,
   ``tojson(indent=)``...) are estimated *before* they run: one C call cannot be
   interrupted.
3. Output: the prompt is generated piece by piece and refused past
   :data:`MAX_RENDER_CHARS`.
4. Compilation: a file's chat templates together are capped at
   :data:`MAX_TEMPLATE_CHARS`, and are compiled only here, within the bounds.
   llama-cpp-python compiles every ``tokenizer.chat_template*`` key of a file when
   it loads it, in a plain sandbox whose optimiser folds constant expressions at
   compile time (``{{ 'x' * 10**9 }}`` builds its gigabyte while the model loads):
   :func:`llama_cpp_compiles_no_templates` turns that off while our models load.

Every refusal is an :class:`~inferproof.errors.InputError` naming the limit.
"""

from __future__ import annotations

import inspect
import re
import string
import sys
import threading
import time
from collections.abc import (
    Callable,
    ItemsView,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    ValuesView,
)
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from itertools import chain
from types import FrameType
from typing import Any, TypeVar, cast

import jinja2.environment
import jinja2.filters
import jinja2.runtime
import jinja2.sandbox
import jinja2.tests
import llama_cpp.llama_chat_format as llama_chat_format
from jinja2 import BaseLoader, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.ext import loopcontrols
from jinja2.filters import make_attrgetter
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, generate_lorem_ipsum
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from markupsafe import Markup

from ..errors import InputError
from ._llm_request import MAX_TEXT_CHARS

# -- limits ----------------------------------------------------------------------------
# A file's chat templates together. Real ones are a few KiB (ChatML 0.2 KiB, Llama
# 3.2's 3.8 KiB). Jinja compiles dense template code at about 6 us a character here
# (64 KiB of nested ifs: 0.4 s), and the last step, Python's compile() of the code
# Jinja generates, is one C call that no step bound interrupts: 128 KiB keeps a
# compilation near a second.
MAX_TEMPLATE_CHARS = 128 * 1024
# The rendered prompt. A request carries at most MAX_TEXT_CHARS (1 Mi) characters in
# at most MAX_MESSAGES (1024) messages (runtime/_llm_request.py); the template adds its
# markers and default system text around them: 3 Mi more is 3 KiB for each message at
# the message cap. (The tokenised prompt must also fit the context, checked after.)
MAX_RENDER_CHARS = 4 * MAX_TEXT_CHARS
# One value. No intermediate string or structure of a legitimate render is larger than
# the prompt it becomes part of. A size is the characters of the strings in a value,
# plus 8 for each item of a list, tuple, set or mapping (a pointer in memory, and more
# than the ", " it prints with); shared items count each time they appear, as printed.
MAX_VALUE_SIZE = MAX_RENDER_CHARS
# Everything one render creates, counted as it is created: the memory it allocates
# (a new string's characters, a new container's 8 per item, not its items again,
# which exist already). A message's text goes through a few steps (trim, a chain of
# "+") on its way out: SmolLM2's and Llama 3.2's templates create 3.0 times their
# output (1024 messages, 1 Mi characters, measured). Eight times the output cap
# leaves room for templates that copy more.
MAX_CREATED_SIZE = 8 * MAX_RENDER_CHARS
# Nesting of the values a template builds. Real templates nest what they are given
# (tool schemas: a few levels). CPython hashes a tuple by recursing into its items on
# the C stack without a depth check: a tuple nested 200 000 deep crashed a thread (8 MiB
# stack) here. 64 is far from both.
MAX_NESTING = 64
# Integers: templates count messages and index loops. 4096 bits print in fewer than
# the 4300 digits CPython 3.11 converts (sys.int_info.default_max_str_digits), and
# multiplying two such integers is instantaneous.
MAX_INT_BITS = 4096
# Python trace events (calls, lines, returns) of one render or compilation. SmolLM2's
# and Llama 3.2's templates take about 30 events a message: 35 000 at the 1024-message
# cap (measured). Five million is 150 times that: 0.6 s of the tightest template loop
# here, 2.5 s of macro calls. A node and a verifier count the same events, so whether
# a template is within the bound does not depend on the machine.
MAX_RENDER_STEPS = 5_000_000
# Wall-clock backstop, for work between two events (a line may run a long C call)
# and for machines slower than this one. The 1024-message renders above take 20 ms.
MAX_RENDER_SECONDS = 5.0
# Python frames a render may stack above its caller. The templates here reach 43 to 54
# (ChatML, SmolLM2's default-system form, the many-features template; measured with a
# frame-counting tracer); a recursive macro adds about 6 a level. Without a bound a
# runaway macro recursion ends in RecursionError near sys.getrecursionlimit(), or, with
# the trace function's own frames on a thread's C stack, in a crash of the process
# (seen here: a segmentation fault under a long time bound). 250 stops it at a depth
# that is the same on every machine, far below both.
MAX_RENDER_DEPTH = 250
# CPython's time.strftime grows its buffer up to 256 times the format's length
# (Modules/timemodule.c, time_strftime): cap the format so the date stays a value.
MAX_STRFTIME_CHARS = MAX_VALUE_SIZE // 256
# How much of an error (raise_exception's message) a refusal quotes.
_MAX_QUOTE = 200
# How often the trace function checks the bounds, in events (a power of two minus 1):
# often enough that a line of heavy C work (a few ms) overshoots the deadline little.
_CHECK_MASK = 255
# A container item's share of a size; the growth of HTML escaping (' is &#39;) and of
# Unicode case mapping ("\ufb03".upper() is "FFI").
_ITEM = 8
_ESCAPE, _CASE = 6, 3


@dataclass(frozen=True)
class RenderLimits:
    """The bounds a template is compiled and rendered within (the module's constants
    unless told otherwise)."""

    max_steps: int = MAX_RENDER_STEPS
    max_seconds: float = MAX_RENDER_SECONDS
    max_depth: int = MAX_RENDER_DEPTH
    max_output: int = MAX_RENDER_CHARS
    max_value: int = MAX_VALUE_SIZE
    max_created: int = MAX_CREATED_SIZE
    max_nesting: int = MAX_NESTING
    max_int_bits: int = MAX_INT_BITS


class _LimitExceeded(BaseException):
    """A bound was hit. A BaseException, so that no ``except Exception`` in Jinja
    (constant folding, attribute lookup) or the standard library swallows it."""


class _Budget:
    """What one render (or compilation) has created so far."""

    __slots__ = ("created", "limits")

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.created = 0

    def add(self, size: int) -> None:
        self.created += size
        if self.created > self.limits.max_created:
            _exceed_created(self.limits)


_BUDGET: ContextVar[_Budget | None] = ContextVar("inferproof_template_budget", default=None)
# Frames whose lines are not traced (their calls are, as one event each): this
# module's checks, each bounded by the sizes; Jinja's runtime helpers (getattr,
# getitem, call, loop bookkeeping), whose loops run over the template's own source
# or arguments; Jinja's filters and tests, whose loops call a Python function or
# yield for each item (an event each) or run over a value already bounded in size.
# The template's own code and everything else (markupsafe's striptags, textwrap,
# urlize, lipsum...) are traced line by line.
_QUIET_FILES = frozenset(
    {
        __file__,
        jinja2.environment.__file__,
        jinja2.filters.__file__,
        jinja2.runtime.__file__,
        jinja2.sandbox.__file__,
        jinja2.tests.__file__,
    }
)
_T = TypeVar("_T")


def _exceed(what: str) -> None:
    raise _LimitExceeded(what)


def _exceed_created(limits: RenderLimits) -> None:
    _exceed(f"it creates more than {limits.max_created} characters in all (MAX_CREATED_SIZE)")


def _limits() -> RenderLimits:
    budget = _BUDGET.get()
    return budget.limits if budget is not None else RenderLimits()


# -- sizes -----------------------------------------------------------------------------
def _items(obj: Any) -> tuple[int, Iterator[Any]] | None:
    """How many items a value prints and an iterator over them (a mapping's keys and
    values alternate), or None for a value that prints none (scalars, opaque objects)."""
    kind = type(obj)
    if kind is list or kind is tuple:
        return len(obj), iter(obj)
    if kind is dict:
        return 2 * len(obj), chain.from_iterable(obj.items())
    if isinstance(obj, (str, bytes, bytearray, int, float)) or obj is None:
        return None
    if isinstance(obj, (list, tuple, set, frozenset, KeysView, ValuesView)):
        return len(obj), iter(obj)
    if isinstance(obj, Mapping):
        return 2 * len(obj), chain.from_iterable(obj.items())
    if isinstance(obj, ItemsView):
        return 2 * len(obj), chain.from_iterable(obj)
    if isinstance(obj, Namespace):
        # A namespace prints its attributes, which Jinja keeps in a private dict.
        attrs = object.__getattribute__(obj, "_Namespace__attrs")
        return 2 * len(attrs), chain.from_iterable(attrs.items())
    return None


def _scalar_size(obj: Any) -> int:
    if isinstance(obj, (str, bytes, bytearray)):
        return len(obj)
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj.bit_length() * 3 // 10 + 1  # decimal digits: log10(2) is 0.301
    return 5 if obj is None or isinstance(obj, bool) else 24  # a float prints <= 24


def size_of(value: Any, limit: int = MAX_VALUE_SIZE, nesting: int = MAX_NESTING) -> int:
    """A value's size (see :data:`MAX_VALUE_SIZE`), counted up to just past ``limit``.
    Raises (a bound hit) for a value nested deeper than ``nesting``."""
    if type(value) is str:
        return len(value)
    total = 0
    stack: list[Iterator[Any]] = [iter((value,))]
    while stack:
        obj = next(stack[-1], stack)  # the stack itself marks an exhausted level
        if obj is stack:
            stack.pop()
            continue
        kind = type(obj)
        if kind is str:  # most items: no call (under the tracer, each call is an event)
            total += len(obj)
            continue
        if kind is int:
            total += cast(int, obj).bit_length() * 3 // 10 + 1
            continue
        if kind is float:
            total += 24
            continue
        items = _items(obj)
        if items is None:
            total += _scalar_size(obj)
        else:
            if len(stack) > nesting:
                _exceed(f"it builds values nested more than {nesting} deep (MAX_NESTING)")
            total += 2 + _ITEM * items[0]
            stack.append(items[1])
        if total > limit:
            break
    return total


def _json_shape(value: Any, nesting: int) -> tuple[int, int]:
    """(items, depth) of a value whose size is already bounded, for what indenting
    its JSON adds (a newline and the indent, times the depth, for each item)."""
    items, depth = 0, 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        obj, level = stack.pop()
        children = _items(obj)
        if children is not None and level < nesting:
            items += children[0]
            depth = max(depth, level + 1)
            stack.extend((child, level + 1) for child in children[1])
    return items, depth


def _checked(value: _T) -> _T:
    """Hold a created value to the size bounds and count what it allocated (see
    :data:`MAX_CREATED_SIZE`); return it unchanged."""
    budget = _BUDGET.get() or _Budget(RenderLimits())
    limits = budget.limits
    if isinstance(value, str):  # the common case, without a call (each call is an event)
        size = created = len(value)
    else:
        size = size_of(value, limits.max_value, limits.max_nesting)
        items = _items(value)
        created = _scalar_size(value) if items is None else 2 + _ITEM * items[0]
    if size > limits.max_value:
        _exceed(f"it builds a value of more than {limits.max_value} characters (MAX_VALUE_SIZE)")
    budget.created += created
    if budget.created > limits.max_created:
        _exceed_created(limits)
    return value


def _expect(estimate: int) -> None:
    """Refuse an operation whose result would be over the value bound, before it runs."""
    limit = _limits().max_value
    if estimate > limit:
        _exceed(
            f"it would build a value of about {estimate} characters, over {limit} (MAX_VALUE_SIZE)"
        )


def _check_bits(bits: int) -> None:
    limit = _limits().max_int_bits
    if bits > limit:
        _exceed(f"it builds an integer of more than {limit} bits (MAX_INT_BITS)")


def _sizes(values: Sequence[Any] | Mapping[str, Any]) -> int:
    items = values.values() if isinstance(values, Mapping) else values
    limit = _limits().max_value
    return sum(size_of(v, limit) for v in items)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_int(value: Any, default: int = 0) -> int:
    return value if _is_int(value) else default


# -- operators -------------------------------------------------------------------------
def _repeat(left: Any, right: Any) -> None:
    """``*``: integers by their bits, a repeated sequence by its size times the count."""
    if _is_int(left) and _is_int(right):
        _check_bits(left.bit_length() + right.bit_length())
    elif _is_int(left) or _is_int(right):
        count, seq = (left, right) if _is_int(left) else (right, left)
        if isinstance(seq, (str, bytes, list, tuple)):
            _expect(size_of(seq) * max(count, 0))


def _power(left: Any, right: Any) -> None:
    """``**`` on integers: the result has about bits(base) times the exponent bits."""
    if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        limit = _limits().max_int_bits
        _check_bits(limit + 1 if right > limit else left.bit_length() * right)


# printf-style conversion specifiers (Python docs, "printf-style String Formatting").
_PERCENT = re.compile(r"%(\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.?)")


def _percent_size(fmt: str | bytes, args: Any) -> int:
    """An upper bound on the length of ``fmt % args``: the format, and for each
    conversion its width and precision plus the size of the value it takes."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    positional = args if isinstance(args, tuple) else (args,)
    total, index = len(text), 0
    for match in _PERCENT.finditer(text):
        key, width, precision, kind = match.groups()
        if kind == "%":
            continue
        if "*" in (width, precision):
            _exceed("it takes a %-format width from its arguments ('*', refused: MAX_VALUE_SIZE)")
        if key is not None:
            value = args.get(key[1:-1]) if isinstance(args, Mapping) else None
        else:
            value = positional[index] if index < len(positional) else None
            index += 1
        total += int(width or 0) + int(precision or 0) + size_of(value) + 32
    return total * (_ESCAPE if isinstance(fmt, Markup) else 1)


def _modulo(left: Any, right: Any) -> None:
    if isinstance(left, (str, bytes)):
        _expect(_percent_size(left, right))


def _add(left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right):
        _check_bits(max(left.bit_length(), right.bit_length()) + 1)
    else:
        _expect(size_of(left) + size_of(right))


_BINOP_CHECKS: dict[str, Callable[[Any, Any], None]] = {
    "*": _repeat,
    "**": _power,
    "%": _modulo,
    "+": _add,
}


# -- str.format, strftime, raise_exception ---------------------------------------------
_DIGITS = re.compile(r"\d+")
_FIELD_HEAD = re.compile(r"[.\[]")


def _format_size(fmt: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    """An upper bound on ``fmt.format(*args, **kwargs)``: the literal text, and for
    each field its widths plus the size of the argument it names."""
    total, auto = 0, 0
    for literal, field, spec, _ in string.Formatter().parse(fmt):
        total += len(literal)
        if field is None:
            continue
        if spec and "{" in spec:
            _exceed("it nests a field in a format spec (refused: MAX_VALUE_SIZE)")
        head = _FIELD_HEAD.split(field, maxsplit=1)[0]
        if head == "":
            head, auto = str(auto), auto + 1
        value = args[int(head)] if head.isdigit() and int(head) < len(args) else kwargs.get(head)
        widths = sum(int(d) for d in _DIGITS.findall(spec or ""))
        total += widths + size_of(value) + 32
    return total * (_ESCAPE if isinstance(fmt, Markup) else 1)


def _strftime(at: datetime | None) -> Callable[[str], str]:
    """``strftime_now`` for a template: the request's recorded time (or now, as
    llama-cpp-python does, when none was recorded), with its format capped."""

    def strftime_now(fmt: str) -> str:
        if isinstance(fmt, str) and len(fmt) > MAX_STRFTIME_CHARS:
            _exceed(f"its date format is over {MAX_STRFTIME_CHARS} characters (MAX_STRFTIME_CHARS)")
        return (at or datetime.now()).strftime(fmt)

    return strftime_now


def _raise_exception(message: Any) -> None:
    """The template's own refusal, as llama-cpp-python gives it to templates."""
    raise ValueError(message)


# -- calls -----------------------------------------------------------------------------
def _arg(
    args: Sequence[Any], kwargs: Mapping[str, Any], index: int, name: str, default: Any
) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _replace_size(s: Any, old: Any, new: Any, count: int) -> int:
    """An upper bound on ``s.replace(old, new, count)`` (a negative count: all)."""
    same = all(isinstance(x, str) for x in (s, old, new)) or all(
        isinstance(x, bytes) for x in (s, old, new)
    )
    if not same:
        return size_of(s)  # the replace itself refuses mixed types
    hits = s.count(old) if old else len(s) + 1
    if count >= 0:
        hits = min(hits, count)
    return len(s) + hits * max(len(new) - len(old), 0)


def _method_size(
    owner: str | bytes, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> int:
    """An upper bound on the result of the string method ``owner.<name>(...)``."""
    n = len(owner)
    if name in ("center", "ljust", "rjust", "zfill"):
        return max(n, _as_int(_arg(args, kwargs, 0, "width", 0)))
    if name == "expandtabs":
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        return n + tabs * max(_as_int(_arg(args, kwargs, 0, "tabsize", 8), 8), 0)
    if name == "replace" and len(args) >= 2:
        count = _as_int(_arg(args, kwargs, 2, "count", -1), -1)
        return _replace_size(owner, args[0], args[1], count)
    if name == "translate" and args and isinstance(args[0], Mapping):
        return n * max((size_of(v) for v in args[0].values()), default=1)
    if name in ("upper", "lower", "title", "capitalize", "swapcase", "casefold"):
        return n * _CASE
    if name in ("encode", "hex"):
        return n * 4
    return n


def _check_call(obj: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """Estimate the calls whose result can outgrow their arguments."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, (str, bytes)):
        _expect(_method_size(owner, name, args, kwargs))
    elif _is_int(owner) and name == "to_bytes":
        _expect(_as_int(_arg(args, kwargs, 0, "length", 1), 1))
    elif obj is generate_lorem_ipsum:
        paragraphs = _as_int(_arg(args, kwargs, 0, "n", 5), 5)
        words = _as_int(_arg(args, kwargs, 3, "max", 100), 100)
        _expect(max(paragraphs, 0) * max(words, 0) * 16)  # a word and its separators


def _join_items(sep: Any, iterable: Any) -> list[Any]:
    """Materialise what a join joins, checking the joined size first."""
    items = list(iterable)
    _expect(sum(size_of(i) for i in items) + size_of(sep) * max(len(items) - 1, 0))
    return items


# -- filters ---------------------------------------------------------------------------
_Bound = dict[str, Any]  # a filter's arguments by name, defaults filled in


def _filter_center(a: _Bound) -> int:
    return max(size_of(a["value"]), _as_int(a["width"]))


def _filter_indent(a: _Bound) -> int:
    s, width = a["s"], a["width"]
    per_line = len(width) if isinstance(width, str) else max(_as_int(width), 0)
    lines = s.count("\n") + 1 if isinstance(s, str) else size_of(s)
    return size_of(s) + lines * per_line


def _filter_replace(a: _Bound) -> int:
    return _replace_size(a["s"], a["old"], a["new"], _as_int(a["count"], -1))


def _filter_format(a: _Bound) -> int:
    value = a["value"]
    return _percent_size(value, a["kwargs"] or a["args"]) if isinstance(value, str) else 0


def _filter_tojson(a: _Bound) -> int:
    value, indent, separators = a["x"], a["indent"], a["separators"]
    total = size_of(value) * (_ESCAPE if a["ensure_ascii"] else 1)  # \uXXXX
    if indent is not None or separators is not None:
        per = len(indent) if isinstance(indent, str) else max(_as_int(indent), 0)
        seps = sum(size_of(s) for s in separators) if isinstance(separators, tuple) else 0
        items, depth = _json_shape(value, _limits().max_nesting)
        total += items * (per * depth + 2 + seps)
    return total


def _filter_pprint(a: _Bound) -> int:
    value = a["value"]  # pprint indents each nested item by its depth
    items, depth = _json_shape(value, _limits().max_nesting)
    return size_of(value) + items * (depth + 2)


def _filter_wordwrap(a: _Bound) -> int:
    wrap = a["wrapstring"]
    return size_of(a["s"]) * (1 + (len(wrap) if isinstance(wrap, str) else 1))


def _filter_urlize(a: _Bound) -> int:
    value = a["value"]
    text = value if isinstance(value, str) else ""
    # A link needs a ".", "@" or ":"; each becomes <a href="...">...</a> and attributes.
    links = text.count(".") + text.count("@") + text.count(":") + 1
    extra = sum(len(a[k]) for k in ("target", "rel") if isinstance(a[k], str))
    return 3 * size_of(value) + links * (64 + extra)


def _filter_groups(name: str) -> Callable[[_Bound], int]:
    """batch and slice: each group is a new list, so their count is capped as a range."""

    def estimate(a: _Bound) -> int:
        if _as_int(a[name]) > MAX_RANGE:
            _exceed(f"it asks for more than {MAX_RANGE} groups (Jinja's MAX_RANGE)")
        return 0

    return estimate


def _filter_chars(a: _Bound) -> int:
    value = a["value"]  # a string made a list: one item for each character
    return len(value) * (_ITEM + 1) if isinstance(value, str) else 0


def _grows(factor: int, key: str) -> Callable[[_Bound], int]:
    def estimate(a: _Bound) -> int:
        return size_of(a[key]) * factor

    return estimate


_FILTER_ESTIMATES: dict[str, Callable[[_Bound], int]] = {
    "center": _filter_center,
    "indent": _filter_indent,
    "replace": _filter_replace,
    "format": _filter_format,
    "tojson": _filter_tojson,
    "pprint": _filter_pprint,
    "wordwrap": _filter_wordwrap,
    "urlize": _filter_urlize,
    "batch": _filter_groups("linecount"),
    "slice": _filter_groups("slices"),
    "list": _filter_chars,
    "sort": _filter_chars,
    "escape": _grows(_ESCAPE, "s"),
    "e": _grows(_ESCAPE, "s"),
    "forceescape": _grows(_ESCAPE, "value"),
    "xmlattr": _grows(_ESCAPE, "d"),
    "urlencode": _grows(3 * 4, "value"),  # %XX for each of up to 4 UTF-8 bytes
    "upper": _grows(_CASE, "s"),
    "lower": _grows(_CASE, "s"),
    "title": _grows(_CASE, "s"),
    "capitalize": _grows(_CASE, "s"),
}
# Filters whose result is a number, a lazy iterator, or no bigger than their input,
# after linear work, and which never print their input (str() of a list is all its
# items): their arguments (often all the messages, once per message) are not measured
# again, only their result. (trim, safe, striptags and wordcount print theirs.)
_NEUTRAL = frozenset(
    {
        "abs", "attr", "count", "d", "default", "dictsort", "filesizeformat", "first",
        "float", "groupby", "int", "items", "last", "length", "map", "max", "min",
        "random", "reject", "rejectattr", "reverse", "round", "select", "selectattr",
        "truncate", "unique",
    }
)  # fmt: skip


def _bind(sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Bound | None:
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        return None  # the filter itself refuses the arguments
    bound.apply_defaults()
    return dict(bound.arguments)


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with its arguments and result held to the bounds, and its result
    estimated first when it can outgrow its input."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
    # Jinja's async variants (list, join, sum...) report the signature of the sync
    # function they wrap, which may not take the context argument Jinja passes.
    inner = getattr(func, "__wrapped__", func)
    strip = skip if getattr(inner, "jinja_pass_arg", None) is None else 0
    estimate = _FILTER_ESTIMATES.get(name)
    sig = inspect.signature(func) if estimate is not None else None
    measure = name not in _NEUTRAL

    @wraps(func)  # keeps jinja_pass_arg, so Jinja passes the context as before
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if name == "sum":  # first: counting its copies is cheap, sizing the items is not
            _sum_copies(args, kwargs)
        if measure:
            _expect(_sizes(args[skip:]) + _sizes(kwargs))
        if estimate is not None and sig is not None:
            bound = _bind(sig, args[strip:], kwargs)
            if bound is not None:
                _expect(estimate(bound))
        if name == "join":
            args, kwargs = _join_args(args, kwargs)
        return _checked(func(*args, **kwargs))

    return bounded


def _join_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], _Bound]:
    """The join filter's arguments with its items materialised (their attribute taken,
    as the filter takes it) and the joined size checked."""
    eval_ctx, value, *rest = args
    sep = rest[0] if rest else kwargs.get("d", "")
    attribute = rest[1] if len(rest) > 1 else kwargs.get("attribute")
    if attribute is not None:
        value = map(make_attrgetter(eval_ctx.environment, attribute), value)
    return (eval_ctx, _join_items(sep, value), sep), {}


def _sum_copies(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """The sum filter over lists or tuples copies its running total once per item
    (inside one C call): count those copies as created before it runs."""
    start = args[3] if len(args) > 3 else kwargs.get("start", 0)
    iterable = args[1] if len(args) > 1 else None
    if isinstance(start, (list, tuple)) and isinstance(iterable, (list, tuple)):
        # The copies first: counting lengths is cheap, sizing every item is not (a
        # list of 30 000 references to one list took seconds to size item by item).
        length = len(start) + sum(len(i) for i in iterable if isinstance(i, (list, tuple)))
        (_BUDGET.get() or _Budget(RenderLimits())).add(_ITEM * length * len(iterable))


# -- the environment -------------------------------------------------------------------
class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with the values a template builds without calling
    anything (literals, slices, ``~``) passed through the environment's checks."""

    def _created(self, visit: Callable[[], None]) -> None:
        self.write("environment.created(")
        visit()
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._created(lambda: super(_BoundedCodeGenerator, self).visit_List(node, frame))

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._created(lambda: super(_BoundedCodeGenerator, self).visit_Dict(node, frame))

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # an assignment target: {% for a, b in ... %}
            super().visit_Tuple(node, frame)
        else:
            self._created(lambda: super(_BoundedCodeGenerator, self).visit_Tuple(node, frame))

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if isinstance(node.arg, nodes.Slice):  # a slice copies
            self._created(lambda: super(_BoundedCodeGenerator, self).visit_Getitem(node, frame))
        else:
            super().visit_Getitem(node, frame)

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # As Jinja decides between markup_join and str_join: at compile time unless
        # the autoescape setting is volatile. The parts are checked before the join.
        if frame.eval_ctx.volatile:
            mode = "None"
        else:
            mode = "True" if frame.eval_ctx.autoescape else "False"
        self.write(f"environment.join_parts(context, {mode}, (")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """llama-cpp-python's chat template environment, bounded (see the module docs)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset(_BINOP_CHECKS)

    def __init__(self) -> None:
        # As Jinja2ChatFormatter.__init__ builds its environment (llama-cpp-python
        # 0.3.36, llama_chat_format.py), so a template renders the same prompt here.
        super().__init__(
            loader=BaseLoader(),
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[Jinja2ChatFormatter.IgnoreGenerationTags, loopcontrols],
            finalize=_output_value,
        )
        self.filters["tojson"] = Jinja2ChatFormatter.tojson
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "+" and type(left) is str and type(right) is str:
            # The common case (markers + role + text), checked without calls.
            budget = _BUDGET.get()
            if budget is not None and len(left) + len(right) <= budget.limits.max_value:
                budget.created += len(left) + len(right)
                if budget.created <= budget.limits.max_created:
                    return left + right
        _BINOP_CHECKS[operator](left, right)
        return _checked(self.binop_table[operator](left, right))

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _expect(_sizes(args) + _sizes(kwargs))
        _check_call(obj, args, kwargs)
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, (str, bytes)) and getattr(obj, "__name__", "") == "join" and args:
            args = (_join_items(owner, args[0]), *args[1:])
        return _checked(super().call(context, obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        sandboxed = super().wrap_str_format(value)
        if sandboxed is None:
            return None
        fmt, is_map = value.__self__, value.__name__ == "format_map"

        @wraps(sandboxed)
        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_map:
                mapping = args[0] if args and isinstance(args[0], Mapping) else {}
                _expect(_format_size(fmt, (), mapping))
            else:
                _expect(_format_size(fmt, args, kwargs))
            return _checked(sandboxed(*args, **kwargs))

        return bounded

    def created(self, value: _T) -> _T:
        """A value the template built: a literal, a slice, a concatenation."""
        return _checked(value)

    def join_parts(self, context: Any, markup: bool | None, parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ ...``: Jinja's join, after checking the parts' total size."""
        _expect(_sizes(parts))
        if markup is None:
            markup = context.eval_ctx.autoescape
        return _checked(markup_join(parts) if markup else str_join(parts))

    def concat(self, parts: Any) -> str:
        """Join captured output ({% set %} blocks, macros, caller()) as Jinja does
        (``"".join``), checking the total first."""
        items = list(parts)
        _expect(sum(len(p) for p in items))
        return _checked("".join(items))


def _output_value(value: Any) -> Any:
    """Jinja's finalize hook: each ``{{ }}`` value, held to the value bound before it
    becomes text (a list printed is all its items)."""
    if type(value) is str:
        return value  # made by an operation that checked it, or by the caller
    limits = _limits()
    if size_of(value, limits.max_value, limits.max_nesting) > limits.max_value:
        _exceed(f"it prints a value of more than {limits.max_value} characters (MAX_VALUE_SIZE)")
    return value


# -- steps and time --------------------------------------------------------------------
def _tracer(limits: RenderLimits, base: FrameType | None) -> Callable[[FrameType, str, Any], Any]:
    """A trace function that counts events and raises past the step, time or depth
    bound. Frames of :data:`_QUIET_FILES` count as one event each, and the depth is
    measured where a traced frame (the template's code, a macro) is entered: every
    recursion of a template passes through one."""
    deadline = time.monotonic() + limits.max_seconds
    steps = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal steps
        steps += 1
        if not steps & _CHECK_MASK:
            if steps > limits.max_steps:
                _exceed(f"it runs more than {limits.max_steps} steps (MAX_RENDER_STEPS)")
            if time.monotonic() > deadline:
                _exceed(f"it runs longer than {limits.max_seconds:g} s (MAX_RENDER_SECONDS)")
        if event == "call":
            if frame.f_code.co_filename in _QUIET_FILES:
                return None
            if _deeper_than(frame, base, limits.max_depth):
                _exceed(f"it nests calls more than {limits.max_depth} deep (MAX_RENDER_DEPTH)")
        return trace

    return trace


def _deeper_than(frame: FrameType, base: FrameType | None, bound: int) -> bool:
    """Whether more than ``bound`` frames lie between ``frame`` and ``base`` (walks at
    most ``bound + 1`` frames)."""
    current: FrameType | None = frame
    for _ in range(bound + 1):
        if current is None or current is base:
            return False
        current = current.f_back
    return True


def _within(limits: RenderLimits, run: Callable[[], _T]) -> _T:
    """``run()`` on this thread within ``limits``; a bound hit is an InputError.

    The trace function is installed for this thread only, so renders on other threads
    are unaffected; a debugger's or coverage's trace function is restored after."""
    token = _BUDGET.set(_Budget(limits))
    previous = sys.gettrace()
    sys.settrace(_tracer(limits, sys._getframe()))
    try:
        return run()
    except _LimitExceeded as exc:
        # Untraced before the exception goes, and with it the template's suspended
        # generator, whose closing would run traced.
        sys.settrace(previous)
        reason = str(exc)
    finally:
        sys.settrace(previous)
        _BUDGET.reset(token)
    raise InputError(f"the model's chat template exceeds a rendering limit: {reason}")


def _quote(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= _MAX_QUOTE else text[:_MAX_QUOTE] + "..."
    plain = isinstance(exc, (ValueError, TypeError)) or type(exc).__module__.startswith("jinja2")
    return text if plain else f"{type(exc).__name__}: {text}"


# -- llama-cpp-python's own compilation ------------------------------------------------
class _Uncompiled(Jinja2ChatFormatter):
    """Jinja2ChatFormatter as llama-cpp-python's Llama() builds one for each chat
    template of a file (for create_chat_completion, which inferproof never calls),
    without compiling the template; it refuses to render."""

    def __init__(self, template: str, *args: Any, **kwargs: Any) -> None:
        self.template = template

    def __call__(self, **kwargs: Any) -> Any:
        raise InputError("inferproof renders chat templates itself (ChatTemplate)")


_LOADING = threading.Lock()


@contextmanager
def llama_cpp_compiles_no_templates() -> Iterator[None]:
    """While the body runs, llama-cpp-python's ``Llama()`` compiles no chat template.

    It looks the formatter class up in its module when it builds one, so the class
    is swapped there for this thread's load; loads are serialised by a lock, and the
    stand-in is a subclass, so other users of the module find what they expect.

    Example::

        with llama_cpp_compiles_no_templates():
            llm = Llama("model.gguf")
    """
    with _LOADING:
        original = llama_chat_format.Jinja2ChatFormatter
        setattr(llama_chat_format, "Jinja2ChatFormatter", _Uncompiled)  # noqa: B010
        try:
            yield
        finally:
            setattr(llama_chat_format, "Jinja2ChatFormatter", original)  # noqa: B010


# -- the public face -------------------------------------------------------------------
def check_template_sources(metadata: Mapping[str, Any]) -> None:
    """Refuse a GGUF whose chat templates (``tokenizer.chat_template`` and every
    ``tokenizer.chat_template.<name>``) are together over :data:`MAX_TEMPLATE_CHARS`.

    Example::

        _, _, meta = read_gguf_metadata(data)
        check_template_sources(meta)
    """
    total = sum(
        len(value)
        for key, value in metadata.items()
        if isinstance(value, str)
        and (key == "tokenizer.chat_template" or key.startswith("tokenizer.chat_template."))
    )
    if total > MAX_TEMPLATE_CHARS:
        raise InputError(
            f"the model's chat templates are {total} characters, over the cap of "
            f"{MAX_TEMPLATE_CHARS} (MAX_TEMPLATE_CHARS)"
        )


class ChatTemplate:
    """A GGUF chat template compiled and rendered within :class:`RenderLimits`, to
    the prompt llama-cpp-python's ``Jinja2ChatFormatter`` renders. Renders on
    several threads may share one.

    Example::

        template = ChatTemplate(source)
        prompt = template.render([{"role": "user", "content": "Hi"}],
                                 bos_token="", eos_token="<|im_end|>")
    """

    def __init__(self, source: str, limits: RenderLimits | None = None) -> None:
        check_template_sources({"tokenizer.chat_template": source})
        self.limits = limits or RenderLimits()
        try:
            self._template = _within(self.limits, lambda: _BoundedEnvironment().from_string(source))
        except InputError:
            raise
        except Exception as exc:  # whatever a hostile source makes the compiler raise
            raise InputError(f"the model's chat template does not compile: {_quote(exc)}") from None

    def render(
        self,
        messages: list[dict[str, str]],
        *,
        bos_token: str,
        eos_token: str,
        at: datetime | None = None,
    ) -> str:
        """The prompt for ``messages``, generation prompt included; ``at`` is the time
        ``strftime_now`` shows (the request's recorded template time)."""
        variables = {
            # Jinja2ChatFormatter.__call__'s variables, with its defaults.
            "messages": messages,
            "eos_token": eos_token,
            "bos_token": bos_token,
            "raise_exception": _raise_exception,
            "add_generation_prompt": True,
            "functions": None,
            "function_call": None,
            "tools": None,
            "tool_choice": None,
            "strftime_now": _strftime(at),
        }
        try:
            return _within(self.limits, lambda: self._generate(variables))
        except InputError:
            raise
        except Exception as exc:  # the template's own errors: raise_exception, 1/0...
            raise InputError(
                f"the model's chat template rejected the messages: {_quote(exc)}"
            ) from None

    def _generate(self, variables: dict[str, Any]) -> str:
        parts: list[str] = []
        length, limit = 0, self.limits.max_output
        for part in self._template.generate(variables):
            length += len(part)
            if length > limit:
                _exceed(f"its output is over {limit} characters (MAX_RENDER_CHARS)")
            parts.append(part)
        return "".join(parts)


__all__ = [
    "MAX_CREATED_SIZE",
    "MAX_INT_BITS",
    "MAX_NESTING",
    "MAX_RENDER_CHARS",
    "MAX_RENDER_DEPTH",
    "MAX_RENDER_SECONDS",
    "MAX_RENDER_STEPS",
    "MAX_STRFTIME_CHARS",
    "MAX_TEMPLATE_CHARS",
    "MAX_VALUE_SIZE",
    "ChatTemplate",
    "RenderLimits",
    "check_template_sources",
    "llama_cpp_compiles_no_templates",
    "size_of",
]
