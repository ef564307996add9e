"""Workflow definitions: checked against the model at creation, with one stable digest."""

from __future__ import annotations

import pytest

from inferproof import LocalNode
from inferproof.errors import InputError
from inferproof.workflows import AlertSpec, Definition, FeedSpec, Query, Schedule, parse_every

FEED = FeedSpec.parse("http://127.0.0.1:9/applicants")
QUERY = Query("X", ("income", "debt", "age", "late"), 1)


@pytest.fixture()
def record(home, credit_model):  # type: ignore[no-untyped-def]
    with LocalNode(home) as node:
        return node.push(credit_model[0], name="credit", version="1")


def test_a_definition_round_trips_with_one_digest(record) -> None:
    d = Definition.create("risk", record, FEED, QUERY, Schedule(every=60.0),
                          (AlertSpec("output.probabilities[0][1] > 0.8", None),))  # fmt: skip
    again = Definition.from_json(d.to_json())
    assert again == d and again.digest == d.digest and d.digest.startswith("sha256:")
    assert d.to_json()["model"] == {"ref": "credit:1", "digest": record.digest}
    other = Definition.create("risk", record, FEED, QUERY, Schedule(every=61.0))
    assert other.digest != d.digest


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"query": Query("Y", ("a",), 4)}, "the query fills input 'Y'; the model takes ['X']"),
        ({"query": Query("X", ("a", "b"), 1)}, "the model expects ['?', 4]"),
        ({"alerts": (AlertSpec("output.p > 1"),)}, "the model has no output 'p'"),
        ({"alerts": (AlertSpec("output.probabilities > 1"),)}, "pick one element"),
        ({"schedule": Schedule()}, "needs one of every or cron"),
        ({"schedule": Schedule(every=1.0, cron="* * * * *")}, "needs one of every or cron"),
        ({"schedule": Schedule(cron="* * *")}, "give five fields"),
        ({"schedule": Schedule(cron="rm -rf / * * * *")}, "give five fields"),
        ({"schedule": Schedule(every=0.1)}, "--every must be"),
        ({"schedule": Schedule(every=60.0, until="tomorrow")}, "until must be an RFC 3339"),
        ({"schedule": Schedule(every=60.0, until="2026-12-31T00:00:00")}, "time zone"),
        ({"name": "../etc"}, "workflow name"),
        ({"name": ""}, "workflow name"),
    ],
)
def test_bad_definitions_are_refused_at_creation(record, change, message: str) -> None:
    args = {"name": "risk", "query": QUERY, "schedule": Schedule(every=60.0), "alerts": ()}
    args.update(change)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):  # fmt: skip
        Definition.create(args["name"], record, FEED, args["query"], args["schedule"],
                          args["alerts"])  # fmt: skip


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("5m", 300), ("1h", 3600),
                                                ("2", 2), ("1.5m", 90), ("1d", 86400)])  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "fast", "-5s", "0s", "400d", "5 minutes"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InputError):
        parse_every(text)
