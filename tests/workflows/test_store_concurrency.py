"""The workflow store under concurrent claims, on SQLite and on a real PostgreSQL.

Each thread has its own store (its own engine and connections), as separate node
processes would. One tick is taken once. Distinct ticks of one workflow racing each
other are each settled and recorded: run, or skipped because a run is still going (one
run of a workflow at a time), never lost to a run number another claim took."""

from __future__ import annotations

import threading
import time
from typing import Any

from inferproof.stores import SQLWorkflowStore

THREADS = 8


def _race(database: str, ticks: list[str]) -> list[Any]:
    seed = SQLWorkflowStore(database)
    seed.put("w", "{}", "sha256:" + "0" * 64, created=time.time())
    stores = [SQLWorkflowStore(database) for _ in ticks]
    barrier = threading.Barrier(len(ticks))
    got: list[Any] = [None] * len(ticks)

    def claim(i: int) -> None:
        barrier.wait()
        got[i] = stores[i].claim("w", ticks[i], owner=f"p{i}", planned=ticks[i],
                                 started=ticks[i], now=time.time(), lease=600)  # fmt: skip
        if got[i] is not None:
            stores[i].finish("w", got[i].run, owner=f"p{i}", status="ok",
                             digest=f"sha256:{i:064d}", entry="{}", reason=None, alerts="[]",
                             finished=ticks[i])  # fmt: skip

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(ticks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    runs, claims = seed.runs("w"), seed.claims("w")
    for s in (seed, *stores):
        s.close()
    return [got, runs, claims]


def test_one_tick_claimed_by_many_runs_once(database: str) -> None:
    got, runs, claims = _race(database, ["2026-12-02T00:00:00Z"] * THREADS)
    assert len(claims) == 1
    assert sum(g is not None for g in got) == 1
    assert [r.run for r in runs] == [1]


def test_distinct_ticks_racing_are_each_settled(database: str) -> None:
    ticks = [f"2026-12-02T00:00:{i:02d}Z" for i in range(THREADS)]
    got, runs, claims = _race(database, ticks)
    # Every tick has its claim row: run, or skipped with the reason; none vanished.
    assert sorted(t for t, *_ in claims) == ticks
    outcomes = {t: (run, outcome) for t, _, run, outcome in claims}
    ran = [t for t, (run, _) in outcomes.items() if run is not None]
    skipped = [o for run, o in outcomes.values() if run is None]
    assert ran and all(o.startswith("skipped: run ") for o in skipped), outcomes
    # The runs made are numbered 1, 2, ... with no gap and no repeat.
    assert [r.run for r in runs] == list(range(1, len(ran) + 1))
    assert sum(g is not None for g in got) == len(ran)
