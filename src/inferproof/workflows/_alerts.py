"""Alert expressions: comparisons on a run's outputs, parsed, never evaluated as code.

Grammar (whitespace between tokens is free)::

    expr       := comparison (("and" | "or") comparison)*      "and" binds tighter
    comparison := ref OP number | number OP ref
    ref        := "output." NAME ("[" INT "]")*
    OP         := ">" | ">=" | "<" | "<=" | "==" | "!="

``output.prob > 0.8`` compares the single element of tensor ``prob``;
``output.probabilities[0][1] >= 0.5`` one element of a larger tensor. A reference
must name an output of the workflow's model and pick exactly one element (its
indexes within the signature's fixed dimensions): that is checked when the workflow
is created, so a bad alert is refused then, not at the first run.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..runtime import TensorSpec

__all__ = ["Alert", "parse_alert"]

MAX_EXPR_CHARS = 500
MAX_TERMS = 16
_TOKEN = re.compile(
    r"\s*(?:(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<op>>=|<=|==|!=|>|<)"
    r"|(?P<ref>output\.[A-Za-z_][A-Za-z0-9_.:/-]*(?:\[\d{1,6}\])*)"
    r"|(?P<word>and|or)\b)"
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}  # fmt: skip
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class _Ref:
    name: str
    index: tuple[int, ...]

    def text(self) -> str:
        return "output." + self.name + "".join(f"[{i}]" for i in self.index)


@dataclass(frozen=True)
class _Comparison:
    ref: _Ref
    op: str
    value: float

    def holds(self, outputs: Mapping[str, np.ndarray]) -> bool:
        arr = np.asarray(outputs[self.ref.name])
        try:
            got = float(arr[self.ref.index] if self.ref.index else arr.reshape(-1)[0])
        except IndexError:  # a symbolic dimension came out shorter than the index
            raise InputError(f"{self.ref.text()} is outside the output's shape "
                             f"{list(arr.shape)}") from None  # fmt: skip
        return _OPS[self.op](got, self.value)


@dataclass(frozen=True)
class Alert:
    """A parsed alert: ``any`` of groups, each ``all`` of its comparisons.

    Example::

        alert = parse_alert("output.prob > 0.8", model_outputs)
        if alert.fires(outputs): ...
    """

    text: str
    groups: tuple[tuple[_Comparison, ...], ...]

    def fires(self, outputs: Mapping[str, np.ndarray]) -> bool:
        """True when the alert's condition holds on ``outputs`` (a run's)."""
        return any(all(c.holds(outputs) for c in group) for group in self.groups)

    @property
    def outputs(self) -> set[str]:
        return {c.ref.name for g in self.groups for c in g}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise InputError(f"alert {text!r}: cannot read {text[pos : pos + 20].strip()!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _ref(token: str) -> _Ref:
    name, *rest = token[len("output.") :].split("[", 1)
    index = tuple(int(i) for i in re.findall(r"\[(\d+)\]", "[" + rest[0])) if rest else ()
    return _Ref(name, index)


def _comparison(toks: Sequence[tuple[str, str]], text: str) -> _Comparison:
    kinds = [k for k, _ in toks]
    if kinds == ["ref", "op", "num"]:
        ref, op, num = toks[0][1], toks[1][1], toks[2][1]
    elif kinds == ["num", "op", "ref"]:
        ref, op, num = toks[2][1], _FLIP[toks[1][1]], toks[0][1]
    else:
        raise InputError(
            f"alert {text!r}: each condition must compare an output with a number, "
            "as in output.prob > 0.8"
        )
    value = float(num)
    if not math.isfinite(value):
        raise InputError(f"alert {text!r}: {num} is not a finite number")
    return _Comparison(_ref(ref), op, value)


def _check_ref(ref: _Ref, specs: Mapping[str, TensorSpec], text: str) -> None:
    spec = specs.get(ref.name)
    if spec is None:
        raise InputError(f"alert {text!r}: the model has no output {ref.name!r} "
                         f"(it has {sorted(specs)})")  # fmt: skip
    shape = spec.shape
    if not ref.index:
        if any(d is None or d != 1 for d in shape):
            raise InputError(
                f"alert {text!r}: output {ref.name} is {spec.dtype}{list(shape)}: pick one "
                f"element, as in {ref.text()}{'[0]' * max(len(shape), 1)}"
            )
        return
    if len(ref.index) != len(shape):
        raise InputError(f"alert {text!r}: {ref.text()} needs {len(shape)} index(es)")
    for i, dim in zip(ref.index, shape, strict=True):
        if dim is not None and i >= dim:
            raise InputError(f"alert {text!r}: index {i} is out of range for {list(shape)}")


def parse_alert(text: Any, outputs: Sequence[TensorSpec]) -> Alert:
    """Parse ``text`` against the model's output signature; bad alerts raise InputError."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_EXPR_CHARS:
        raise InputError(f"an alert must be a comparison of 1 to {MAX_EXPR_CHARS} characters")
    toks = _tokens(text)
    groups: list[list[_Comparison]] = [[]]
    current: list[tuple[str, str]] = []
    for kind, value in [*toks, ("word", "or")]:
        if kind != "word":
            current.append((kind, value))
            continue
        groups[-1].append(_comparison(current, text))
        current = []
        if value == "or":
            groups.append([])
    groups.pop()  # the sentinel "or" opened an empty group
    terms = sum(len(g) for g in groups)
    if terms > MAX_TERMS:
        raise InputError(f"alert {text!r}: at most {MAX_TERMS} conditions")
    specs = {s.name: s for s in outputs}
    for group in groups:
        for c in group:
            _check_ref(c.ref, specs, text)
    return Alert(text, tuple(tuple(g) for g in groups))
