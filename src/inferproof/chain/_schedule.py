"""Anchoring on a schedule: every N seconds, or whenever the log grew by N receipts.

OpenGradient settles a batch every 20 requests or every 60 s, whichever comes first;
:class:`AnchorSchedule` does the same with checkpoints, on APScheduler, the scheduler
the workflows run on. One anchor runs at a time (a lock, and APScheduler's
``max_instances=1``), ticks missed while one runs are merged (``coalesce``), and an
anchor that finds the chain already holding the checkpoint sends nothing, so the two
triggers together never send one checkpoint twice. A failed anchor (RPC down, no
funds) is reported and tried again at the next trigger.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import Error, InputError
from ._flow import AnchorResult

__all__ = ["AnchorSchedule", "anchoring"]

# How often the receipt trigger looks at the log's size (a local read).
SIZE_POLL_SECONDS = 1.0
# The largest --receipts: a batch beyond a million receipts is no longer "frequent".
MAX_RECEIPTS = 1_000_000


class AnchorSchedule:
    """Run ``anchor_once`` every ``every`` seconds and when ``log_size()`` grew by
    ``receipts`` since the last anchor; each result (or Error) goes to ``report``.

    Example::

        schedule = AnchorSchedule(lambda: anchor_log(log, contract, operator, home),
                                  lambda: log.size, every=60, receipts=20, report=print)
        schedule.start()
    """

    def __init__(
        self,
        anchor_once: Callable[[], AnchorResult],
        log_size: Callable[[], int],
        *,
        every: float | None,
        receipts: int | None,
        report: Callable[[AnchorResult | Error], None],
    ) -> None:
        if every is None and receipts is None:
            raise InputError("give --every, --receipts or both")
        if receipts is not None and not 1 <= receipts <= MAX_RECEIPTS:
            raise InputError(f"--receipts must be 1 to {MAX_RECEIPTS}")
        self._anchor_once, self._size = anchor_once, log_size
        self._every, self._receipts, self._report = every, receipts, report
        self._lock = threading.Lock()
        self._anchored_size = -1
        self._scheduler: Any = None

    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(timezone="UTC")
        options = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        if self._every is not None:
            scheduler.add_job(self.tick, "interval", seconds=self._every, id="anchor-every",
                              **options)  # fmt: skip
        if self._receipts is not None:
            scheduler.add_job(self._grown, "interval", seconds=SIZE_POLL_SECONDS,
                              id="anchor-receipts", **options)  # fmt: skip
        scheduler.start()
        self._scheduler = scheduler
        self.tick()  # anchor what the log holds now, then on the triggers

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None

    def _grown(self) -> None:
        assert self._receipts is not None
        if self._anchored_size >= 0 and self._size() - self._anchored_size >= self._receipts:
            self.tick()

    def tick(self) -> None:
        """Anchor now (the chain decides whether there is anything new to send)."""
        with self._lock:
            try:
                result = self._anchor_once()
            except Error as exc:
                # Tried again at the next trigger: after `every`, or N receipts from now.
                self._anchored_size = self._size()
                self._report(exc)
                return
            self._anchored_size = result.new
            self._report(result)


def anchoring(
    home: Path,
    log: Any,
    *,
    every: float | None,
    receipts: int | None,
    key: Path | None = None,
    report: Callable[[AnchorResult | Error], None],
) -> AnchorSchedule:
    """The schedule that anchors ``log`` with the contract ``HOME/chain.json`` names, sent
    by the operator (``key``, a hex private key file, or the account the RPC unlocks).

    Example::

        schedule = anchoring(node.home.root, node.log, every=60, receipts=20, report=print)
        schedule.start()
    """
    from ._anchor import CheckpointAnchor
    from ._flow import ChainConfig, anchor_log, connect, load_key

    cfg = ChainConfig.read(home)
    signer = load_key(key) if key is not None else None
    if signer is not None and signer.address != cfg.operator:
        raise Error(f"the key is account {signer.address}; the log's operator is {cfg.operator}")
    contract = CheckpointAnchor(connect(cfg.rpc, cfg.chain_id, key=signer), cfg.anchor)
    return AnchorSchedule(lambda: anchor_log(log, contract, cfg.operator, home),
                          lambda: int(log.size), every=every, receipts=receipts,
                          report=report)  # fmt: skip
