"""A log writer run as a subprocess by the crash and multi-process tests.

usage: python _writer.py DB KEYFILE THREADS COUNT   (COUNT 0: run until killed)
Prints one line per acknowledged append: ``ACK <index> <entry hex> <checkpoint base64>``.
"""

from __future__ import annotations

import base64
import os
import sys
import threading
from pathlib import Path

from inferproof.log import Log, SignerKey


def main() -> None:
    db, keyfile, threads, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    signer = SignerKey.parse(Path(keyfile).read_text())
    log = Log.open(Path(db), signer, batch_size=64, max_delay=0.002)
    lock = threading.Lock()

    def work(t: int) -> None:
        i = 0
        while count == 0 or i < count:
            data = f"p{os.getpid()}-t{t}-{i}".encode()
            result = log.append(data)
            line = (
                f"ACK {result.index} {data.hex()} {base64.b64encode(result.checkpoint).decode()}\n"
            )
            with lock:
                sys.stdout.write(line)
                sys.stdout.flush()
            i += 1

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.close()


if __name__ == "__main__":
    main()
