"""``build_image``: the node's image from the lock and the committed source.

Inputs, and only these, decide the bytes: the commit (its lock, its ``debian.lock``,
its ``pyproject.toml`` and its files, each read from git, never the working tree),
every locked file (checked against its hash) and ``SOURCE_DATE_EPOCH`` (by default the
commit's own time, so anyone rebuilding a commit gets the same image). The build
machine's clock, user, umask, file order and paths never reach the image.

Variants:
- ``reduced``: the project's files and a few of the lock's pure-Python wheels, no
  operating system. It does not run; it is what CI rebuilds on every run to show the
  build is reproducible, in seconds.
- ``full``: the node that runs: a Debian bookworm base from ``debian.lock`` (Python
  3.11 and the C/C++ runtimes), every wheel the project's own dependencies need (the
  lock's graph, without its dev and optional extras), llama-cpp-python compiled from
  its locked source, and the project. ``bench/bench_image.py`` builds it twice.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._archive import mirror_for
from ._native import built_wheel, debian_entries, toolchain
from ._oci import Component, Image, Layer, require_new, write_layout
from ._tar import LayerFile, layer_tar
from ._wheels import (
    LockedPackage,
    committed,
    pip_download,
    project_files,
    read_lock,
    resolve_commit,
    runtime_names,
    wheel_files,
)

__all__ = ["VARIANTS", "BuildInputs", "build_image"]

# The reduced variant's wheels: pure-Python (one wheel for every platform), small, and
# in the lock because the project needs them.
_REDUCED = ("rfc8785", "idna", "mdurl", "shellingham", "click")
VARIANTS = ("reduced", "full")
# The image's glibc is bookworm's 2.36, so a wheel for any manylinux from 2_17 (alias
# manylinux2014) to 2_36 runs on it (PEP 600); pip takes the best the index has, the
# same on every machine, and the lock's hashes decide which files may be taken.
_PLATFORM = [a for minor in range(36, 16, -1)
             for a in ("--platform", f"manylinux_2_{minor}_x86_64")] + [
    "--platform", "manylinux2014_x86_64", "--python-version", "3.11",
    "--implementation", "cp", "--abi", "cp311", "--abi", "abi3", "--abi", "none"]  # fmt: skip
Progress = Callable[[str], None]
# Locked packages PyPI has only as source: compiled here (_native), reproducibly.
_FROM_SOURCE = ("llama-cpp-python",)


@dataclass(frozen=True)
class BuildInputs:
    """Where the build reads from: a git checkout of the project and the revision in it
    to build, a folder caching downloads, and the epoch (None: the commit's time)."""

    checkout: Path
    cache: Path
    epoch: int | None = None
    reuse_compiled: bool = True
    revision: str = "HEAD"


def build_image(out: Path, inputs: BuildInputs, variant: str = "reduced",
                progress: Progress | None = None) -> Image:  # fmt: skip
    """Build ``variant`` into the new folder ``out`` (an OCI image layout).

    Example::

        image = build_image(Path("image"), BuildInputs(Path("."), Path("~/.cache/ip")))
        print(image.digest)
    """
    if variant not in VARIANTS:
        raise InputError(f"unknown image variant {variant!r}: one of {', '.join(VARIANTS)}")
    require_new(out)  # before any download: a mistake costs nothing
    say = progress or (lambda _: None)
    commit = resolve_commit(inputs.checkout, inputs.revision)
    lock_text = committed(inputs.checkout, commit, "requirements.lock")
    lock = read_lock(lock_text)
    project = _project(committed(inputs.checkout, commit, "pyproject.toml"))
    version = str(project.get("version", "0"))
    files = project_files(inputs.checkout, "inferproof", version, commit)
    epoch = inputs.epoch if inputs.epoch is not None else _commit_time(inputs.checkout, commit)
    tools: tuple[tuple[str, str], ...] = ()
    if variant == "reduced":
        layers, components = _reduced(lock, inputs, epoch, say)
    else:
        debian = committed(inputs.checkout, commit, "debian.lock")
        deps = [re.split(r"[\s<>=!~\[;(]", d, maxsplit=1)[0] for d in project["dependencies"]]
        layers, components, tools = _full(lock, runtime_names(lock_text, deps), debian, inputs,
                                          epoch, say)  # fmt: skip
    say("writing the layers")
    layers.append(Layer("inferproof", layer_tar(files, epoch)))
    config = {"Entrypoint": ["/usr/bin/python3.11", "-m", "inferproof"], "Cmd": ["serve"],
              "Env": ["PYTHONDONTWRITEBYTECODE=1"]}  # fmt: skip
    annotations = {"org.opencontainers.image.revision": commit, "dev.inferproof.variant": variant}
    image = write_layout(out, layers, epoch=epoch, config=config, annotations=annotations)
    # The project's own files: their hash is that of their layer (the commit names them).
    layer = image.layers["inferproof"].split(":", 1)[1]
    own = Component("inferproof", version, f"pkg:generic/inferproof@{version}", layer)
    return replace(image, components=(own, *components), revision=commit, variant=variant,
                   epoch=epoch, toolchain=tools)  # fmt: skip


def _reduced(lock: dict[str, LockedPackage], inputs: BuildInputs, epoch: int,
             say: Progress) -> tuple[list[Layer], list[Component]]:  # fmt: skip
    wheels, components = [], []
    for name in _REDUCED:
        if name not in lock:
            raise InputError(f"the lock has no {name}, which the reduced image takes")
        entries, component = _wheel(lock[name], inputs, say)
        wheels += entries
        components.append(component)
    return [Layer("wheels", layer_tar(wheels, epoch))], components


Toolchain = tuple[tuple[str, str], ...]


def _full(lock: dict[str, LockedPackage], names: list[str], debian: str, inputs: BuildInputs,
          epoch: int, say: Progress) -> tuple[list[Layer], list[Component], Toolchain]:  # fmt: skip
    debs, packages = debian_entries(debian, inputs.cache / "debs", say, mirror_for)
    components = [Component(p.name, p.version, f"pkg:deb/debian/{p.name}@{p.version}"
                            f"?arch={p.architecture}&distro=debian-12", p.sha256)
                  for p in packages]  # fmt: skip
    wheels: list[LayerFile] = []
    tools: Toolchain = ()
    for name in names:
        pkg = lock[name]
        if name in _FROM_SOURCE:
            wheel, source = built_wheel(pkg, inputs.cache, epoch, say, inputs.reuse_compiled)
            built = hashlib.sha256(wheel.read_bytes()).hexdigest()
            wheels += _reproducible(wheel_files(wheel, replace(pkg, hashes=frozenset({built}))))
            components.append(Component(pkg.name, pkg.version,
                                        f"pkg:pypi/{pkg.name}@{pkg.version}", source))  # fmt: skip
            tools = toolchain()
            continue
        entries, component = _wheel(pkg, inputs, say)
        wheels += entries
        components.append(component)
    return [Layer("debian", layer_tar(debs, epoch)), Layer("wheels", layer_tar(wheels, epoch))], \
        components, tools  # fmt: skip


def _reproducible(files: list[LayerFile]) -> list[LayerFile]:
    """A compiled wheel's files without its pkg-config files, which name the build's
    temporary install prefix (seen: two builds differed only there, and in the RECORD
    lines hashing them); nothing at run time reads them. RECORD loses those lines."""
    out = []
    for f in files:
        if f.path.endswith(".pc"):
            continue
        if f.path.endswith(".dist-info/RECORD"):
            kept = [line for line in f.data.decode().splitlines(keepends=True)
                    if not line.split(",", 1)[0].endswith(".pc")]  # fmt: skip
            f = replace(f, data="".join(kept).encode())
        out.append(f)
    return out


def _wheel(
    pkg: LockedPackage, inputs: BuildInputs, say: Progress
) -> tuple[list[LayerFile], Component]:
    say(f"wheel {pkg.name}=={pkg.version}")
    wheel = _download(pkg, inputs.cache)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    purl = f"pkg:pypi/{pkg.name}@{pkg.version}"
    return wheel_files(wheel, pkg), Component(pkg.name, pkg.version, purl, digest)


def _project(text: str) -> dict[str, Any]:
    """``pyproject.toml``'s ``[project]`` table."""
    import tomllib

    try:
        project = tomllib.loads(text).get("project")
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"pyproject.toml: {exc}") from None
    if not isinstance(project, dict) or not isinstance(project.get("dependencies", []), list):
        raise InputError("pyproject.toml has no [project] table with a dependencies list")
    project.setdefault("dependencies", [])
    return project


def _commit_time(checkout: Path, commit: str) -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env is not None:
        if not env.isdigit():
            raise InputError("SOURCE_DATE_EPOCH must be a whole number of seconds")
        return int(env)
    done = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%ct", commit],
                          capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    return int(done.stdout.strip())


def _download(pkg: LockedPackage, cache: Path) -> Path:
    """The wheel of ``pkg`` for the image's platform, from the cache or the index."""
    options = ["--only-binary=:all:", *_PLATFORM]
    return pip_download(pkg, cache / f"{pkg.name}-{pkg.version}", ".whl", options)
