"""tlog-tiles (c2sp.org/tlog-tiles): tile paths, tile hashing, entry bundles, a verifying reader.

A tile at level L, index N holds up to 256 consecutive Merkle Tree Hashes of subtrees of
``256**L`` leaves; full tiles have 256 hashes, the rightmost ones are partial
(``.p/<W>``). Entry bundles hold the same 256 entries, each as a big-endian uint16
length followed by the bytes.

Internally a tile is kept with its eight rows (row r holds the nodes ``r`` levels above
the tile's base), so any node of the tree is one lookup; only row 0 is published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, VerificationError
from ._checkpoint import SignedCheckpoint, open_checkpoint
from ._merkle import HASH_SIZE, hash_children, hash_leaf, inclusion_proof, root_hash
from ._merkle import verify_inclusion as _verify_inclusion
from ._note import VerifierKey

# c2sp.org/tlog-tiles "Merkle Tree": tile height 8, full tiles are 256 hashes wide.
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
# Entry bundles prefix each entry with a big-endian uint16 length (tlog-tiles "Log entries").
MAX_ENTRY_BYTES = (1 << 16) - 1
# tlog-tiles: "<L> MUST be a decimal ASCII integer between 0 and 63".
MAX_TILE_LEVEL = 63


def _encode_index(n: int) -> str:
    """Zero-padded 3-digit path elements, all but the last prefixed ``x`` (x001/x234/067)."""
    if n < 0:
        raise ValueError("negative tile index")
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def _suffix(width: int) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} out of range")
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]`` (tlog-tiles "Merkle Tree")."""
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise ValueError(f"tile level {level} out of range")
    return f"tile/{level}/{_encode_index(index)}{_suffix(width)}"


def bundle_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]`` (tlog-tiles "Log entries")."""
    return f"tile/entries/{_encode_index(index)}{_suffix(width)}"


def tile_widths(size: int, level: int) -> tuple[int, int]:
    """(number of full tiles, width of the partial tile or 0) at ``level`` for tree ``size``."""
    count = size >> (TILE_HEIGHT * level)
    return count >> TILE_HEIGHT, count & (TILE_WIDTH - 1)


def tile_levels(size: int) -> int:
    """Number of tile levels that hold at least one hash for tree ``size``."""
    levels = 0
    while size >> (TILE_HEIGHT * levels):
        levels += 1
    return levels


def served_tiles(size: int, checkpoint_sizes: Iterable[int]) -> set[tuple[int, int, int]]:
    """The (level, index, width) of every tile a log of ``size`` must serve.

    tlog-tiles "Partial Tiles": "Logs MUST serve partial tiles corresponding to tree
    sizes for which a checkpoint was produced, but MAY delete any partial tile once the
    corresponding full tile is available". So: every full tile, and at each level the
    partial widths of the rightmost tile that any checkpointed size up to ``size``
    had; a partial of a tile that is full by now is left to the full tile (readers
    fall back to it, as :class:`TileClient` does). Level 0 entry bundles go alike.
    """
    sizes = sorted({s for s in checkpoint_sizes if 0 < s <= size} | {size})
    tiles: set[tuple[int, int, int]] = set()
    for level in range(tile_levels(size)):
        full, _ = tile_widths(size, level)
        tiles.update((level, index, TILE_WIDTH) for index in range(full))
        for s in sizes:
            index, width = tile_widths(s, level)
            if index == full and width:
                tiles.add((level, index, width))
    return tiles


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_BYTES:
            raise InputError(f"entry of {len(entry)} bytes does not fit an entry bundle")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_bundle(data: bytes, count: int) -> list[bytes]:
    """Split an entry bundle into exactly ``count`` entries; raise InputError otherwise."""
    entries, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise InputError("entry bundle ends inside a length prefix")
        n = int.from_bytes(data[pos : pos + 2], "big")
        if pos + 2 + n > len(data):
            raise InputError("entry bundle ends inside an entry")
        entries.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    if len(entries) != count:
        raise InputError(f"entry bundle has {len(entries)} entries, expected {count}")
    return entries


class Tile:
    """One tile with its interior rows; grows by appending base hashes.

    Row ``r`` holds the complete nodes ``r`` levels above the tile's base level, so a
    tile of width ``w`` has ``w >> r`` hashes in row ``r``.
    """

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[list[bytes]] = [[] for _ in range(TILE_HEIGHT)]

    @property
    def width(self) -> int:
        return len(self.rows[0])

    def append(self, h: bytes) -> bytes | None:
        """Append a base hash; return the tile's root hash when this fills the tile."""
        for row in self.rows:
            row.append(h)
            if len(row) % 2:
                return None
            h = hash_children(row[-2], row[-1])
        return h  # the top row completed a pair: the tile is full

    def root(self) -> bytes:
        if self.width != TILE_WIDTH:
            raise ValueError("only a full tile has a root hash")
        top = self.rows[-1]
        return hash_children(top[0], top[1])

    def node(self, row: int, offset: int) -> bytes | None:
        hashes = self.rows[row]
        return hashes[offset] if offset < len(hashes) else None

    def base(self) -> bytes:
        """The published tile: row 0 concatenated."""
        return b"".join(self.rows[0])

    def blob(self) -> bytes:
        """Storage form: every row concatenated (rows are implied by the width)."""
        return b"".join(b"".join(row) for row in self.rows)

    @classmethod
    def from_base(cls, data: bytes) -> Tile:
        if len(data) % HASH_SIZE or not 0 < len(data) <= TILE_WIDTH * HASH_SIZE:
            raise InputError(f"tile of {len(data)} bytes is not 1..256 hashes")
        tile = cls()
        for i in range(0, len(data), HASH_SIZE):
            tile.append(data[i : i + HASH_SIZE])
        return tile

    @classmethod
    def from_blob(cls, width: int, blob: bytes) -> Tile:
        tile, pos = cls(), 0
        for r in range(TILE_HEIGHT):
            n = width >> r
            tile.rows[r] = [blob[pos + i * HASH_SIZE : pos + (i + 1) * HASH_SIZE] for i in range(n)]
            pos += n * HASH_SIZE
        if pos != len(blob):
            raise InputError("stored tile has the wrong length for its width")
        return tile


def locate(level: int, index: int) -> tuple[int, int, int, int]:
    """Where tree node (level, index) lives: (tile level, tile index, row, offset)."""
    t, r = divmod(level, TILE_HEIGHT)
    shift = TILE_HEIGHT - r
    return t, index >> shift, r, index & ((1 << shift) - 1)


class TileNodes:
    """A NodeReader over tiles returned by ``get(level, index, width_needed)``."""

    def __init__(self, get: Callable[[int, int, int], Tile]) -> None:
        self._get = get

    def node(self, level: int, index: int) -> bytes:
        t, n, r, off = locate(level, index)
        tile = self._get(t, n, (off + 1) << r)
        h = tile.node(r, off)
        if h is None:
            raise InputError(f"tree node ({level}, {index}) is not in tile {t}/{n}")
        return h


@dataclass(frozen=True)
class TileEntry:
    """An entry read through tiles, with its proof against the verified checkpoint."""

    index: int
    data: bytes
    proof: tuple[bytes, ...]


class TileClient:
    """Reads a tiled log and verifies everything it reads against a signed checkpoint.

    ``fetch(path)`` returns the bytes at ``<prefix>/<path>`` (a URL fetcher, or a
    directory via :meth:`from_directory`). ``checkpoint`` is the note to read the tree
    at (for instance the one an older bundle carries); by default the log's latest,
    fetched from ``checkpoint``.

    A partial tile or entry bundle that is no longer served (the log may delete it
    once the full one exists, tlog-tiles "Partial Tiles") is read as the prefix of the
    full one; whatever is read is checked against the checkpoint's root either way.

    Example::

        client = TileClient.from_directory(Path("out"), log_key)
        entry = client.entry(5)          # checked by an inclusion proof
        assert client.verify_root() == client.checkpoint.root_hash
    """

    def __init__(
        self,
        fetch: Callable[[str], bytes],
        log_key: VerifierKey,
        checkpoint: bytes | None = None,
    ) -> None:
        self._fetch = fetch
        self._cache: dict[tuple[int, int], Tile] = {}
        note = fetch("checkpoint") if checkpoint is None else checkpoint
        self.checkpoint: SignedCheckpoint = open_checkpoint(note, log_key)
        self.nodes = TileNodes(self._tile)

    @classmethod
    def from_directory(
        cls, directory: Path, log_key: VerifierKey, checkpoint: bytes | None = None
    ) -> TileClient:
        base = directory.resolve()

        def fetch(path: str) -> bytes:
            target = (base / path).resolve()
            if not target.is_relative_to(base):
                raise InputError(f"tile path {path!r} escapes {base}")
            return target.read_bytes()

        return cls(fetch, log_key, checkpoint)

    @property
    def size(self) -> int:
        return self.checkpoint.size

    def _width(self, level: int, index: int, what: str) -> int:
        full, partial = tile_widths(self.size, level)
        width = TILE_WIDTH if index < full else partial
        if index > full or width == 0:
            raise VerificationError("tiles.read", f"{what} is beyond the tree")
        return width

    def _fetch_sized(self, path: str, full_path: str, fits: Callable[[bytes], bool]) -> bytes:
        """``path``, or the full resource at ``full_path`` when ``path`` (a partial one)
        cannot be had or does not fit; the caller checks what it gets. When neither can
        be had, the partial one's answer or error stands."""
        if path == full_path:
            return self._fetch(path)
        try:
            data = self._fetch(path)
        except Exception as exc:  # any failure to get a partial one: try the full one
            return self._full(full_path, exc)
        return data if fits(data) else self._full(full_path, data)

    def _full(self, full_path: str, partial: bytes | Exception) -> bytes:
        try:
            return self._fetch(full_path)
        except Exception:
            if isinstance(partial, Exception):
                raise partial from None
            return partial

    def _tile(self, level: int, index: int, _needed: int) -> Tile:
        tile = self._cache.get((level, index))
        if tile is None:
            width = self._width(level, index, f"tile {level}/{index}")
            size = width * HASH_SIZE
            data = self._fetch_sized(
                tile_path(level, index, width), tile_path(level, index), lambda d: len(d) == size
            )
            if len(data) not in (size, TILE_WIDTH * HASH_SIZE):
                raise VerificationError("tiles.read", f"tile {level}/{index} has the wrong size")
            tile = self._cache[(level, index)] = Tile.from_base(data[:size])
        return tile

    def verify_root(self) -> bytes:
        """Recompute the root from the tiles; raise VerificationError unless it matches."""
        root = root_hash(self.nodes, self.size)
        if root != self.checkpoint.root_hash:
            raise VerificationError("tiles.root", "tiles do not hash to the checkpoint root")
        return root

    def entries(self, bundle: int) -> list[bytes]:
        """Entries of bundle ``bundle``, each checked against the level-0 tile."""
        width = self._width(0, bundle, f"entry bundle {bundle}")

        def fits(data: bytes) -> bool:
            try:
                decode_bundle(data, width)
            except InputError:
                return False
            return True

        data = self._fetch_sized(bundle_path(bundle, width), bundle_path(bundle), fits)
        try:
            entries = decode_bundle(data, width if fits(data) else TILE_WIDTH)[:width]
        except InputError as exc:
            raise VerificationError("tiles.entry", f"bundle {bundle}: {exc}") from exc
        tile = self._tile(0, bundle, width)
        for i, entry in enumerate(entries):
            if hash_leaf(entry) != tile.node(0, i):
                raise VerificationError("tiles.entry", f"entry {bundle * TILE_WIDTH + i} mismatch")
        return entries

    def entry(self, index: int) -> TileEntry:
        """Entry ``index``, verified by an inclusion proof against the checkpoint root."""
        if not 0 <= index < self.size:
            raise InputError(f"index {index} is outside the log of size {self.size}")
        data = self.entries(index // TILE_WIDTH)[index % TILE_WIDTH]
        proof = tuple(inclusion_proof(self.nodes, index, self.size))
        _verify_inclusion(hash_leaf(data), index, self.size, proof, self.checkpoint.root_hash)
        return TileEntry(index, data, proof)

    def all_entries(self) -> Iterator[bytes]:
        """Every entry in order, after checking the tiles hash to the checkpoint root."""
        self.verify_root()
        full, partial = tile_widths(self.size, 0)
        for bundle in range(full + (1 if partial else 0)):
            yield from self.entries(bundle)
