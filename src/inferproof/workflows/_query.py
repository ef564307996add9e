"""The query shape: a window of feed rows into the model's named input tensor.

A :class:`Query` names the model input, the columns (in order), the window length
(the last ``window`` rows of the feed) and a normalisation, all recorded in the
workflow's definition so a verifier can recompute the tensor from the fetched bytes.
The tensor is ``[1, window, columns]`` for a rank-3 input and ``[1, window * columns]``
(row after row) for a rank-2 one; the model's signature is checked when the workflow
is created.

Normalisations, per column over the window: ``none``; ``zscore`` ((x - mean) / std,
population std, 0 where the std is 0); ``minmax`` ((x - min) / (max - min), 0 where
max equals min).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..runtime import TensorSpec

__all__ = ["MAX_WINDOW", "Query"]

MAX_WINDOW = 10_000
MAX_COLUMNS = 256
_NORMALISE = ("none", "zscore", "minmax")


@dataclass(frozen=True)
class Query:
    """Which input, which columns, how many rows, what normalisation.

    Example::

        q = Query("X", ("close", "volume"), window=30, normalise="zscore")
        tensors = q.tensors(rows, spec)    # {"X": float32[1, 30, 2]}
    """

    input: str
    columns: tuple[str, ...]
    window: int
    normalise: str = "none"

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "columns": list(self.columns), "window": self.window,
                "normalise": self.normalise}  # fmt: skip

    @classmethod
    def from_json(cls, obj: Any) -> Query:
        if not isinstance(obj, dict) or set(obj) - {"input", "columns", "window", "normalise"}:
            raise InputError("a query holds input, columns, window and normalise only")
        columns = obj.get("columns")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InputError("query columns must be a list of column names")
        q = cls(obj.get("input", ""), tuple(columns), obj.get("window", 0),
                obj.get("normalise", "none"))  # fmt: skip
        q.check()
        return q

    def check(self) -> None:
        if not isinstance(self.input, str) or not self.input:
            raise InputError("query input must name the model's input tensor")
        if not 0 < len(self.columns) <= MAX_COLUMNS or len(set(self.columns)) != len(self.columns):
            raise InputError(f"query needs 1 to {MAX_COLUMNS} distinct columns")
        if isinstance(self.window, bool) or not isinstance(self.window, int):
            raise InputError("query window must be a whole number of rows")
        if not 0 < self.window <= MAX_WINDOW:
            raise InputError(f"query window must be 1 to {MAX_WINDOW} rows")
        if self.normalise not in _NORMALISE:
            raise InputError(f"query normalise must be one of {list(_NORMALISE)}")

    def shape(self, spec: TensorSpec) -> tuple[int, ...]:
        """The tensor shape this query gives for ``spec``, or InputError saying why not."""
        n, c = self.window, len(self.columns)
        want = (1, n, c) if len(spec.shape) == 3 else (1, n * c)
        if len(spec.shape) not in (2, 3) or any(
            d is not None and d != w for d, w in zip(spec.shape, want, strict=True)
        ):
            dims = ["?" if d is None else d for d in spec.shape]
            raise InputError(
                f"the query gives {self.input} {list(want)} ({n} rows of {c} columns), the "
                f"model expects {dims}"
            )
        if not spec.dtype.startswith("float"):
            raise InputError(f"model input {self.input} is {spec.dtype}: queries give floats")
        return want

    def tensors(self, rows: Sequence[dict[str, Any]], spec: TensorSpec) -> dict[str, np.ndarray]:
        """The model input from the last ``window`` rows (InputError when there are too
        few, a column is missing, or a value is not a finite number)."""
        if len(rows) < self.window:
            raise InputError(f"the feed has {len(rows)} rows, the query needs {self.window}")
        window = rows[len(rows) - self.window :]
        values = np.empty((self.window, len(self.columns)), np.float64)
        for i, row in enumerate(window):
            for j, col in enumerate(self.columns):
                values[i, j] = _number(row, col, len(rows) - self.window + i)
        values = _normalised(values, self.normalise)
        return {self.input: values.astype(spec.dtype).reshape(self.shape(spec))}


def _number(row: dict[str, Any], col: str, index: int) -> float:
    if col not in row:
        raise InputError(f"feed row {index} has no column {col!r}")
    raw = row[col]
    try:
        value = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise InputError(f"feed row {index} column {col!r} is not a finite number: {raw!r:.40}")
    return value


def _normalised(values: np.ndarray, how: str) -> np.ndarray:
    if how == "zscore":
        std = values.std(axis=0)
        centred = values - values.mean(axis=0)
        out: np.ndarray = np.divide(centred, std, out=np.zeros_like(values), where=std > 0)
        return out
    if how == "minmax":
        low, span = values.min(axis=0), np.ptp(values, axis=0)
        scaled: np.ndarray = np.divide(values - low, span, out=np.zeros_like(values),
                                       where=span > 0)  # fmt: skip
        return scaled
    return values
