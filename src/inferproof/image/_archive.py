"""Reading Debian's archive to make (or refresh) ``debian.lock``.

A lock is only as good as the index it was made from, so the index is authenticated
the way apt does it (Debian wiki, "SecureApt"): the suite's ``InRelease`` is a
clear-signed file checked with ``gpgv`` against Debian's archive keyring, it lists
the SHA-256 and size of every index file, and ``Packages.xz`` is used only once it has
that size and hash. Of the three suites a bookworm system takes (the release, its
updates and its security archive) the highest version of each package wins, as apt's
default pinning would choose.

Only locking reads the archive; a build reads the lock, whose hashes decide every byte
(``_debian``). The mirror is then only a transport: a hostile one can refuse to serve a
file, never change one.

Example::

    from inferproof.image import lock_debian_base

    Path("debian.lock").write_text(lock_debian_base(("python3.11", "libgomp1")))
"""

from __future__ import annotations

import datetime as dt
import hashlib
import lzma
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from ..errors import Error, InputError, VerificationError
from ._debian import (
    MIRROR,
    DebPackage,
    debian_lock,
    parse_packages,
    resolve,
    version_compare,
)
from ._http import http_get

__all__ = ["SUITES", "Suite", "fetch_index", "lock_debian_base", "mirror_for", "signed_index"]

SECURITY = "http://deb.debian.org/debian-security"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# The base of a node image: Python and the C/C++ runtimes the locked binary wheels
# link against (onnxruntime: libstdc++ and libgcc_s; llama.cpp: libgomp for OpenMP).
# No ca-certificates: its bundle is made by a maintainer script, which never runs
# here; the node's HTTPS clients take certifi's bundle from the locked wheels.
ROOTS = ("python3.11", "libstdc++6", "libgcc-s1", "libgomp1")
_MAX_RELEASE = 4 * 1024**2  # bookworm's InRelease is about 150 KiB
_MAX_XZ = 64 * 1024**2  # bookworm's main/binary-amd64/Packages.xz is about 9 MiB
_MAX_INDEX = 256 * 1024**2
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Suite:
    """A suite of a Debian mirror: its base URL, name, and the component and
    architecture whose ``Packages`` index is read."""

    mirror: str
    name: str
    component: str = "main"
    architecture: str = "amd64"


SUITES = (
    Suite(MIRROR, "bookworm"),
    Suite(MIRROR, "bookworm-updates"),
    Suite(SECURITY, "bookworm-security"),
)


def mirror_for(pkg: DebPackage) -> str:
    """The mirror that serves ``pkg``'s file: Debian's security archive keeps its
    pool under ``pool/updates/``, which the main archive has none of."""
    return SECURITY if pkg.filename.startswith("pool/updates/") else MIRROR


def signed_index(inrelease: bytes, keyring: Path = KEYRING,
                 now: dt.datetime | None = None) -> dict[str, tuple[int, str]]:  # fmt: skip
    """The index files a clear-signed ``InRelease`` lists, ``path -> (size, sha256)``,
    once ``gpgv`` finds a good signature by a key of ``keyring``; a suite whose
    ``Valid-Until`` has passed is refused (an old index replayed by a mirror).

    Example::

        files = signed_index(Path("InRelease").read_bytes())
        size, sha256 = files["main/binary-amd64/Packages.xz"]
    """
    return _files(_signed_fields(inrelease, keyring, now))


def _signed_fields(inrelease: bytes, keyring: Path, now: dt.datetime | None) -> dict[str, str]:
    if len(inrelease) > _MAX_RELEASE:
        raise InputError(f"InRelease is over {_MAX_RELEASE} bytes")
    fields = _release_fields(_gpgv(inrelease, keyring))
    until = fields.get("valid-until")
    if until is not None:
        try:
            expires = parsedate_to_datetime(until)
        except (TypeError, ValueError):
            raise InputError(f"InRelease: Valid-Until {until!r:.60} is not a date") from None
        if expires < (now or dt.datetime.now(dt.UTC)):
            raise VerificationError("debian.release", f"the index expired at {until}")
    return fields


def _files(fields: dict[str, str]) -> dict[str, tuple[int, str]]:
    files: dict[str, tuple[int, str]] = {}
    for line in fields.get("sha256", "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and len(parts[0]) == 64:
            files[parts[2]] = (int(parts[1]), parts[0].lower())
    if not files:
        raise InputError("InRelease lists no SHA256 index files")
    return files


def _gpgv(signed: bytes, keyring: Path) -> str:
    if not keyring.is_file():
        raise Error(f"no Debian archive keyring at {keyring}: install debian-archive-keyring")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "InRelease", Path(tmp) / "content"
        src.write_bytes(signed)
        try:
            done = subprocess.run(
                ["gpgv", "--keyring", str(keyring), "--output", str(out), str(src)],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        except FileNotFoundError:
            raise Error("gpgv is not installed: it checks the archive's signature") from None
        if done.returncode != 0 or not out.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise VerificationError("debian.release", f"InRelease's signature: {last:.200}")
        return out.read_text(errors="replace")


def _release_fields(text: str) -> dict[str, str]:
    """A Release file's fields (deb822: ``Name: value``, continuation lines indented),
    keyed by lowercase name."""
    fields: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith((" ", "\t")) and name:
            fields[name] += "\n" + line.strip()
        elif ":" in line:
            name, value = line.split(":", 1)
            name = name.strip().lower()
            fields[name] = value.strip()
    return fields


def fetch_index(suite: Suite, keyring: Path = KEYRING) -> tuple[dict[str, DebPackage], str]:
    """The packages of ``suite`` (its authenticated ``Packages`` index) and the date
    its ``InRelease`` was signed.

    Example::

        packages, date = fetch_index(SUITES[0])
    """
    base = f"{suite.mirror.rstrip('/')}/dists/{suite.name}"
    inrelease = _get(f"{base}/InRelease", _MAX_RELEASE)
    fields = _signed_fields(inrelease, keyring, None)
    files = _files(fields)
    path = f"{suite.component}/binary-{suite.architecture}/Packages.xz"
    if path not in files:
        raise Error(f"{suite.name}'s InRelease lists no {path}")
    size, sha256 = files[path]
    if size > _MAX_XZ:
        raise InputError(f"{suite.name}: {path} is {size} bytes, over {_MAX_XZ}")
    try:
        data = _get(f"{base}/{path}", size)
    except InputError:
        raise VerificationError("debian.index", f"{suite.name} {path} is longer than the "
                                f"{size} bytes InRelease says") from None  # fmt: skip
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != size or digest != sha256:
        raise VerificationError(
            "debian.index", f"{suite.name} {path} hashes to sha256:{digest} ({len(data)} "
            f"bytes), InRelease says sha256:{sha256}",
        )  # fmt: skip
    try:
        dec = lzma.LZMADecompressor()
        text = dec.decompress(data, _MAX_INDEX + 1)
    except lzma.LZMAError as exc:
        raise InputError(f"{suite.name} {path} does not decompress: {exc}") from None
    if len(text) > _MAX_INDEX or not dec.eof:
        raise InputError(f"{suite.name} {path} unpacks to over {_MAX_INDEX} bytes")
    return parse_packages(text.decode("utf-8", "replace")), fields.get("date", "?")


def lock_debian_base(roots: tuple[str, ...] = ROOTS, suites: tuple[Suite, ...] = SUITES,
              keyring: Path = KEYRING, progress: Progress | None = None) -> str:  # fmt: skip
    """The text of a Debian lock for ``roots`` and their dependencies, from the
    authenticated indexes of ``suites`` (the highest version of each package wins).

    Example::

        Path("debian.lock").write_text(lock_debian_base())
    """
    say = progress or (lambda _: None)
    merged: dict[str, DebPackage] = {}
    notes = []
    for suite in suites:
        say(f"index {suite.name}")
        packages, date = fetch_index(suite, keyring)
        notes.append(f"from {suite.mirror} {suite.name} {suite.component} "
                     f"{suite.architecture}, signed {date}")  # fmt: skip
        for name, pkg in packages.items():
            if name not in merged or version_compare(pkg.version, merged[name].version) > 0:
                merged[name] = pkg
    chosen = resolve(merged, list(roots))
    say(f"{len(chosen)} packages")
    return debian_lock(chosen, (*notes, f"roots: {' '.join(roots)}"))


def _get(url: str, cap: int) -> bytes:
    return http_get(url, cap, InputError(f"{url} is over {cap} bytes"))
