"""Issue 11, low: tlog-tiles partial tiles and caching.

``inferproof log export-tiles`` wrote only the latest partial tile, but c2sp.org/tlog-tiles
("Partial Tiles") says "Logs MUST serve partial tiles corresponding to tree sizes for
which a checkpoint was produced" (and MAY delete one once its full tile exists): a
client holding an older bundle got 404. And the node served partial tiles with
``Cache-Control: no-cache`` where the spec says the tile and entry bundle endpoints
are immutable and "caching headers SHOULD be long-lived"; the checkpoint is mutable
and must not be cached beyond a few seconds.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from inferproof.cli._log import log_app
from inferproof.log import (
    Log,
    SignerKey,
    TileClient,
    bundle_path,
    open_default_log,
    served_tiles,
    tile_path,
)

from ..node.conftest import Running, start

# Checkpointed sizes: two inside tile 0 (full by the end), two inside tile 1 (partial).
BATCHES = (3, 97, 166, 40)  # sizes 3, 100, 266, 306
SIZES = (3, 100, 266, 306)
IMMUTABLE = "public, max-age=31536000, immutable"


def _grow(log: Log) -> list[bytes]:
    """Append BATCHES (one checkpoint each); return the checkpoint notes, oldest first."""
    notes, n = [], 0
    for count in BATCHES:
        log.append_many([b"entry %d" % (n + i) for i in range(count)])
        n += count
        notes.append(log.checkpoint().encode())
    assert [log.checkpoint(s).size for s in SIZES] == list(SIZES)
    return notes


@pytest.fixture()
def log(tmp_path: Path) -> Iterator[Log]:
    with Log.open(tmp_path / "log.sqlite", SignerKey.generate("tiles.example/log")) as log:
        yield log


def _files(folder: Path) -> Callable[[str], bytes]:
    return lambda path: (folder / path).read_bytes()


def _recording(fetch: Callable[[str], bytes], seen: list[str]) -> Callable[[str], bytes]:
    def record(path: str) -> bytes:
        seen.append(path)
        return fetch(path)

    return record


def test_export_writes_the_partial_tiles_of_every_checkpoint(log: Log, tmp_path: Path) -> None:
    """Issue 11, low: every checkpointed size's partial tiles and bundles are exported
    (those whose tile is not full yet; the others are served by the full tile)."""
    notes = _grow(log)
    out = tmp_path / "tiles"
    count = log.export_tiles(out)
    for path in (
        tile_path(0, 1, 10),  # size 266: missing before the fix (only .p/50 was written)
        bundle_path(1, 10),
        tile_path(0, 1, 50),  # size 306, the latest
        bundle_path(1, 50),
        tile_path(0, 0),
        bundle_path(0),
        tile_path(1, 0, 1),
    ):
        assert (out / path).is_file(), path
        assert stat.S_IMODE((out / path).stat().st_mode) == 0o644  # public files
    assert count == len(list(p for p in out.rglob("*") if p.is_file()))
    assert not list(out.rglob("*.tmp"))
    for size, note in zip(SIZES, notes, strict=True):
        seen: list[str] = []
        reader = TileClient(_recording(_files(out), seen), log.verifier_key, note)
        assert reader.size == size
        assert reader.verify_root() == log.checkpoint(size).root_hash
        assert list(reader.all_entries()) == [b"entry %d" % i for i in range(size)]
        if size > 256:  # its partial tile was there: read directly
            assert tile_path(0, 1, size - 256) in seen and tile_path(0, 1) not in seen


def test_served_tiles_follow_the_spec(log: Log) -> None:
    """Issue 11, low: the tile set of a log, by the spec's own example sizes."""
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial
    # level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of
    # width 17, and one partial level 2 tile of width 1."
    tiles = served_tiles(70_000, [70_000])
    assert {t for t in tiles if t[2] != 256} == {(0, 273, 112), (1, 1, 17), (2, 0, 1)}
    assert sum(1 for t in tiles if t[0] == 0 and t[2] == 256) == 273
    assert {t for t in tiles if t[0] == 1 and t[2] == 256} == {(1, 0, 256)}
    # "a tree of size 256 will be represented by a full level 0 tile and a partial
    # level 1 tile of width 1."
    assert served_tiles(256, [256]) == {(0, 0, 256), (1, 0, 1)}
    # Older checkpoints add their partials while their tile is not full.
    assert served_tiles(306, SIZES) == served_tiles(306, [306]) | {(0, 1, 10)}
    assert (0, 0, 100) not in served_tiles(306, SIZES)  # tile 0 is full: it serves
    assert served_tiles(100, SIZES) == {(0, 0, 3), (0, 0, 100)}


def test_re_export_keeps_older_files_and_full_tiles(log: Log, tmp_path: Path) -> None:
    """Issue 11, low: exporting again into the same folder adds what grew and leaves the
    immutable files as they were (a web server may be serving them)."""
    _grow(log)
    out = tmp_path / "tiles"
    log.export_tiles(out)
    full = (out / tile_path(0, 0)).stat()
    log.append_many([b"later %d" % i for i in range(10)])
    log.export_tiles(out)
    assert (out / tile_path(0, 0)).stat().st_ino == full.st_ino  # not rewritten
    for width in (10, 50, 60):
        assert (out / tile_path(0, 1, width)).is_file()
    assert TileClient.from_directory(out, log.verifier_key).size == 316


def test_cli_export_serves_an_older_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11, low: ``inferproof log export-tiles`` (the command the review used)."""
    home = tmp_path / "home"
    monkeypatch.setenv("INFERPROOF_HOME", str(home))
    with open_default_log(home) as opened:
        notes = _grow(opened)
        key = opened.verifier_key
    result = CliRunner().invoke(log_app, ["export-tiles", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    older = TileClient.from_directory(tmp_path / "out", key, notes[2])  # size 266
    assert older.entry(260).data == b"entry 260"


# -- the node ---------------------------------------------------------------------------------
@pytest.fixture()
def node(tmp_path: Path) -> Iterator[Running]:
    running = start(tmp_path / "node")
    yield running
    running.stop()


def test_node_serves_older_partials_with_long_lived_caching(node: Running) -> None:
    """Issue 11, low: every tile and entry bundle, partial ones of older checkpoints
    included, is served (200) with long-lived immutable caching; the checkpoint is not
    cached; a tile that does not exist (yet) is a 404 no cache may keep."""
    notes = _grow(node.node.log)
    with httpx.Client(base_url=node.url + "/v1/log/") as http:

        def fetch(path: str) -> bytes:
            r = http.get(path)
            assert r.status_code == 200, (path, r.status_code)
            if path != "checkpoint":
                assert r.headers["cache-control"] == IMMUTABLE, path
            return r.content

        key = node.node.log.verifier_key
        for size, note in zip(SIZES, notes, strict=True):
            seen: list[str] = []
            reader = TileClient(_recording(fetch, seen), key, note)
            assert list(reader.all_entries()) == [b"entry %d" % i for i in range(size)]
            partial = size % 256
            assert tile_path(0, size // 256, partial) in seen  # no fallback was needed
            assert bundle_path(size // 256, partial) in seen
        checkpoint = http.get("checkpoint")
        assert checkpoint.headers["cache-control"] == "no-cache"
        for missing in ("tile/0/001.p/51", "tile/0/002", "tile/entries/001", "tile/2/000.p/1"):
            r = http.get(missing)
            assert r.status_code == 404, missing
            assert r.headers["cache-control"] == "no-store", missing
        assert http.get("tile/²/000").status_code == 404  # not an ASCII decimal: no 500
        assert http.get("tile/" + "9" * 5000 + "/000").status_code == 404
