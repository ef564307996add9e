"""A load-test client process: infers (and now and then pushes) for a bounded time.

Usage: python _load_worker.py URL TOKEN HOME SECONDS MAX_REQUESTS
Prints one JSON line per outcome: {"ok": ...} with the receipt, or {"refused": ...}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from inferproof.client import Client
from inferproof.errors import InputError
from inferproof.testing import mlp_model


def main() -> None:
    url, token, home, seconds, limit = (
        sys.argv[1],
        sys.argv[2],
        Path(sys.argv[3]),
        float(sys.argv[4]),
        int(sys.argv[5]),
    )
    rng = np.random.default_rng(abs(hash(home)) % 2**32)
    deadline = time.monotonic() + seconds
    with Client(url, token=token, home=home, retries=2) as client:
        for i in range(limit):
            if time.monotonic() > deadline:
                break
            try:
                if i % 10 == 9:
                    rec = client.push(
                        mlp_model((8, 16, 2), seed=i), name=f"p{home.name}", version=str(i)
                    )
                    print(json.dumps({"pushed": rec.digest}), flush=True)
                    continue
                x = rng.standard_normal((1, 8)).astype(np.float32)
                a = client.infer("mlp:1", {"x": x})
                print(
                    json.dumps(
                        {
                            "ok": a.receipt_digest,
                            "index": a.log_index,
                            "id": a.bundle_id,
                            "envelope": a.bundle.envelope,
                        }
                    ),
                    flush=True,
                )
            except InputError as exc:  # a clean refusal (429 after retries)
                print(json.dumps({"refused": str(exc)}), flush=True)


if __name__ == "__main__":
    main()
