"""Run records as an agent run is made: collect each call's bundle, have a node sign.

:class:`RunRecorder` is what the MCP server and the LangChain callback hold for a
run. It keeps the bundle of every model call in call order; :meth:`RunRecorder.record`
hands the chain so far to a *signer* (a local node's issuer, or a remote node through
the client's ``POST /v1/runs``), which signs and logs it, and returns the record file
(receipts/_runrecord.py). Each call to :meth:`record` signs the whole chain again, so
a record taken mid-run covers every call up to then.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from ._bundle import Bundle
from ._dsse import envelope_payload
from ._runrecord import RunRecord, check_run_id, parse_run_statement, receipt_digest
from ._statement import utc_now

# (run id, [(tool, receipt digest)], started, agent) -> (signed envelope, tlog-proof)
RunSigner = Callable[
    [str, list[tuple[str, str]], str, dict[str, Any]], tuple[dict[str, Any], str | None]
]

__all__ = ["RunRecorder", "RunSigner"]


class RunRecorder:
    """The calls of one agent run, and their signed run record on demand.

    Example::

        run = node.run_recorder(agent={"name": "loan-desk"})
        run.add("infer", node.infer("risk", inputs).bundle)
        run.add("chat", node.chat("smollm2", request).bundle)
        run.record().write("run.json")     # then: inferproof run verify run.json
    """

    def __init__(
        self,
        signer: RunSigner,
        *,
        run_id: str | None = None,
        agent: dict[str, Any] | None = None,
    ) -> None:
        # Checked here, so a bad id fails when the run starts, not when it is signed.
        self.run_id = check_run_id(str(uuid.uuid4()) if run_id is None else run_id)
        self.agent = dict(agent or {})
        self.started = utc_now()
        self._signer = signer
        self._calls: list[tuple[str, Bundle]] = []
        self._lock = threading.Lock()

    def add(self, tool: str, bundle: Bundle) -> int:
        """Append a call (``tool`` names what the agent called: ``infer``, ``chat``…);
        return its place in the run."""
        with self._lock:
            self._calls.append((tool, bundle))
            return len(self._calls) - 1

    def __len__(self) -> int:
        return len(self._calls)

    @property
    def receipts(self) -> list[str]:
        """The receipt digests of the calls so far, in order."""
        with self._lock:
            return [receipt_digest(b) for _, b in self._calls]

    def record(self) -> RunRecord:
        """Have the node sign (and log) the chain of every call so far; the record file."""
        with self._lock:
            calls = list(self._calls)
        listed = [(tool, receipt_digest(b)) for tool, b in calls]
        envelope, entry = self._signer(self.run_id, listed, self.started, self.agent)
        statement = parse_run_statement(envelope_payload(envelope))
        return RunRecord(envelope, statement, tuple(b for _, b in calls), entry)
