"""Issue 11, low: ``CheckpointMemory(flush_interval=...)`` never wrote its first
checkpoint on a machine booted less than ``flush_interval`` seconds ago.

The write-behind timer started at 0.0, so ``time.monotonic() - 0.0 < interval`` held
for the first interval after boot (the monotonic clock starts near 0 on Linux) and the
first checkpoint stayed in memory only. The timer now starts unset. These tests fix
the clock at a small value instead of depending on the machine's uptime.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inferproof.log import CheckpointMemory, Log, SignerKey

INTERVAL = 3600.0


class _Clock:
    """A monotonic clock that reads what the test says (seconds since "boot")."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def log(tmp_path: Path) -> Iterator[Log]:
    with Log.open(
        tmp_path / "log.sqlite", SignerKey.generate("boot.example/log"), max_delay=0.0
    ) as log:
        for i in range(4):
            log.append(b"entry %d" % i)
        yield log


@pytest.mark.parametrize("uptime", [0.0, 0.5, 5.0, INTERVAL - 1])
def test_first_checkpoint_is_written_right_after_boot(
    log: Log, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uptime: float
) -> None:
    """Issue 11, low: freshly booted machine (monotonic clock < flush_interval): the
    first checkpoint reaches disk at once; later ones wait for the interval."""
    clock = _Clock(uptime)
    monkeypatch.setattr("time.monotonic", clock)
    key = log.verifier_key
    memory = CheckpointMemory(tmp_path / "mem", key, flush_interval=INTERVAL)
    reader = CheckpointMemory(tmp_path / "mem", key)  # another process: sees the file only
    assert memory.observe(log.checkpoint(1)).passed
    first = reader.latest(key.name)
    assert first is not None and first.size == 1  # failed before the fix: None
    # Write-behind still holds for the next ones: not on disk until the interval passed.
    assert memory.check(log.checkpoint(2), log.consistency_proof).passed
    assert reader.latest(key.name).size == 1  # type: ignore[union-attr]
    clock.now += INTERVAL
    assert memory.check(log.checkpoint(3), log.consistency_proof).passed
    assert reader.latest(key.name).size == 3  # type: ignore[union-attr]
    assert memory.check(log.checkpoint(4), log.consistency_proof).passed
    assert reader.latest(key.name).size == 3  # type: ignore[union-attr]
    memory.flush()
    assert reader.latest(key.name).size == 4  # type: ignore[union-attr]
