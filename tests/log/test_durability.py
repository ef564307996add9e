"""kill -9 under load loses no acknowledged append; several processes share one log file."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from inferproof.log import Log, SignerKey, open_checkpoint, verify_consistency

WRITER = Path(__file__).resolve().parent / "_writer.py"


def _start(db: Path, key: Path, threads: int, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(db), str(key), str(threads), str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _parse(line: str) -> tuple[int, bytes, bytes]:
    tag, index, data, note = line.split()
    assert tag == "ACK"
    return int(index), bytes.fromhex(data), base64.b64decode(note)


def test_kill_9_loses_no_acknowledged_entry(tmp_path: Path, log_signer: SignerKey) -> None:
    key = tmp_path / "log.key"
    key.write_text(log_signer.encode())
    db = tmp_path / "log.sqlite"
    proc = _start(db, key, threads=8, count=0)
    acked: list[tuple[int, bytes, bytes]] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while len(acked) < 3000 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(_parse(line))
    os.kill(proc.pid, signal.SIGKILL)  # mid-load: appends are still in flight
    proc.wait(timeout=30)
    proc.stdout.close()
    assert len(acked) >= 3000, proc.stderr.read() if proc.stderr else ""

    with Log.open(db, log_signer) as log:
        assert log.size >= len(acked)
        for index, data, _ in acked:
            assert log.entry(index) == data
        log.append_many([b"after restart"])
        latest = log.checkpoint()
        issued = {open_checkpoint(note, log.verifier_key).checkpoint for _, _, note in acked}
        assert len(issued) > 10
        for cp in issued:
            proof = log.consistency_proof(cp.size, latest.size)
            verify_consistency(cp.size, latest.size, cp.root_hash, latest.root_hash, proof)
            assert log.checkpoint(cp.size).checkpoint == cp
        audit = log.verify()
        assert audit.size == latest.size and set(audit.checkpoints) >= {c.size for c in issued}


def test_two_processes_append_to_one_file(tmp_path: Path, log_signer: SignerKey) -> None:
    key = tmp_path / "log.key"
    key.write_text(log_signer.encode())
    db = tmp_path / "log.sqlite"
    procs = [_start(db, key, threads=4, count=100) for _ in range(2)]
    acked = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        acked += [_parse(line) for line in out.splitlines()]
    assert len(acked) == 800
    assert len({index for index, _, _ in acked}) == 800
    with Log.open(db, log_signer) as log:
        assert log.size == 800
        for index, data, _ in acked:
            assert log.entry(index) == data
        assert log.verify().size == 800
