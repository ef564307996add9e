"""One process of the shared-memory stress (issue 11, item 11): THREADS threads check
checkpoints of random sizes, honest or forked, against one CheckpointMemory directory;
half share one write-behind memory (as a Verifier does), half write through.

Usage: python _memory_worker.py TABLE VERIFIER_KEY MEMORY_DIR THREADS ITERATIONS
Prints one JSON line per thread: counts of honest/fork checkpoints passed and failed.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

from inferproof.log import CheckpointMemory, SignedCheckpoint, VerifierKey, open_checkpoint


def _thread(
    table: dict[str, Any],
    memory: CheckpointMemory,
    seed: int,
    iterations: int,
    out: dict[str, Any],
) -> None:
    rng = random.Random(seed)
    key = memory.log_key
    sizes = sorted(int(n) for n in table["honest"])
    top = sizes[-1]

    def prove(old: int, new: int) -> list[bytes]:
        # A proof source is a network round trip away: that time is the window in
        # which another thread or process moves the memory.
        time.sleep(0.001)
        return [bytes.fromhex(h) for h in table["proofs"][f"{old} {new}"]]

    for _ in range(iterations):
        kind = "fork" if rng.random() < 0.1 else "honest"
        n = rng.randint(top // 2 + 1, top) if kind == "fork" else rng.choice(sizes)
        signed: SignedCheckpoint = open_checkpoint(table[kind][str(n)].encode(), key)
        check = memory.check(signed, prove)
        status = check.status.value
        out[f"{kind}_{status}"] = out.get(f"{kind}_{status}", 0) + 1
        if kind == "honest" and status == "failed":
            out.setdefault("details", []).append(check.detail)


def main() -> None:
    table = json.loads(Path(sys.argv[1]).read_text())
    key, directory = VerifierKey.parse(sys.argv[2]), Path(sys.argv[3])
    threads, iterations = int(sys.argv[4]), int(sys.argv[5])
    shared = CheckpointMemory(directory, key, flush_interval=0.01)
    outs: list[dict[str, Any]] = [{} for _ in range(threads)]
    workers = []
    for i, out in enumerate(outs):
        memory = shared if i % 2 else CheckpointMemory(directory, key)
        args = (table, memory, random.randrange(2**32), iterations, out)
        workers.append(threading.Thread(target=_thread, args=args))
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    shared.flush()
    for out in outs:
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
