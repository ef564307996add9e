"""Group commit of issued bundles (node/_groupstore.py): concurrent callers share
transactions, each gets its own id, and one bad row fails alone."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from inferproof._canonical import canonical_json, sha256_digest
from inferproof.engine import LocalNode
from inferproof.errors import InputError
from inferproof.node._bundles import IssuedBundles
from inferproof.node._groupstore import GroupedBundles
from inferproof.testing import mlp_model

Row = tuple[str, int | None, bytes]


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[Row]:
    """Forty real bundles of one model (their receipts are distinct)."""
    with LocalNode(tmp_path_factory.mktemp("home")) as node:
        node.push(mlp_model((8, 4, 2)), name="mlp", version="1")
        x = {"x": np.ones((1, 8), np.float32)}
        bundles = [node.infer("mlp:1", x, nonce=f"n{i}").bundle for i in range(40)]
    return [(sha256_digest(canonical_json(b.envelope)), i, json.dumps(b.to_json()).encode())
            for i, b in enumerate(bundles)]  # fmt: skip


class _Counting(IssuedBundles):
    """The real SQLite store, counting its transactions."""

    calls = 0

    def add_many(self, rows, ids=None, *, owners=None):  # type: ignore[no-untyped-def]
        type(self).calls += 1
        return super().add_many(rows, ids, owners=owners)


def test_concurrent_rows_share_transactions(tmp_path: Path, rows: list[Row]) -> None:
    store = _Counting(tmp_path / "b.sqlite")
    grouped = GroupedBundles(store)
    got: dict[int, str] = {}
    start = threading.Barrier(len(rows))

    def one(i: int) -> None:
        start.wait()
        got[i] = grouped.add_many([rows[i]], owners=[f"owner{i % 3}"])[0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(rows))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(set(got.values())) == len(rows)  # every caller its own id
    for i, bundle_id in got.items():
        assert store.by_id(bundle_id) == rows[i][2]
        assert store.by_digest(rows[i][0], f"owner{i % 3}") == rows[i][2]
    assert store.count() == len(rows)
    # Forty callers released together rarely need forty commits; never more.
    assert 1 <= _Counting.calls <= len(rows)
    grouped.close()


def test_a_duplicate_fails_alone(tmp_path: Path, rows: list[Row]) -> None:
    grouped = GroupedBundles(IssuedBundles(tmp_path / "b.sqlite"))
    grouped.add_many([rows[0]])
    with pytest.raises(InputError, match="already stored"):  # the store refuses it
        grouped.add_many([rows[1], rows[0]])  # one new row and one already stored
    # The new row of the refused group was stored on its own.
    assert grouped.store.count() == 2
    grouped.close()


def test_close_stores_what_is_queued(tmp_path: Path, rows: list[Row]) -> None:
    path = tmp_path / "b.sqlite"
    grouped = GroupedBundles(IssuedBundles(path))
    ids = grouped.add_many(rows[:5])
    grouped.close()
    reopened = IssuedBundles(path)
    assert [reopened.by_id(i) for i in ids] == [r[2] for r in rows[:5]]
