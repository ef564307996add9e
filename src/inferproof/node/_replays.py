"""The gateway's replay check (RFC 9458 section 6.5.1): a sealed request is refused when
it was seen before or when its Date is outside the window."""

from __future__ import annotations

import time
from collections import OrderedDict
from email.utils import parsedate_to_datetime
from threading import Lock

from ._errors import NodeHTTPError

__all__ = ["REPLAY_WINDOW_SECONDS", "ReplayGuard"]

# RFC 9458 section 6.5.1: a gateway can bound replays with the request's Date and a
# record of the requests it saw within that window. Five minutes either way is the
# clock skew the receipts themselves allow (verify/_verifier.py, CLOCK_SKEW_SECONDS).
REPLAY_WINDOW_SECONDS = 300.0
# Requests remembered at most; past it the oldest go (they are older than the window
# at any rate a node serves: 100 000 in 10 minutes is 166 a second).
_MAX_REMEMBERED = 100_000


class ReplayGuard:
    """Refuses a sealed request seen before, or one whose Date is outside the window.

    Each encapsulated request carries a fresh ephemeral key (``enc``), so a replay is
    the same ``enc`` again; remembering those seen within the window, and refusing
    anything dated outside it, refuses every replay."""

    def __init__(self, window: float = REPLAY_WINDOW_SECONDS) -> None:
        self.window = window
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._lock = Lock()

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
        with self._lock:
            while self._seen and (
                len(self._seen) >= _MAX_REMEMBERED
                or next(iter(self._seen.values())) < now - 2 * self.window
            ):
                self._seen.popitem(last=False)
            if enc in self._seen:
                raise NodeHTTPError(400, "this sealed request was seen before (a replay)")
            self._seen[enc] = now
