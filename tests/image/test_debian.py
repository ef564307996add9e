"""The Debian base layer: real .deb files made here by Debian's dpkg-deb are extracted
into layer entries (merged /usr, executable bits, links, hard links), a .deb that is
not the locked one or that holds a hostile member is refused, the Packages index is
resolved and locked, and fetching takes a pre-seeded cache (no network: an
unreachable mirror is 127.0.0.1's discard port).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from inferproof.errors import Error, InputError, VerificationError
from inferproof.image import _debian, layer_tar
from inferproof.image._debian import (
    DebPackage,
    deb_files,
    debian_lock,
    dpkg_status,
    fetch_deb,
    parse_packages,
    read_debian_lock,
    resolve,
    usrmerge_links,
    version_compare,
)

EPOCH = 1_700_000_000
CONTROL = (
    "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\n"
    "Maintainer: Test <test@example.org>\nDescription: a test package\n"
)
HELLO = b"#!/bin/sh\necho hello\n"
LIBFOO = b"\x7fELF not really a library\n"

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


def _tree(root: Path) -> Path:
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(CONTROL)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "hello").write_bytes(HELLO)
    (root / "usr" / "bin" / "hello").chmod(0o755)
    os.link(root / "usr" / "bin" / "hello", root / "usr" / "bin" / "hi")
    lib = root / "lib" / "x86_64-linux-gnu"
    lib.mkdir(parents=True)
    (lib / "libfoo.so.1").write_bytes(LIBFOO)
    (lib / "libfoo.so.1").chmod(0o644)
    (lib / "libfoo.so").symlink_to("libfoo.so.1")
    (lib / "libbar.so").symlink_to("../../usr/lib/bar/libbar.so")
    (root / "etc").mkdir()
    (root / "etc" / "hello.conf").write_text("greeting=hello\n")
    return root


def _build(tmp: Path, compression: str = "xz") -> bytes:
    out = tmp / f"hello-{compression}.deb"
    subprocess.run(["dpkg-deb", f"-Z{compression}", "--build", "--root-owner-group",
                    str(_tree(tmp / f"root-{compression}")), str(out)],
                   check=True, capture_output=True, env={**os.environ, "SOURCE_DATE_EPOCH": "1"})  # fmt: skip
    return out.read_bytes()


def _pkg(data: bytes, name: str = "hello", size: int | None = None) -> DebPackage:
    return DebPackage(name, "1.0-1", "amd64", f"pool/main/h/{name}/{name}_1.0-1_amd64.deb",
                      len(data) if size is None else size, hashlib.sha256(data).hexdigest())  # fmt: skip


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _build(tmp_path_factory.mktemp("deb"))


# --- extraction ---------------------------------------------------------------------


def test_entries_are_mapped_to_merged_usr_with_bits_links_and_content(deb: bytes) -> None:
    entries = {e.path: e for e in deb_files(deb, _pkg(deb))}
    hello = entries["usr/bin/hello"]
    assert (hello.kind, hello.data, hello.executable) == ("file", HELLO, True)
    # The hard link is a plain file with the linked content.
    assert (entries["usr/bin/hi"].kind, entries["usr/bin/hi"].data) == ("file", HELLO)
    lib = entries["usr/lib/x86_64-linux-gnu/libfoo.so.1"]
    assert (lib.kind, lib.data, lib.executable) == ("file", LIBFOO, False)
    assert entries["usr/lib/x86_64-linux-gnu/libfoo.so"].target == "libfoo.so.1"
    # A relative link that climbed out of lib/ would miss once under usr/lib: it is
    # written as the absolute path it meant.
    assert entries["usr/lib/x86_64-linux-gnu/libbar.so"].target == "/usr/lib/bar/libbar.so"
    assert entries["etc/hello.conf"].data == b"greeting=hello\n"
    assert entries["usr/lib"].kind == "dir"
    assert not [p for p in entries if p.split("/")[0] in ("lib", "bin", "DEBIAN")]
    assert "./" not in entries and "" not in entries


@pytest.mark.parametrize("compression", ["gzip", "xz", "none"])
def test_each_stdlib_compression_gives_the_same_entries(
    tmp_path: Path, deb: bytes, compression: str
) -> None:
    data = _build(tmp_path, compression)
    assert sorted(deb_files(data, _pkg(data)), key=lambda e: e.path) == sorted(
        deb_files(deb, _pkg(deb)), key=lambda e: e.path
    )


def test_zstd_is_refused_clearly(tmp_path: Path) -> None:
    try:
        data = _build(tmp_path, "zstd")
    except subprocess.CalledProcessError:
        pytest.skip("this dpkg-deb cannot write zstd")
    with pytest.raises(InputError, match="zstd"):
        deb_files(data, _pkg(data))


def test_the_same_deb_gives_the_same_layer_bytes(deb: bytes) -> None:
    first = layer_tar(usrmerge_links() + deb_files(deb, _pkg(deb)), EPOCH)
    second = layer_tar(usrmerge_links() + deb_files(bytes(deb), _pkg(deb)), EPOCH)
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert tar.getmember("usr/bin/hello").mode == 0o755
        assert tar.getmember("lib").linkname == "usr/lib"


def test_usrmerge_links() -> None:
    links = {e.path: e.target for e in usrmerge_links()}
    assert links == {d: f"usr/{d}" for d in ("bin", "lib", "lib32", "lib64", "libx32", "sbin")}
    assert {e.kind for e in usrmerge_links()} == {"symlink"}


def test_a_flipped_byte_is_refused(deb: bytes) -> None:
    pkg = _pkg(deb)
    flipped = bytearray(deb)
    flipped[len(deb) // 2] ^= 1
    with pytest.raises(VerificationError) as exc:
        deb_files(bytes(flipped), pkg)
    assert exc.value.check == "image.deb" and pkg.sha256 in str(exc.value)


def test_a_wrong_size_is_refused(deb: bytes) -> None:
    with pytest.raises(VerificationError, match="bytes, the lock says") as exc:
        deb_files(deb, _pkg(deb, size=len(deb) + 1))
    assert exc.value.check == "image.deb"


# --- hostile .deb files, written by hand -------------------------------------------


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = b"!<arch>\n"
    for name, body in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n".encode()
        assert len(header) == 60
        out += header + body + (b"\n" if len(body) % 2 else b"")
    return out


def _tar(members: list[tarfile.TarInfo], bodies: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for m in members:
            body = (bodies or {}).get(m.name)
            if body is not None:
                m.size = len(body)
            tar.addfile(m, io.BytesIO(body) if body is not None else None)
    return out.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    return info


def _hand_deb(data_tar: bytes, member: str = "data.tar.gz") -> bytes:
    control = _tar([_info("./control")], {"./control": CONTROL.encode()})
    if member.endswith(".gz"):
        z = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
        data_tar = z.compress(data_tar) + z.flush()
    return _ar([("debian-binary", b"2.0\n"), ("control.tar", control), (member, data_tar)])


def test_a_hand_written_deb_is_read(deb: bytes) -> None:
    data = _hand_deb(_tar([_info("./usr", tarfile.DIRTYPE), _info("./usr/x")],
                          {"./usr/x": b"x"}))  # fmt: skip
    assert {e.path: e.data for e in deb_files(data, _pkg(data))} == {"usr": b"", "usr/x": b"x"}


@pytest.mark.parametrize(
    ("member", "match"),
    [
        (_info("./../etc/passwd"), "outside the image"),
        (_info("./usr/../../x"), "outside the image"),
        (_info("/etc/passwd"), "absolute"),
        (_info("./dev/sda", tarfile.BLKTYPE), "device"),
        (_info("./dev/null", tarfile.CHRTYPE), "device"),
        (_info("./run/fifo", tarfile.FIFOTYPE), "fifo"),
        (_info("./usr/bin/x", tarfile.LNKTYPE, "./usr/bin/missing"), "no earlier file"),
    ],
)
def test_a_hostile_member_is_refused(member: tarfile.TarInfo, match: str) -> None:
    data = _hand_deb(_tar([member]))
    with pytest.raises(InputError, match=match):
        deb_files(data, _pkg(data))


def test_a_path_given_twice_differently_is_refused() -> None:
    # lib/x and usr/lib/x are the same file on a merged-/usr system.
    members = [_info("./lib/x"), _info("./usr/lib/x")]
    data = _hand_deb(_tar(members, {"./lib/x": b"a", "./usr/lib/x": b"b"}))
    with pytest.raises(InputError, match="twice"):
        deb_files(data, _pkg(data))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"PK\x03\x04 a zip", "no ar magic"),
        (b"!<arch>\ndebian-binary   0", "truncated or malformed"),
        (_ar([("debian-binary", b"2.0\n")])[:-3], "runs past the end"),
        (_ar([("control.tar", b""), ("data.tar", b"")]), "not a version 2"),
        (_ar([("debian-binary", b"2.0\n"), ("control.tar", b"")]), "no single data.tar"),
        (_ar([("debian-binary", b"2.0\n"), ("data.tar.bz2", b"")]), "no single data.tar"),
        (_hand_deb(b"not gzip at all", "data.tar.xz"), "does not decompress"),
        (_hand_deb(b"junk" * 300, "data.tar"), "not a tar"),
    ],
)
def test_a_malformed_deb_is_refused(data: bytes, match: str) -> None:
    with pytest.raises(InputError, match=match):
        deb_files(data, _pkg(data))


def test_a_truncated_data_archive_is_refused() -> None:
    z = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    packed = z.compress(_tar([_info("./x")], {"./x": os.urandom(4096)})) + z.flush()
    control = _tar([_info("./control")], {"./control": CONTROL.encode()})
    data = _ar([("debian-binary", b"2.0\n"), ("control.tar", control),
                ("data.tar.gz", packed[: len(packed) // 2])])  # fmt: skip
    with pytest.raises(InputError, match="truncated"):
        deb_files(data, _pkg(data))


def test_the_size_and_member_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _hand_deb(_tar([_info(f"./f{i}") for i in range(5)]))
    monkeypatch.setattr(_debian, "_MAX_MEMBERS", 3)
    with pytest.raises(InputError, match="over 3 members"):
        deb_files(data, _pkg(data))
    monkeypatch.setattr(_debian, "_MAX_MEMBERS", 100)
    monkeypatch.setattr(_debian, "_MAX_DATA", 1000)
    with pytest.raises(InputError, match="unpacks to over 1000 bytes"):
        deb_files(data, _pkg(data))


# --- dpkg's database ----------------------------------------------------------------


def test_dpkg_status_lists_the_packages_sorted(deb: bytes) -> None:
    status = dpkg_status([_pkg(deb, "zlib1g"), _pkg(deb, "base-files")])
    assert status.path == "var/lib/dpkg/status" and status.kind == "file"
    text = status.data.decode()
    assert text.index("Package: base-files") < text.index("Package: zlib1g")
    assert text.count("Status: install ok installed\n") == 2
    assert "Version: 1.0-1\nArchitecture: amd64\n" in text


def test_dpkg_query_reads_the_status_file(tmp_path: Path, deb: bytes) -> None:
    if shutil.which("dpkg-query") is None:
        pytest.skip("needs dpkg-query")
    status = dpkg_status([_pkg(deb, "zlib1g"), _pkg(deb, "base-files")])
    (tmp_path / "status").write_bytes(status.data)
    (tmp_path / "info").mkdir()
    shown = subprocess.run(["dpkg-query", f"--admindir={tmp_path}", "-W",
                            "-f=${Package} ${Version} ${db:Status-Abbrev}\n"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert shown.stdout.split("\n")[:2] == ["base-files 1.0-1 ii ", "zlib1g 1.0-1 ii "]


# --- the Packages index -------------------------------------------------------------


def _stanza(name: str, version: str = "1.0", **fields: str) -> str:
    sha = hashlib.sha256(name.encode() + version.encode()).hexdigest()
    lines = [f"Package: {name}", f"Version: {version}", "Architecture: amd64",
             f"Filename: pool/main/{name[0]}/{name}/{name}_{version}_amd64.deb",
             "Size: 1234", f"SHA256: {sha}"]  # fmt: skip
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in fields.items()]
    return "\n".join([*lines, "Description: a package", " with a long description", ""])


INDEX = "\n".join(
    [
        _stanza(
            "app",
            Depends="libc6 (>= 2.34), libssl3 | libssl1.1, mail-transport-agent",
            Pre_Depends="dpkg (>= 1.17)",
        ),
        _stanza("libc6", "2.36-9", Depends="libgcc-s1"),
        _stanza("libc6", "2.36-9+deb12u10", Depends="libgcc-s1:any"),
        _stanza("libc6", "2.36-8", Depends="never-there"),
        _stanza("libgcc-s1", Depends="libc6"),
        _stanza("libssl1.1"),
        _stanza("exim4", Provides="mail-transport-agent (= 1)"),
        _stanza("postfix", Provides="mail-transport-agent"),
        _stanza("dpkg", Depends="tar"),
        _stanza("tar"),
        _stanza("broken", Depends="libc6, nowhere-to-be-found (>= 1)"),
    ]
)


def test_parse_packages_keeps_the_highest_version() -> None:
    index = parse_packages(INDEX)
    assert index["libc6"].version == "2.36-9+deb12u10"
    assert index["exim4"].provides == ("mail-transport-agent",)
    assert index["app"].pre_depends == "dpkg (>= 1.17)"
    assert index["tar"].size == 1234


def test_resolve_follows_alternatives_provides_and_pre_depends() -> None:
    got = resolve(parse_packages(INDEX), ["app"])
    # libssl3 is missing: its alternative libssl1.1 is taken; of two providers of
    # mail-transport-agent the first by name; Pre-Depends brings dpkg, and dpkg tar.
    assert [p.name for p in got] == ["app", "dpkg", "exim4", "libc6", "libgcc-s1",
                                     "libssl1.1", "tar"]  # fmt: skip


def test_resolve_refuses_a_missing_dependency() -> None:
    with pytest.raises(InputError, match="broken need 'nowhere-to-be-found"):
        resolve(parse_packages(INDEX), ["broken"])
    with pytest.raises(InputError, match="the roots need 'absent'"):
        resolve(parse_packages(INDEX), ["absent"])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Package: x\nPackage: y\n", "given twice"),
        (" leading continuation\n", "continuation"),
        ("Package: x\nthis line has no colon\n", "not 'Field: value'"),
        ("Package: x\nVersion: 1\n", "lacks Architecture, Filename, Size, SHA256"),
        (_stanza("x").replace("Size: 1234", "Size: big"), "not a number"),
        (_stanza("x").replace("Filename: pool/", "Filename: /pool/"), "pool/"),
        (_stanza("x").replace("Filename: pool/main", "Filename: pool/../../etc"), "pool/"),
        (_stanza("x").replace("SHA256: ", "SHA256: zz"), "SHA-256"),
        (_stanza("x").replace("Package: x", "Package: X!"), "package name"),
        (_stanza("x", Depends="libc6 | (>= 2)"), "does not name a package"),
    ],
)
def test_a_malformed_index_is_refused(text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        resolve(parse_packages(text), ["x"])


def test_an_oversized_index_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_debian, "_MAX_INDEX", 100)
    with pytest.raises(InputError, match="over 100 characters"):
        parse_packages(INDEX)


@pytest.mark.parametrize(
    ("a", "b", "sign"),
    [("1.0~rc1", "1.0", -1), ("1:0.1", "2.0", 1), ("2.36-9+deb12u4", "2.36-9+deb12u10", -1),
     ("1.0a", "1.0+", -1), ("1.0", "1.0-0", 0), ("10", "9", 1), ("1.0~~", "1.0~", -1)],
)  # fmt: skip
def test_version_compare_agrees_with_dpkg(a: str, b: str, sign: int) -> None:
    got = version_compare(a, b)
    assert (got > 0) - (got < 0) == sign
    if shutil.which("dpkg"):
        op = {-1: "lt", 0: "eq", 1: "gt"}[sign]
        assert subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0


# --- the lock -----------------------------------------------------------------------


def test_the_lock_round_trips() -> None:
    packages = resolve(parse_packages(INDEX), ["app"])
    text = debian_lock(list(reversed(packages)))
    assert text.startswith("# ")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == sorted(lines) and len(lines) == len(packages)
    back = read_debian_lock(text)
    strip = [DebPackage(p.name, p.version, p.architecture, p.filename, p.size, p.sha256)
             for p in packages]  # fmt: skip
    assert back == strip
    assert debian_lock(back) == text


GOOD = "tar 1.34 amd64 pool/main/t/tar/tar_1.34_amd64.deb " + "ab" * 32 + " 1234"


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("tar 1.34 amd64 pool/main/t/tar/tar_1.34_amd64.deb", "is not 'name version"),
        (GOOD + " extra", "is not 'name version"),
        (GOOD.replace(" 1234", " 12x4"), "is not 'name version"),
        (GOOD.replace("ab" * 32, "AB" * 32), "is not 'name version"),
        (GOOD.replace("ab" * 32, "ab" * 31), "is not 'name version"),
        (GOOD.replace("ab" * 32, "g" * 64), "is not 'name version"),
        (GOOD.replace("pool/main", "/pool/main"), "relative pool"),
        (GOOD.replace("pool/main", "dists/main"), "relative pool"),
        (GOOD.replace("pool/main", "pool/../../main"), "relative pool"),
        (GOOD.replace("pool/main/t", "pool/main//t"), "relative pool"),
        (GOOD.replace(" 1234", " 0"), "size 0"),
        (GOOD.replace("ab" * 32, "ab" * 32 + " 1"), "is not 'name version"),
        (GOOD.replace("tar 1.34", "Tar 1.34"), "package name"),
        (GOOD.replace("1.34", "1.34!"), "is not a Debian version"),
        (GOOD + "\n" + GOOD, "locked twice"),
    ],
)
def test_a_malformed_lock_line_is_refused(line: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        read_debian_lock("# header\n" + line + "\n")


# --- fetching (no network) ----------------------------------------------------------

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


def test_fetch_takes_a_pre_seeded_cache(tmp_path: Path, deb: bytes) -> None:
    pkg = _pkg(deb)
    (tmp_path / f"{pkg.sha256}.deb").write_bytes(deb)
    assert fetch_deb(pkg, tmp_path, mirror=UNREACHABLE) == deb


def test_a_corrupt_cached_file_is_dropped_and_not_trusted(tmp_path: Path, deb: bytes) -> None:
    pkg = _pkg(deb)
    cached = tmp_path / f"{pkg.sha256}.deb"
    cached.write_bytes(deb[:-1] + bytes([deb[-1] ^ 1]))
    with pytest.raises(
        Error, match=re.escape("could not download http://127.0.0.1:9/pool/")
    ):
        fetch_deb(pkg, tmp_path, mirror=UNREACHABLE)
    assert not cached.exists()


def test_an_oversized_cached_file_is_not_read(tmp_path: Path, deb: bytes) -> None:
    pkg = _pkg(deb)
    (tmp_path / f"{pkg.sha256}.deb").write_bytes(deb + b"\0" * 10)
    with pytest.raises(Error, match="could not download"):
        fetch_deb(pkg, tmp_path, mirror=UNREACHABLE)


def test_a_deb_over_the_cap_is_refused_before_any_work(tmp_path: Path, deb: bytes) -> None:
    pkg = DebPackage("big", "1", "all", "pool/main/b/big/big_1_all.deb", 2**31, "ab" * 32)
    with pytest.raises(InputError, match="is over the"):
        fetch_deb(pkg, tmp_path, mirror=UNREACHABLE)
    with pytest.raises(InputError, match="is over the"):
        deb_files(deb, pkg)


def test_a_backslash_is_an_ordinary_character_of_a_path() -> None:
    # systemd unit names escape "-" as "\x2d" (systemd-escape(1)); bookworm ships them.
    name = "./lib/systemd/system/system-systemd\\x2dcryptsetup.slice"
    data = _hand_deb(_tar([_info(name)], {name: b"[Unit]\n"}))
    paths = [e.path for e in deb_files(data, _pkg(data))]
    assert paths == ["usr/lib/systemd/system/system-systemd\\x2dcryptsetup.slice"]
