"""Issue 11, item 11 (trust on first use): one Client shared by many threads against a
new node must pin the node once, and no thread may read a half-written pin.

Before the fix about one run in six failed with ``InputError: pinned identity
.../known_nodes/....json is not valid JSON``: the pin was created empty (O_EXCL) and
filled afterwards, and a thread that lost the creation race read it in between.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferproof._files import write_atomic, write_private
from inferproof.client import Client

from ..node.conftest import Running, start

THREADS = 16
# Fresh client homes per test: each one is a first use, so each round is one chance
# for the race (before the fix, most of these rounds of 16 threads hit it at least once).
ROUNDS = 12


@pytest.fixture()
def running(tmp_path: Path) -> Iterator[Running]:
    node = start(tmp_path / "node")
    yield node
    node.stop()


def _pin_concurrently(client: Client) -> list[BaseException]:
    """Every thread asks for the trust root at once; return what they raised."""
    barrier, errors = threading.Barrier(THREADS), []

    def one() -> None:
        barrier.wait()
        try:
            client.trust_root()
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_one_client_shared_by_threads_pins_once(running: Running, tmp_path: Path) -> None:
    """Issue 11, item 11: 16 threads of one Client pin a new node without a false error."""
    for round_ in range(ROUNDS):
        home = tmp_path / f"client{round_}"
        with Client(running.url, token=running.token, home=home) as client:
            errors = _pin_concurrently(client)
        assert errors == [], f"round {round_}: {errors[:3]}"
        pins = list((home / "known_nodes").glob("*.json"))
        assert len(pins) == 1
        assert json.loads(pins[0].read_bytes())["url"] == running.url
        assert pins[0].stat().st_mode & 0o777 == 0o600
        # Only the pin itself is left in the folder: no temporary file survives.
        assert [p.name for p in (home / "known_nodes").iterdir()] == [pins[0].name]


def test_many_clients_in_threads_agree_on_one_pin(running: Running, tmp_path: Path) -> None:
    """Issue 11, item 11: one Client per thread, one home: all trust the same pinned key."""
    home, roots, errors = tmp_path / "shared", [], []
    barrier = threading.Barrier(THREADS)

    def one() -> None:
        with Client(running.url, token=running.token, home=home) as client:
            barrier.wait()
            try:
                roots.append(client.trust_root())
            except BaseException as exc:  # collected and asserted on below
                errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(roots) == THREADS and len({tuple(r.node_keys) for r in roots}) == 1


def test_create_if_absent_never_shows_a_partial_file(tmp_path: Path) -> None:
    """Issue 11, item 11: the file appears whole (a link of a finished temporary file),
    exactly one creator wins, and readers never see fewer bytes than were written."""
    path, data = tmp_path / "pin.json", b"x" * (1 << 20)
    barrier, wins, short = threading.Barrier(8), [], []

    def create() -> None:
        barrier.wait()
        try:
            write_private(path, data)
            wins.append(1)
        except FileExistsError:
            got = path.read_bytes()
            if got != data:
                short.append(len(got))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(wins) == 1 and short == []
    with pytest.raises(FileExistsError):
        write_private(path, b"other")
    assert path.read_bytes() == data and path.stat().st_mode & 0o777 == 0o600
    write_atomic(path, b"replaced")  # replace: readers see the old bytes or the new
    assert path.read_bytes() == b"replaced" and path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pin.json"]
