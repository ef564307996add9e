"""The one place that calls EZKL: quiet output, our errors, checked artifact files.

EZKL 23.0.5's Python functions are all synchronous (earlier releases made
``calibrate_settings``, ``gen_witness``, ``prove``-adjacent and ``get_srs`` return
awaitables; 23.x returns plain values, checked with ``inspect.isawaitable``).
They work on file paths, print tables to the process's stdout from Rust, and
raise ``RuntimeError`` on failure (an invalid proof included).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ezkl

from ..._canonical import sha256_digest
from ...errors import BlobCorruptError, InputError, ZkError
from ...hub import BlobStore

EZKL_VERSION: str = str(getattr(ezkl, "__version__", "unknown"))

_FD_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet() -> Iterator[Callable[[], str]]:
    """Send fd 1 and 2 to a temporary file while EZKL runs (it prints from Rust)."""
    with _FD_LOCK, tempfile.TemporaryFile(mode="w+b") as sink:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)

            def captured() -> str:
                sink.seek(0)
                return sink.read()[-2000:].decode("utf-8", "replace")

            yield captured
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def call(step: str, func: Callable[..., Any], *args: Any, user_error: bool = True) -> Any:
    """Run one EZKL function quietly; its failure becomes InputError (or ZkError)."""
    with _quiet() as captured:
        try:
            result = func(*args)
            if inspect.isawaitable(result):  # older EZKL releases; see module docstring
                import asyncio

                result = asyncio.run(result)  # type: ignore[arg-type]
        except Exception as exc:  # EZKL raises bare RuntimeError/ValueError from Rust
            log = captured().strip().splitlines()
            tail = f" ({log[-1][:300]})" if log else ""
            cls = InputError if user_error else ZkError
            raise cls(f"EZKL {step} failed: {exc}{tail}") from exc
    if result is False:
        raise (InputError if user_error else ZkError)(f"EZKL {step} returned failure")
    return result


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ZkError(f"EZKL wrote no readable {what}: {exc}") from exc


# Large artifacts (proving keys of hundreds of MiB, SRS files) are hashed once per
# process and file state: re-hashing a 300 MiB key costs ~0.3 s on this machine,
# about 8% of a 4 s proof, against the 10% budget for warm proving.
_VERIFIED: dict[str, tuple[int, int, int]] = {}


def _stat_key(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _hash_file(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def artifact_path(store: BlobStore, digest: str, workdir: Path, name: str) -> Path:
    """A local file holding the blob ``digest``, its bytes checked against the digest.

    The store's own file is used in place when it has one (no copy of large keys);
    otherwise the checked bytes are written under ``workdir``.
    """

    local = store.path(digest)
    if local is not None:
        key = _stat_key(local)
        if _VERIFIED.get(digest) != key:
            actual = _hash_file(local)
            if actual != digest:
                raise BlobCorruptError(
                    f"blob {digest} ({name}) is corrupt: its bytes hash to {actual}; "
                    "refusing to use it"
                )
            _VERIFIED[digest] = key
        return local
    target = workdir / name
    target.write_bytes(store.get(digest))
    return target


def put_file(store: BlobStore, path: Path) -> str:
    """Store a file EZKL wrote and return its digest."""
    data = path.read_bytes()
    digest = store.put(data)
    if digest != sha256_digest(data):
        raise ZkError(f"blob store returned {digest} for {path.name}, not its sha256")
    return digest
