"""The gateway's replay check (RFC 9458 section 6.5.1): a sealed request is refused when
it was seen before or when its Date is outside the window.

What was seen is kept in the node's shared store (a :class:`~inferproof.stores.
SQLReplayStore` on the node's database, or on an SQLite file under its home), not in
this process: a replay sent to another worker, or after a restart, is refused too.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Protocol

from ._errors import NodeHTTPError

__all__ = ["REPLAY_WINDOW_SECONDS", "ReplayGuard"]

# RFC 9458 section 6.5.1: a gateway can bound replays with the request's Date and a
# record of the requests it saw within that window. Five minutes either way is the
# clock skew the receipts themselves allow (verify/_verifier.py, CLOCK_SKEW_SECONDS).
REPLAY_WINDOW_SECONDS = 300.0
# Records are kept this much longer than two windows (see check): workers on several
# machines share one database, and their clocks may differ by a little.
_CLOCK_MARGIN = 60.0


class _SeenKeys(Protocol):
    """Where seen keys are recorded: :class:`~inferproof.stores.SQLReplayStore`."""

    def first_seen(self, key: bytes, now: float, horizon: float) -> bool: ...


class ReplayGuard:
    """Refuses a sealed request seen before, or one whose Date is outside the window.

    Each encapsulated request carries a fresh ephemeral key (``enc``), so a replay is
    the same ``enc`` again; recording those seen in ``store``, and refusing anything
    dated outside the window, refuses every replay. A store that cannot answer raises
    :class:`~inferproof.errors.StoreUnavailable` (the node answers 503): the request
    is then neither served nor recorded."""

    def __init__(self, store: _SeenKeys, window: float = REPLAY_WINDOW_SECONDS) -> None:
        self.store = store
        self.window = window

    def check(self, enc: bytes, date: str | None, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if date is None:
            raise NodeHTTPError(400, "the sealed request has no Date header (RFC 9458 6.5.1)")
        try:
            sent = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise NodeHTTPError(400, "the sealed request's Date is not an HTTP date") from None
        if abs(now - sent) > self.window:
            raise NodeHTTPError(
                400, f"the sealed request's Date is more than {self.window:g} s from now"
            )
        # A request first seen at t is dated within the window of t, and a replay of it
        # (the same bytes, so the same Date) passes the Date check only within the
        # window of that Date: by t + 2 windows at the latest. Older records can go.
        if not self.store.first_seen(enc, now, 2 * self.window + _CLOCK_MARGIN):
            raise NodeHTTPError(400, "this sealed request was seen before (a replay)")
