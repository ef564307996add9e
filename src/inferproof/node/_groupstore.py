"""Group commit of issued bundles: one store transaction for the bundles of many requests.

Each inference stores its bundle before it is answered. One transaction per request
made that store the largest single cost of a request on the embedded node (its lock,
BEGIN and COMMIT: 16% of the node's busy time under load, py-spy, see
docs/benchmarks.md). Here the request threads queue their rows and one writer thread
stores whatever is queued in one :meth:`BundleStore.add_many`, the same way the log's
sequencer batches appends: nobody waits for a timer, and the rows that arrive during a
commit form the next one. A caller is answered only once its row is committed. A
batch that fails (a duplicate receipt) is retried row by row, so one bad row fails
alone.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from ._bundles import BundleStore

__all__ = ["GroupedBundles"]

# Rows stored per transaction at most (a node answers at most a few thousand per second).
MAX_GROUP = 256

_Row = tuple[str, int | None, bytes]


class _Item:
    __slots__ = ("future", "owner", "row")

    def __init__(self, row: _Row, owner: str | None) -> None:
        self.row, self.owner = row, owner
        self.future: Future[str] = Future()


class GroupedBundles:
    """``add_many`` through one writer thread that groups concurrent callers' rows.

    Example::

        grouped = GroupedBundles(IssuedBundles(path))
        ids = grouped.add_many([(digest, index, data)], owners=[owner])
        grouped.close()
    """

    def __init__(self, store: BundleStore) -> None:
        self.store = store
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="bundle-writer", daemon=True)
        self._thread.start()

    def add_many(self, rows: list[_Row], *, owners: list[str | None] | None = None) -> list[str]:
        """Store ``rows`` (with the writer's next group); return their ids in order."""
        items = [_Item(row, owner) for row, owner in
                 zip(rows, owners or [None] * len(rows), strict=True)]  # fmt: skip
        for item in items:
            self._queue.put(item)
        return [item.future.result() for item in items]

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Item]) -> None:
        try:
            ids = self.store.add_many([i.row for i in group], owners=[i.owner for i in group])
        except BaseException as exc:
            if len(group) == 1:
                group[0].future.set_exception(exc)
                return
            for item in group:  # one bad row must not fail the others
                self._commit([item])
            return
        for item, bundle_id in zip(group, ids, strict=True):
            item.future.set_result(bundle_id)

    def close(self) -> None:
        """Store what is queued, stop the writer and close the store."""
        self._queue.put(None)
        self._thread.join()
        self.store.close()
