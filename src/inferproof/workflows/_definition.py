"""A workflow's definition: model, feed, query, schedule, alerts; and its digest.

The definition is fixed when the workflow is created and every run's receipt names its
RFC 8785 digest, so a history says exactly what ran: which model (by digest, resolved
at creation), which feed and query, on which schedule, with which alerts. Everything is
checked at creation against the model's signature (a query that does not give the
model's input shape, an alert on an output the model lacks), so a bad definition is
refused then, with the reason, and never fails at its first run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._canonical import canonical_json, check_digest, sha256_digest
from ..errors import InputError
from ..hub import ModelRecord
from ._alerts import parse_alert
from ._feeds import FeedSpec
from ._query import Query

__all__ = [
    "MIN_EVERY_SECONDS",
    "NAME_PATTERN",
    "AlertSpec",
    "Definition",
    "Schedule",
    "check_name",
    "parse_every",
]

# A workflow name: also the node's URL path segment and pydantic pattern (one source).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
NAME = re.compile(NAME_PATTERN)
# One run a second at most: a run is a fetch, an inference, a signature and a log
# append; faster schedules belong in a stream, not a scheduler.
MIN_EVERY_SECONDS = 1.0
MAX_EVERY_SECONDS = 366 * 86400.0
MAX_ALERTS = 16
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CRON_FIELD = re.compile(r"^[0-9*/,\-]{1,64}$")


def parse_every(text: str) -> float:
    """``60s``, ``5m``, ``1h``, ``1d`` or plain seconds, as seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text))
    if m is None:
        raise InputError(f"--every {text!r:.40}: give a duration such as 60s, 5m or 1h")
    seconds = float(m.group(1)) * _UNITS.get(m.group(2) or "s", 1)
    if not MIN_EVERY_SECONDS <= seconds <= MAX_EVERY_SECONDS:
        raise InputError(f"--every must be {MIN_EVERY_SECONDS:g} s to 366 days")
    return seconds


def _rfc3339(text: Any, what: str) -> str:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{what} must be an RFC 3339 time, such as 2026-12-31T00:00:00Z") from None
    if when.tzinfo is None:
        raise InputError(f"{what} must say its time zone (Z for UTC)")
    return str(text)


@dataclass(frozen=True)
class Schedule:
    """Every ``every`` seconds, or on a five-field ``cron`` expression (UTC), until ``until``."""

    every: float | None = None
    cron: str | None = None
    until: str | None = None

    def check(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise InputError("a schedule needs one of every or cron")
        if self.every is not None:
            parse_every(str(self.every))
        if self.cron is not None:
            fields = self.cron.split()
            if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
                raise InputError(f"cron {self.cron!r:.80}: give five fields, as in */5 * * * *")
        if self.until is not None:
            _rfc3339(self.until, "until")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"every": self.every} if self.every is not None else {
            "cron": self.cron}  # fmt: skip
        if self.until is not None:
            out["until"] = self.until
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Schedule:
        if not isinstance(obj, dict) or set(obj) - {"every", "cron", "until"}:
            raise InputError("a schedule holds every or cron, and until")
        every = obj.get("every")
        if every is not None and (isinstance(every, bool) or not isinstance(every, int | float)):
            raise InputError("schedule every must be a number of seconds")
        s = cls(None if every is None else float(every), obj.get("cron"), obj.get("until"))
        s.check()
        return s


@dataclass(frozen=True)
class AlertSpec:
    """An alert expression and where to POST its firing (a webhook), if anywhere."""

    expr: str
    webhook: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"expr": self.expr, "webhook": self.webhook}


@dataclass(frozen=True)
class Definition:
    """Everything a workflow's runs depend on (module docs).

    Example::

        d = Definition.create("risk", record, FeedSpec.parse(url),
                              Query("X", ("close",), 30), Schedule(every=60))
        print(d.digest)
    """

    name: str
    model: str
    model_digest: str
    feed: FeedSpec
    query: Query
    schedule: Schedule
    alerts: tuple[AlertSpec, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": {"ref": self.model, "digest": self.model_digest},
            "feed": self.feed.to_json(),
            "query": self.query.to_json(),
            "schedule": self.schedule.to_json(),
            "alerts": [a.to_json() for a in self.alerts],
        }

    @property
    def digest(self) -> str:
        """``sha256`` of the definition's RFC 8785 bytes: what each run's receipt names."""
        return sha256_digest(canonical_json(self.to_json()))

    @classmethod
    def from_json(cls, obj: Any) -> Definition:
        """Read a stored definition (its shape; the model check is :meth:`check_model`'s)."""
        keys = {"name", "model", "feed", "query", "schedule", "alerts"}
        if not isinstance(obj, dict) or set(obj) != keys:
            raise InputError(f"a workflow definition holds exactly {sorted(keys)}")
        model = obj["model"]
        if not isinstance(model, dict) or set(model) != {"ref", "digest"}:
            raise InputError("a workflow's model is {ref, digest}")
        alerts = obj["alerts"]
        if not isinstance(alerts, list) or len(alerts) > MAX_ALERTS:
            raise InputError(f"a workflow has at most {MAX_ALERTS} alerts")
        d = cls(
            check_name(obj["name"]), str(model["ref"]), check_digest(model["digest"], "model"),
            FeedSpec.from_json(obj["feed"]), Query.from_json(obj["query"]),
            Schedule.from_json(obj["schedule"]), tuple(_alert(a) for a in alerts),
        )  # fmt: skip
        return d

    @classmethod
    def create(
        cls,
        name: str,
        record: ModelRecord,
        feed: FeedSpec,
        query: Query,
        schedule: Schedule,
        alerts: tuple[AlertSpec, ...] = (),
    ) -> Definition:
        """A new definition for the hub's ``record``, checked against its signature."""
        d = cls(check_name(name), record.ref, record.digest, feed, query, schedule, alerts)
        feed.check()
        query.check()
        schedule.check()
        d.check_model(record)
        return d

    def check_model(self, record: ModelRecord) -> None:
        """Refuse a definition the model cannot run: the query's tensor must be the
        model's only input, in its shape; alerts must read the model's outputs."""
        if record.digest != self.model_digest:
            raise InputError(f"the workflow runs model {self.model_digest}, not {record.digest}")
        inputs = {s.name: s for s in record.inputs}
        if set(inputs) != {self.query.input}:
            raise InputError(f"the query fills input {self.query.input!r}; the model takes "
                             f"{sorted(inputs)}")  # fmt: skip
        self.query.shape(inputs[self.query.input])
        if len(self.alerts) > MAX_ALERTS:
            raise InputError(f"a workflow has at most {MAX_ALERTS} alerts")
        for a in self.alerts:
            parse_alert(a.expr, record.outputs)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InputError(f"workflow name {name!r:.80} must be 1 to 64 letters, digits, . _ -")
    return name


def _alert(obj: Any) -> AlertSpec:
    if not isinstance(obj, dict) or set(obj) != {"expr", "webhook"}:
        raise InputError("an alert is {expr, webhook}")
    hook = obj["webhook"]
    if hook is not None and not (
        isinstance(hook, str) and hook.startswith(("http://", "https://"))
    ):
        raise InputError("an alert's webhook must be an http(s) URL or null")
    return AlertSpec(str(obj["expr"]), hook)
