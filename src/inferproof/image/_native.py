"""The full image's two native parts: the Debian base layer from ``debian.lock``, and
the wheel of a locked package PyPI has only as source (llama-cpp-python), compiled so
that its bytes depend on the source and the toolchain, not on the build machine.

What makes a C/C++ build reproducible (reproducible-builds.org, "Build path" and
"Timestamps"): the same source at the same path, the path mapped out of debug
information and ``__FILE__`` (``-ffile-prefix-map``), ``SOURCE_DATE_EPOCH`` for any
embedded date, and code generated for a named CPU rather than the build machine's
(``GGML_NATIVE=OFF``; with it on, llama.cpp compiles with ``-march=native`` and the
library would differ by machine, and crash on an older CPU). The compiler itself is an
input: its version is recorded in the provenance, and two builds agree when it does.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

from ..errors import Error, InputError, VerificationError
from ._debian import (
    DebPackage,
    deb_files,
    dpkg_status,
    fetch_deb,
    read_debian_lock,
    usrmerge_links,
)
from ._tar import LayerFile
from ._wheels import LockedPackage, pip_download

__all__ = ["built_wheel", "debian_entries", "toolchain"]

# A fixed build folder, the same on every machine (not $TMPDIR, which varies): the
# source path is one of the build's inputs, and -ffile-prefix-map maps it to /build.
BUILD_ROOT = Path("/tmp/inferproof-build")
# Per package, what its build needs to be reproducible (module docs).
_BUILD_ENV = {"llama-cpp-python": {"CMAKE_ARGS": "-DGGML_NATIVE=OFF"}}
_MAX_SDIST = 256 * 1024**2
Progress = Callable[[str], None]


def debian_entries(
    lock_text: str, cache: Path, say: Progress, mirror: Callable[[DebPackage], str]
) -> tuple[list[LayerFile], list[DebPackage]]:
    """The entries of the Debian base layer: merged-/usr links, every locked ``.deb``'s
    files (each checked against the lock's SHA-256 first), dpkg's status file and a
    world-writable, sticky ``/tmp``."""
    packages = read_debian_lock(lock_text)
    if not packages:
        raise InputError("debian.lock locks no package")
    entries = usrmerge_links()
    for n, pkg in enumerate(packages, 1):
        say(f"deb {n}/{len(packages)} {pkg.name} {pkg.version}")
        try:
            data = fetch_deb(pkg, cache, mirror(pkg))
        except Error as exc:
            raise Error(f"{exc}; if the mirror no longer has this version, refresh the lock "
                        "with `inferproof image lock`") from None  # fmt: skip
        entries += deb_files(data, pkg)
    entries = [e for e in entries if e.path != "tmp"]  # base-files' own, without its mode
    entries += [dpkg_status(packages), LayerFile("tmp", "dir", sticky=True)]
    return entries, packages


def toolchain() -> tuple[tuple[str, str], ...]:
    """The compiler and build tools a source build here uses, by version, for the
    provenance: a rebuild agrees when these do."""
    out = [("python", sys.version.split()[0])]
    for tool in ("gcc", "g++", "cmake"):
        try:
            done = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30)
            out.append((tool, (done.stdout.splitlines() or ["?"])[0].strip()))
        except (OSError, subprocess.SubprocessError):
            out.append((tool, "missing"))
    return tuple(out)


def built_wheel(pkg: LockedPackage, cache: Path, epoch: int, say: Progress,
                reuse: bool = True) -> tuple[Path, str]:  # fmt: skip
    """The wheel of ``pkg`` compiled from its locked source distribution, and the
    source's SHA-256. The source is checked against the lock before it is unpacked;
    the result is cached by that hash and the epoch (``reuse=False`` compiles again)."""
    sdist = _sdist(pkg, cache)
    source_hash = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if source_hash not in pkg.hashes:
        raise VerificationError(
            "image.sdist", f"{sdist.name} (sha256:{source_hash}) is not a file the lock "
            f"allows for {pkg.name}=={pkg.version}",
        )  # fmt: skip
    out = cache / f"built-{pkg.name}-{pkg.version}-{source_hash[:16]}-{epoch}"
    found = sorted(out.glob("*.whl")) if out.is_dir() else []
    if found and reuse:
        return found[0], source_hash
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    with open(BUILD_ROOT / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # one build at a time uses the fixed folder
        wheel = _compile(pkg, sdist, out, epoch, say)
    return wheel, source_hash


def _sdist(pkg: LockedPackage, cache: Path) -> Path:
    sdist = pip_download(pkg, cache / f"sdist-{pkg.name}-{pkg.version}", ".tar.gz",
                         ["--no-binary=:all:"])  # fmt: skip
    if sdist.stat().st_size > _MAX_SDIST:
        raise InputError(f"{sdist.name} is over {_MAX_SDIST} bytes")
    return sdist


def _compile(pkg: LockedPackage, sdist: Path, out: Path, epoch: int, say: Progress) -> Path:
    root = BUILD_ROOT / pkg.name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(root, filter="data")  # PEP 706: no links out, no absolute paths
    tops = [p for p in root.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise InputError(f"{sdist.name} does not hold one top folder")
    prefix = f"-ffile-prefix-map={root}=/build"
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "CFLAGS": prefix,
           "CXXFLAGS": prefix, **_BUILD_ENV.get(pkg.name, {})}  # fmt: skip
    say(f"compiling {pkg.name}=={pkg.version} from source (minutes)")
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
         f"--config-settings=build-dir={root}/build", str(tops[0])],
        capture_output=True, text=True, env=env, timeout=3600,
    )  # fmt: skip
    if done.returncode != 0:
        raise Error(f"compiling {pkg.name} failed: {done.stderr.strip()[-400:]}")
    found = sorted(out.glob("*.whl"))
    if len(found) != 1:
        raise Error(f"compiling {pkg.name} gave {len(found)} wheels")
    return found[0]
