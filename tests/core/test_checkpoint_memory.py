"""Write-behind checkpoint memory: pending checkpoints count at once, reach disk later."""

from __future__ import annotations

import gc
from pathlib import Path

from inferproof.log import CheckpointMemory, Log, SignerKey, open_checkpoint


def _log(tmp_path: Path) -> tuple[Log, SignerKey]:
    key = SignerKey.generate("example.com/log")
    return Log.open(tmp_path / "log.sqlite", key, max_delay=0.0), key


def test_write_behind_then_flush(tmp_path: Path) -> None:
    log, key = _log(tmp_path)
    vkey = key.verifier()
    memory = CheckpointMemory(tmp_path / "mem", vkey, flush_interval=3600)
    first = open_checkpoint(log.append(b"a").checkpoint, vkey)
    assert memory.observe(first).passed  # first store is written at once
    second = open_checkpoint(log.append(b"b").checkpoint, vkey)
    proof = log.consistency_proof(first.size, second.size)
    assert memory.observe(second, proof).passed
    on_disk = CheckpointMemory(tmp_path / "mem", vkey)  # another reader sees the file only
    assert on_disk.latest(vkey.name).size == first.size  # type: ignore[union-attr]
    assert memory.latest(vkey.name).size == second.size  # type: ignore[union-attr]
    memory.flush()
    assert on_disk.latest(vkey.name).size == second.size  # type: ignore[union-attr]
    log.close()


def test_pending_checkpoint_is_written_when_collected(tmp_path: Path) -> None:
    log, key = _log(tmp_path)
    vkey = key.verifier()
    memory = CheckpointMemory(tmp_path / "mem", vkey, flush_interval=3600)
    a = open_checkpoint(log.append(b"a").checkpoint, vkey)
    memory.observe(a)
    b = open_checkpoint(log.append(b"b").checkpoint, vkey)
    memory.observe(b, log.consistency_proof(a.size, b.size))
    del memory
    gc.collect()
    assert CheckpointMemory(tmp_path / "mem", vkey).latest(vkey.name).size == b.size  # type: ignore[union-attr]
    log.close()


def test_pending_memory_still_detects_split_view(tmp_path: Path) -> None:
    log, key = _log(tmp_path)
    other = Log.open(tmp_path / "fork.sqlite", key, max_delay=0.0)
    vkey = key.verifier()
    memory = CheckpointMemory(tmp_path / "mem", vkey, flush_interval=3600)
    memory.observe(open_checkpoint(log.append(b"a").checkpoint, vkey))
    honest = open_checkpoint(log.append(b"b").checkpoint, vkey)
    memory.observe(honest, log.consistency_proof(1, 2))  # pending, not on disk
    other.append(b"a")
    forked = open_checkpoint(other.append(b"c").checkpoint, vkey)
    check = memory.observe(forked)
    assert not check.passed and "split view" in check.detail
    log.close()
    other.close()
