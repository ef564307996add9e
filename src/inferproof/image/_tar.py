"""Layers as tar files whose bytes depend only on the files they hold.

A tar written by ``tar`` or Python's defaults carries the build machine's clock,
owners, umask and directory order; two builds of the same files differ. Here every
entry is normalised as reproducible-builds.org prescribes ("Archive metadata"): the
entries are sorted by path, each mtime is ``SOURCE_DATE_EPOCH``, owners are root (0/0,
no names), modes keep only the permission bits that matter (0755 for directories and
executables, 0644 for the rest), and hard links are stored as plain files. Setuid and
setgid bits are dropped: a node runs as one user and needs no program that changes
user, and one fewer such program is one fewer way to root. The one other bit kept is
the sticky bit of a world-writable ``/tmp`` (1777, as Debian's base-files makes it). Only
regular files, directories and symbolic links are taken: a device node or a socket in
a layer is refused.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass

from ..errors import InputError

__all__ = ["LayerFile", "layer_tar"]


@dataclass(frozen=True)
class LayerFile:
    """One entry of a layer: its path inside the image (no leading slash), its kind
    (``file``, ``dir`` or ``symlink``), its content or link target, and whether it is
    executable."""

    path: str
    kind: str
    data: bytes = b""
    target: str = ""
    executable: bool = False
    sticky: bool = False  # a folder anyone may write to, each only their own files


def layer_tar(entries: list[LayerFile], epoch: int) -> bytes:
    """The tar of ``entries``, normalised (module docs). Parent folders missing from
    ``entries`` are added; a path given twice is refused."""
    by_path: dict[str, LayerFile] = {}
    for entry in entries:
        path = _clean(entry.path)
        if path in by_path and by_path[path] != entry:
            raise InputError(f"the layer holds {path} twice, differently")
        by_path[path] = entry
    for path in list(by_path):
        parts = path.split("/")
        for i in range(1, len(parts)):
            by_path.setdefault("/".join(parts[:i]), LayerFile("/".join(parts[:i]), "dir"))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(by_path):
            tar.addfile(*_member(path, by_path[path], epoch))
    return out.getvalue()


def _clean(path: str) -> str:
    parts = [p for p in path.strip("/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise InputError(f"layer path {path!r} is not a path inside the image")
    return "/".join(parts)


def _member(path: str, entry: LayerFile, epoch: int) -> tuple[tarfile.TarInfo, io.BytesIO | None]:
    info = tarfile.TarInfo(path)
    info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
    if entry.kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o1777 if entry.sticky else 0o755
        return info, None
    if entry.kind == "symlink":
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.target
        return info, None
    if entry.kind != "file":
        raise InputError(f"layer entry {path} has unknown kind {entry.kind!r}")
    info.type, info.size = tarfile.REGTYPE, len(entry.data)
    info.mode = 0o755 if entry.executable else 0o644
    return info, io.BytesIO(entry.data)
