"""Which setup record belongs to which model and options.

A :class:`SetupIndex` maps ``(model digest, options key)`` to the digest of a
:class:`~inferproof.proofs.zk.ZkSetup` record held in the BlobStore. The default
implementation is one JSON file; the hub may implement the same Protocol on its
SQLite registry.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..._canonical import canonical_json, check_digest, parse_json
from ..._files import locked, write_atomic
from ...errors import InputError


@runtime_checkable
class SetupIndex(Protocol):
    """Where setup records are found again by model digest and options key."""

    def get(self, model_digest: str, key: str) -> str | None:
        """The setup record digest stored for this model and key, or None."""
        ...

    def put(self, model_digest: str, key: str, setup_record_digest: str) -> None:
        """Remember the setup record digest for this model and key."""
        ...


class JsonSetupIndex:
    """A SetupIndex kept in ``<directory>/index.json``, rewritten atomically.

    Example::

        index = JsonSetupIndex(Path("~/.inferproof/zk").expanduser())
        index.put(model_digest, key, record_digest)
        assert index.get(model_digest, key) == record_digest
    """

    # One entry is ~250 bytes; 16 MiB holds tens of thousands of set-up models.
    MAX_BYTES = 16 * 1024 * 1024

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._file = directory / "index.json"

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = self._file.read_bytes()
        except FileNotFoundError:
            return {}
        obj = parse_json(data, "ZK setup index", max_bytes=self.MAX_BYTES)
        if not isinstance(obj, dict) or not all(
            isinstance(v, dict) and all(isinstance(d, str) for d in v.values())
            for v in obj.values()
        ):
            raise InputError(f"ZK setup index {self._file} is malformed")
        return obj

    def get(self, model_digest: str, key: str) -> str | None:
        found = self._load().get(model_digest, {}).get(key)
        return None if found is None else check_digest(found, "indexed setup digest")

    def entries(self, model_digest: str) -> list[str]:
        """Every setup record digest indexed for ``model_digest`` (any options)."""
        found = self._load().get(model_digest, {})
        return [check_digest(d, "indexed setup digest") for d in found.values()]

    def put(self, model_digest: str, key: str, setup_record_digest: str) -> None:
        check_digest(setup_record_digest, "setup record digest")
        # Read-modify-write under a lock: two processes setting up two models must not
        # lose one of the entries.
        with locked(self._file.with_name(self._file.name + ".lock")):
            entries = self._load()
            entries.setdefault(model_digest, {})[key] = setup_record_digest
            write_atomic(self._file, canonical_json(entries), mode=0o644)

    def __repr__(self) -> str:
        return f"JsonSetupIndex({json.dumps(str(self._file.parent))})"
