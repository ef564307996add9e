"""The Python layers: locked wheels unpacked into site-packages, and the project's own
files, each file where ``pip install`` would put it and nothing of the build machine.

A wheel is a zip of the files to install (PEP 427, "Installing a wheel"); unpacking it
is copying those files, which is deterministic, where ``pip install`` also writes
``INSTALLER``, a ``RECORD`` with its own paths and, by default, ``.pyc`` files stamped
with the build machine's clock. Scripts are not generated: the image runs
``python3.11 -m inferproof``. Every wheel is checked against the hash the lock gives
for it before a byte of it is used.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import Error, InputError, VerificationError
from ._tar import LayerFile

__all__ = ["LockedPackage", "committed", "pip_download", "project_files", "read_lock",
           "resolve_commit",
           "runtime_names", "wheel_files"]  # fmt: skip

# Debian's python3.11 looks for locally installed packages here, not in site-packages
# (Debian Python Policy, 1.5 "Module Path"; `python3.11 -m site` on bookworm lists it).
SITE = "usr/local/lib/python3.11/dist-packages"
# A requirement line of a hash-pinned lock: `name==version \` then `--hash=sha256:...`.
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
_MAX_WHEEL = 1024**3
_MAX_MEMBERS = 100_000


@dataclass(frozen=True)
class LockedPackage:
    """A pinned package of the lock and the hashes of the files it allows."""

    name: str
    version: str
    hashes: frozenset[str]


def read_lock(text: str) -> dict[str, LockedPackage]:
    """The packages of a ``--generate-hashes`` lock (pip's hash-checking format)."""
    out: dict[str, LockedPackage] = {}
    current: tuple[str, str] | None = None
    hashes: set[str] = set()
    for line in [*text.splitlines(), ""]:
        pin = _PIN.match(line)
        if pin or not line.startswith((" ", "\t")):
            if current is not None:
                out[_norm(current[0])] = LockedPackage(
                    _norm(current[0]), current[1], frozenset(hashes)
                )
            current, hashes = ((pin.group(1), pin.group(2)) if pin else None), set()
        hashes.update(_HASH.findall(line))
    return out


def runtime_names(text: str, roots: list[str]) -> list[str]:
    """The lock's packages that ``roots`` need: the lock's own dependency graph, read
    from the ``# via`` comments pip-compile and uv write under each pin (a package is
    needed when a needed package is among its "via"), so the dev and optional extras
    the lock also pins stay out. Sorted; a root the lock lacks is refused."""
    parents: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        pin = _PIN.match(line)
        if pin:
            current = _norm(pin.group(1))
            parents.setdefault(current, set())
            continue
        body = line.strip().removeprefix("#").strip()
        if current is None or not line.startswith((" ", "\t")) or not line.strip().startswith("#"):
            continue
        body = body.removeprefix("via").strip()
        if body and not body.startswith("-r "):
            parents[current].add(_norm(body.split(" ", 1)[0]))
    needed = {_norm(r) for r in roots}
    missing = sorted(needed - set(parents))
    if missing:
        raise InputError(f"the lock pins no {', '.join(missing)}")
    while True:
        more = {name for name, via in parents.items() if via & needed} - needed
        if not more:
            return sorted(needed)
        needed |= more


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503 normalised name


def wheel_files(wheel: Path, locked: LockedPackage) -> list[LayerFile]:
    """The files ``wheel`` installs, under site-packages; refused unless its hash is one
    the lock allows for ``locked`` and every member stays inside site-packages."""
    if wheel.stat().st_size > _MAX_WHEEL:
        raise InputError(f"{wheel.name} is over {_MAX_WHEEL} bytes")
    data = wheel.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest not in locked.hashes:
        raise VerificationError(
            "image.wheel", f"{wheel.name} (sha256:{digest}) is not a file the lock allows for "
            f"{locked.name}=={locked.version}",
        )  # fmt: skip
    out: list[LayerFile] = []
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = zf.infolist()
            if len(members) > _MAX_MEMBERS:
                raise InputError(f"{wheel.name} has over {_MAX_MEMBERS} members")
            for m in members:
                if m.is_dir():
                    continue
                path = _inside(m.filename, wheel.name)
                executable = bool((m.external_attr >> 16) & 0o111)
                out.append(LayerFile(f"{SITE}/{path}", "file", zf.read(m), executable=executable))
    except zipfile.BadZipFile as exc:
        raise InputError(f"{wheel.name} is not a wheel: {exc}") from None
    return out


def _inside(name: str, wheel: str) -> str:
    parts = name.split("/")
    if name.startswith("/") or ".." in parts or "\\" in name or not name:
        raise InputError(f"{wheel}: member {name!r:.80} would land outside site-packages")
    # PEP 427: a .data/ folder's scripts, headers and data go elsewhere; this image has
    # no use for them, and a wheel that needs them is not one it takes.
    if len(parts) > 1 and parts[0].endswith(".data"):
        raise InputError(f"{wheel}: {name!r:.80} is a .data file, which the image does not install")
    return name


def resolve_commit(checkout: Path, revision: str) -> str:
    """The full commit id ``revision`` (``HEAD``, a branch, a commit) names in ``checkout``."""
    if revision.startswith("-") or not re.fullmatch(r"[A-Za-z0-9._/^~-]{1,200}", revision):
        raise InputError(f"{revision!r:.80} is not a git revision")
    try:
        return _git(checkout, "rev-parse", "--verify", "--end-of-options",
                    f"{revision}^{{commit}}").decode().strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        raise InputError(f"{checkout} is not a git checkout holding commit {revision}") from None


def committed(checkout: Path, commit: str, path: str) -> str:
    """The text of ``path`` as ``commit`` holds it: never the working tree, whose
    uncommitted edits the provenance, which names only the commit, would not show."""
    try:
        return _git(checkout, "show", f"{commit}:{path}").decode()
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        raise InputError(f"commit {commit[:12]} has no {path}") from None


def project_files(checkout: Path, name: str, version: str, commit: str) -> list[LayerFile]:
    """The project's own package as ``commit`` holds it (``git archive``: no build
    output, cache or uncommitted edit of the machine), with a dist-info naming it."""
    try:
        archive = _git(checkout, "archive", "--format=tar", commit, "--", "src/inferproof")
    except (OSError, subprocess.SubprocessError) as exc:
        raise Error(f"the image is built from a git checkout of the project: {exc}") from None
    out = []
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            data = tar.extractfile(member)
            assert data is not None
            out.append(LayerFile(f"{SITE}/{member.name.removeprefix('src/')}", "file",
                                 data.read(), executable=bool(member.mode & 0o111)))  # fmt: skip
    if not out:
        raise InputError(f"{checkout} holds no committed src/inferproof")
    info = f"{SITE}/{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    out.append(LayerFile(f"{info}/METADATA", "file", meta))
    return out


def pip_download(pkg: LockedPackage, folder: Path, kind: str, options: list[str]) -> Path:
    """The one file of ``pkg`` in ``folder`` whose name ends in ``kind`` (a cached one,
    else fetched with ``pip download --require-hashes`` and ``options``); the lock's
    hashes decide whether pip takes a file, and they are checked again where it is used."""
    found = sorted(folder.glob(f"*{kind}")) if folder.is_dir() else []
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "req.txt"
        pins = " ".join(f"--hash=sha256:{h}" for h in sorted(pkg.hashes))
        req.write_text(f"{pkg.name}=={pkg.version} {pins}\n")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", *options,
             "--require-hashes", "-r", str(req), "-d", str(folder)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    if done.returncode != 0:
        raise Error(f"cannot download {pkg.name}=={pkg.version}: {done.stderr.strip()[-300:]}")
    found = sorted(folder.glob(f"*{kind}"))
    if len(found) != 1:
        raise Error(f"pip gave {len(found)} {kind} files for {pkg.name}=={pkg.version}")
    return found[0]


def _git(checkout: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True,
                          check=True, timeout=120).stdout  # fmt: skip
