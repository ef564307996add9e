"""One process of the concurrent-clients test (issue 11, item 11): THREADS threads, one
inferproof Client each, all with the same INFERPROOF_HOME, verifying answers of one
honest node for SECONDS; then one JSON line per thread with what happened.

Usage: python _fork_worker.py URL TOKEN HOME THREADS SECONDS
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from inferproof.client import Client
from inferproof.errors import Error, InputError, VerificationError


def _thread(url: str, token: str, home: Path, deadline: float, out: dict[str, Any]) -> None:
    rng = np.random.default_rng(threading.get_ident() % 2**32)
    try:
        with Client(url, token=token, home=home, retries=5) as client:
            while time.monotonic() < deadline:
                x = rng.standard_normal((1, 8)).astype(np.float32)
                try:
                    answer = client.infer("mlp:1", {"x": x})
                except VerificationError as exc:  # the false alarm this test is about
                    out["alarms"].append(f"{exc.check}: {exc.detail}")
                    continue
                except InputError as exc:  # a clean refusal (429 after retries)
                    out["refused"] += 1
                    out["last_refusal"] = str(exc)
                    continue
                assert answer.report is not None
                status = {c.name: c.status.value for c in answer.report.checks}
                out["ok"] += 1
                out["consistency"][status.get("log.consistency", "absent")] += 1
    except VerificationError as exc:  # raised by close(): writing the memory to disk
        out["alarms"].append(f"at close: {exc.check}: {exc.detail}")
    except Error as exc:
        out["errors"].append(str(exc))


def main() -> None:
    url, token, home = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    threads, seconds = int(sys.argv[4]), float(sys.argv[5])
    deadline = time.monotonic() + seconds
    outs = [
        {"ok": 0, "refused": 0, "alarms": [], "errors": [],
         "consistency": {"passed": 0, "not_checked": 0, "failed": 0, "absent": 0}}
        for _ in range(threads)
    ]  # fmt: skip
    workers = [
        threading.Thread(target=_thread, args=(url, token, home, deadline, out)) for out in outs
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for out in outs:
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
