"""The full image's parts that need no network: the lock's runtime closure, the Debian
base layer from locked .debs (built here with dpkg-deb, served from the cache), the
sticky /tmp, and the committed debian.lock itself. The whole full build downloads
and compiles for minutes, so it runs in bench/bench_image.py, not in CI."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from inferproof.errors import Error, InputError
from inferproof.image import layer_tar
from inferproof.image._archive import ROOTS, mirror_for
from inferproof.image._debian import read_debian_lock
from inferproof.image._native import debian_entries
from inferproof.image._tar import LayerFile
from inferproof.image._wheels import runtime_names

ROOT = Path(__file__).resolve().parents[2]


def test_the_runtime_closure_keeps_the_node_and_drops_dev_and_extras() -> None:
    names = set(runtime_names((ROOT / "requirements.lock").read_text(),
                              ["onnxruntime", "fastapi", "llama-cpp-python", "httpx"]))  # fmt: skip
    # What these need (their own metadata says so) ...
    assert {"onnxruntime", "numpy", "fastapi", "starlette", "pydantic", "httpx", "httpcore",
            "certifi", "llama-cpp-python", "diskcache", "jinja2"} <= names  # fmt: skip
    # ... and what only the dev and optional extras pin.
    assert not {"pytest", "mypy", "ruff", "mcp", "web3", "ray", "psycopg"} & names


def test_a_root_the_lock_lacks_is_refused() -> None:
    with pytest.raises(InputError, match="pins no not-a-package"):
        runtime_names((ROOT / "requirements.lock").read_text(), ["not-a-package"])


def test_a_via_chain_is_followed() -> None:
    lock = ("a==1 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via inferproof (pyproject.toml)\n"
            "b==1 \\\n    --hash=sha256:" + "1" * 64 + "\n    # via\n    #   a\n    #   z\n"
            "c==1 \\\n    --hash=sha256:" + "2" * 64 + "\n    # via b\n"
            "z==1 \\\n    --hash=sha256:" + "3" * 64 + "\n    # via pytest\n")  # fmt: skip
    assert runtime_names(lock, ["a"]) == ["a", "b", "c"]


def test_the_committed_debian_lock_is_bookworm_and_complete() -> None:
    text = (ROOT / "debian.lock").read_text()
    packages = {p.name: p for p in read_debian_lock(text)}
    assert set(ROOTS) <= set(packages)
    assert {"libc6", "libpython3.11-stdlib", "libssl3", "zlib1g"} <= set(packages)
    assert packages["python3.11"].version.startswith("3.11.")
    assert "# roots: " + " ".join(ROOTS) in text
    assert all(p.architecture in ("amd64", "all") for p in packages.values())
    security = [p for p in packages.values() if mirror_for(p).endswith("debian-security")]
    assert all(p.filename.startswith("pool/updates/") for p in security)


def test_a_sticky_folder_is_1777_and_others_0755() -> None:
    data = layer_tar([LayerFile("tmp", "dir", sticky=True), LayerFile("etc/x", "file", b"1")], 1)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        modes = {m.name: m.mode for m in tar.getmembers()}
    assert modes == {"etc": 0o755, "etc/x": 0o644, "tmp": 0o1777}


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


def _deb(root: Path, name: str, files: dict[str, bytes]) -> tuple[bytes, str]:
    tree = root / f"tree-{name}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: T <t@e.org>\n"
        "Description: test\n")  # fmt: skip
    for path, body in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(body)
    (tree / "tmp").mkdir(exist_ok=True)
    (tree / "tmp").chmod(0o1777)
    out = root / f"{name}.deb"
    subprocess.run(["dpkg-deb", "-Zxz", "--build", "--root-owner-group", str(tree), str(out)],
                   check=True, capture_output=True, env={**os.environ, "SOURCE_DATE_EPOCH": "1"})  # fmt: skip
    data = out.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    line = f"{name} 1.0 amd64 pool/main/{name[0]}/{name}/{name}_1.0_amd64.deb {digest} {len(data)}"
    return data, line


@needs_dpkg
def test_the_base_layer_from_cached_debs(tmp_path: Path) -> None:
    cache = tmp_path / "debs"
    cache.mkdir()
    lines = []
    for name, files in (("base", {"etc/os-release": b"ID=debian\n"}),
                        ("libz", {"lib/x86_64-linux-gnu/libz.so.1": b"\x7fELF"})):  # fmt: skip
        data, line = _deb(tmp_path, name, files)
        (cache / f"{line.split()[4]}.deb").write_bytes(data)
        lines.append(line)
    seen: list[str] = []
    entries, packages = debian_entries("\n".join(lines) + "\n", cache, seen.append,
                                       lambda _: "http://127.0.0.1:9/")  # fmt: skip
    by_path = {e.path: e for e in entries}
    assert [p.name for p in packages] == ["base", "libz"]
    assert by_path["usr/lib/x86_64-linux-gnu/libz.so.1"].data == b"\x7fELF"  # merged /usr
    assert by_path["lib"].kind == "symlink" and by_path["lib"].target == "usr/lib"
    assert by_path["tmp"].sticky and [e.path for e in entries].count("tmp") == 1
    status = by_path["var/lib/dpkg/status"].data.decode()
    assert "Package: base\nStatus: install ok installed\nVersion: 1.0" in status
    assert seen == ["deb 1/2 base 1.0", "deb 2/2 libz 1.0"]
    layer_tar(entries, 1)  # the entries form one layer: no path twice, differently


@needs_dpkg
def test_a_deb_that_is_not_the_locked_one_is_refused(tmp_path: Path) -> None:
    data, line = _deb(tmp_path, "base", {"etc/os-release": b"ID=debian\n"})
    cache = tmp_path / "debs"
    cache.mkdir()
    fields = line.split()
    other, _ = _deb(tmp_path / "o", "base", {"etc/os-release": b"ID=evil\n"})
    (cache / f"{fields[4]}.deb").write_bytes(other[: len(data)].ljust(len(data), b"\0"))
    # The cached file no longer checks, so it is fetched again: here from nowhere.
    with pytest.raises(Error, match="refresh the lock"):
        debian_entries(line + "\n", cache, lambda _: None, lambda _: "http://127.0.0.1:9")
    assert not (cache / f"{fields[4]}.deb").exists()  # the bad file was dropped


def test_an_empty_debian_lock_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="locks no package"):
        debian_entries("# nothing\n", tmp_path, lambda _: None, lambda _: "")


def test_a_compiled_wheel_loses_its_pkg_config_files_and_their_record_lines() -> None:
    from inferproof.image._build import _reproducible

    site = "usr/local/lib/python3.11/dist-packages"
    record = (b"llama_cpp/lib/libllama.so,sha256=abc,10\n"
              b"lib/pkgconfig/llama.pc,sha256=def,327\n"
              b"llama_cpp_python-0.3.36.dist-info/RECORD,,\n")  # fmt: skip
    files = [LayerFile(f"{site}/llama_cpp/lib/libllama.so", "file", b"\x7fELF"),
             LayerFile(f"{site}/lib/pkgconfig/llama.pc", "file", b"prefix=/tmp/tmpab12/x\n"),
             LayerFile(f"{site}/llama_cpp_python-0.3.36.dist-info/RECORD", "file", record)]  # fmt: skip
    kept = {f.path.removeprefix(site + "/"): f.data for f in _reproducible(files)}
    assert set(kept) == {"llama_cpp/lib/libllama.so", "llama_cpp_python-0.3.36.dist-info/RECORD"}
    assert kept["llama_cpp_python-0.3.36.dist-info/RECORD"] == (
        b"llama_cpp/lib/libllama.so,sha256=abc,10\nllama_cpp_python-0.3.36.dist-info/RECORD,,\n")
