"""``build_image``: the node's image from the lock and the committed source.

Inputs, and only these, decide the bytes: the lock (each wheel checked against its
hash), the commit's files (``git archive``) and ``SOURCE_DATE_EPOCH`` (by default the
commit's own time, so anyone rebuilding a commit gets the same image). The build
machine's clock, user, umask, file order and paths never reach the image.

Variants:
- ``reduced``: the project's files and a few of the lock's pure-Python wheels, no
  operating system. It does not run; it is what CI rebuilds on every run to show the
  build is reproducible, in seconds.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import Error, InputError
from ._oci import Component, Image, Layer, require_new, write_layout
from ._tar import layer_tar
from ._wheels import LockedPackage, project_files, read_lock, wheel_files

__all__ = ["VARIANTS", "BuildInputs", "build_image"]

# The reduced variant's wheels: pure-Python (one wheel for every platform), small, and
# in the lock because the project needs them.
_REDUCED = ("rfc8785", "idna", "mdurl", "shellingham", "click")
VARIANTS = ("reduced",)
_PLATFORM = ["--platform", "manylinux2014_x86_64", "--python-version", "3.11",
             "--implementation", "cp", "--abi", "cp311"]  # fmt: skip
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildInputs:
    """Where the build reads from: a git checkout of the project (its lock and source),
    a folder caching downloaded wheels, and the epoch (None: the commit's time)."""

    checkout: Path
    cache: Path
    epoch: int | None = None


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
    lock = read_lock((inputs.checkout / "requirements.lock").read_text())
    version = _version(inputs.checkout)
    files, commit = project_files(inputs.checkout, "inferproof", version)
    epoch = inputs.epoch if inputs.epoch is not None else _commit_time(inputs.checkout, commit)
    wheels, components = [], []
    for name in _REDUCED:
        if name not in lock:
            raise InputError(f"the lock has no {name}, which the {variant} image takes")
        pkg = lock[name]
        say(f"wheel {name}=={pkg.version}")
        wheel = _download(pkg, inputs.cache)
        wheels += wheel_files(wheel, pkg)
        components.append(Component(pkg.name, pkg.version, f"pkg:pypi/{pkg.name}@{pkg.version}",
                                    hashlib.sha256(wheel.read_bytes()).hexdigest()))  # fmt: skip
    say("writing the layers")
    layers = [
        Layer("wheels", layer_tar(wheels, epoch)),
        Layer("inferproof", layer_tar(files, epoch)),
    ]
    config = {"Entrypoint": ["/usr/bin/python3.11", "-m", "inferproof"], "Cmd": ["serve"],
              "Env": ["PYTHONDONTWRITEBYTECODE=1"]}  # fmt: skip
    annotations = {"org.opencontainers.image.revision": commit, "dev.inferproof.variant": variant}
    image = write_layout(out, layers, epoch=epoch, config=config, annotations=annotations)
    # The project's own files: their hash is that of their layer (the commit names them).
    layer = image.layers["inferproof"].split(":", 1)[1]
    own = Component("inferproof", version, f"pkg:generic/inferproof@{version}", layer)
    return replace(image, components=(own, *components), revision=commit, variant=variant,
                   epoch=epoch)  # fmt: skip


def _version(checkout: Path) -> str:
    import tomllib

    project = tomllib.loads((checkout / "pyproject.toml").read_text()).get("project", {})
    return str(project.get("version", "0"))


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
    """The wheel of ``pkg`` from the cache, else from the package index; which file it
    is, the lock's hash decides when it is unpacked."""
    folder = cache / f"{pkg.name}-{pkg.version}"
    found = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    if found:
        return found[0]
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "req.txt"
        req.write_text(
            f"{pkg.name}=={pkg.version} "
            + " ".join(f"--hash=sha256:{h}" for h in sorted(pkg.hashes))
            + "\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             *_PLATFORM, "--require-hashes", "-r", str(req), "-d", str(folder)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    if done.returncode != 0:
        raise Error(f"cannot download {pkg.name}=={pkg.version}: {done.stderr.strip()[-300:]}")
    found = sorted(folder.glob("*.whl"))
    if len(found) != 1:
        raise Error(f"pip gave {len(found)} wheels for {pkg.name}=={pkg.version}")
    return found[0]
