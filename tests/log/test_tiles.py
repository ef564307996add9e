"""tlog-tiles: paths, bundles, export, and a client that verifies what it reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferproof.errors import InputError, VerificationError
from inferproof.log import Log, MemoryTree, TileClient, bundle_path, tile_path
from inferproof.log._tiles import decode_bundle, encode_bundle, tile_levels, tile_widths

from .conftest import entry


def test_tile_paths_follow_the_spec_examples() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(1, 5) == "tile/1/005"
    assert tile_path(0, 1000, 17) == "tile/0/x001/000.p/17"
    assert bundle_path(0, 112) == "tile/entries/000.p/112"
    with pytest.raises(ValueError):
        tile_path(64, 0)
    with pytest.raises(ValueError):
        tile_path(0, 0, 0)


def test_tile_counts_for_the_spec_example_size_70000() -> None:
    # tlog-tiles: 273 full level-0 tiles, a partial of width 112, one full level-1 tile,
    # a partial level-1 tile of width 17, and a partial level-2 tile of width 1.
    assert tile_widths(70000, 0) == (273, 112)
    assert tile_widths(70000, 1) == (1, 17)
    assert tile_widths(70000, 2) == (0, 1)
    assert tile_levels(70000) == 3
    assert tile_widths(256, 0) == (1, 0) and tile_widths(256, 1) == (0, 1)


def test_entry_bundles() -> None:
    entries = [b"", b"a", b"x" * 65535]
    data = encode_bundle(entries)
    assert data[:2] == b"\x00\x00" and data[2:5] == b"\x00\x01a" and data[5:7] == b"\xff\xff"
    assert decode_bundle(data, 3) == entries
    for bad in (data[:-1], data + b"\x00", data[:1]):
        with pytest.raises(InputError):
            decode_bundle(bad, 3)
    with pytest.raises(InputError):
        encode_bundle([b"x" * 65536])


@pytest.mark.parametrize("size", [1, 255, 256, 257, 700])
def test_export_and_verified_read_back(log: Log, tmp_path: Path, size: int) -> None:
    data = [entry(i) for i in range(size)]
    log.append_many(data)
    out = tmp_path / "tiles"
    log.export_tiles(out)
    client = TileClient.from_directory(out, log.verifier_key)
    assert client.size == size
    assert client.verify_root() == MemoryTree(data).root()
    assert list(client.all_entries()) == data
    for i in {0, size // 2, size - 1}:
        got = client.entry(i)
        assert got.data == data[i] and list(got.proof) == MemoryTree(data).inclusion_proof(i)


def _flip_file(path: Path, byte: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[byte] ^= 0x01
    path.write_bytes(bytes(raw))


def test_tampered_tiles_and_bundles_are_detected(log: Log, tmp_path: Path) -> None:
    log.append_many([entry(i) for i in range(300)])
    out = tmp_path / "tiles"
    log.export_tiles(out)
    _flip_file(out / tile_path(0, 1, 44), 5)
    client = TileClient.from_directory(out, log.verifier_key)
    with pytest.raises(VerificationError) as info:
        client.verify_root()
    assert info.value.check == "tiles.root"
    with pytest.raises(VerificationError):
        client.entry(260)
    for byte in (4, 10):  # inside an entry, then inside a length prefix
        _flip_file(out / bundle_path(0), byte)
        with pytest.raises(VerificationError) as info:
            TileClient.from_directory(out, log.verifier_key).entry(3)
        assert info.value.check == "tiles.entry"
        _flip_file(out / bundle_path(0), byte)
    _flip_file(out / "checkpoint", 40)
    with pytest.raises((InputError, VerificationError)):
        TileClient.from_directory(out, log.verifier_key)


def test_fetch_callable_and_wrong_sized_tile(log: Log) -> None:
    log.append_many([entry(i) for i in range(10)])
    files: dict[str, bytes] = {"checkpoint": log.checkpoint().encode()}
    files[tile_path(0, 0, 10)] = b"\x00" * 32 * 9
    client = TileClient(files.__getitem__, log.verifier_key)
    with pytest.raises(VerificationError) as info:
        client.verify_root()
    assert info.value.check == "tiles.read"
