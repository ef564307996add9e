"""A Debian base layer built from locked ``.deb`` files, without debootstrap.

Distroless images are made this way: no package manager runs and no maintainer
script runs; each locked ``.deb`` is downloaded, checked against the SHA-256 the lock
gives for it, and the files of its data archive become layer entries. Nothing of the
build machine enters, so the layer is deterministic by construction.

The steps: :func:`parse_packages` reads a mirror's ``Packages`` index,
:func:`resolve` takes the closure of the roots' dependencies, :func:`debian_lock`
writes that set as a lock, :func:`read_debian_lock` reads it back, :func:`fetch_deb`
downloads (or takes from a cache) each ``.deb``, :func:`deb_files` extracts it, and
:func:`usrmerge_links` and :func:`dpkg_status` add what an installed bookworm system
has besides the packages' files.

Example::

    from pathlib import Path
    from inferproof.image._debian import deb_files, fetch_deb, read_debian_lock

    entries = []
    for pkg in read_debian_lock(Path("debian.lock").read_text()):
        entries += deb_files(fetch_deb(pkg, Path("/tmp/debs")), pkg)
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, VerificationError
from ._http import http_get
from ._tar import LayerFile

__all__ = [
    "DebPackage",
    "deb_files",
    "debian_lock",
    "dpkg_status",
    "fetch_deb",
    "parse_packages",
    "read_debian_lock",
    "resolve",
    "usrmerge_links",
    "version_compare",
]

MIRROR = "http://deb.debian.org/debian"
# bookworm's main/binary-amd64/Packages is about 45 MiB uncompressed; an index much
# larger than that is not one this code was written for.
_MAX_INDEX = 256 * 1024**2
# Every .deb is held in memory: bookworm's largest (0ad-data, 1.3 GiB) are data no node
# needs, the rest are a few hundred MiB at most; the caps stop a hostile archive from
# filling memory.
_MAX_DEB = 1024**3
_MAX_DATA = 2 * 1024**3
_MAX_MEMBERS = 200_000
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# Debian policy 5.6.1 (package names) and 5.6.12 (versions), a little more lenient.
_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]*$")
_VERSION = re.compile(r"^[A-Za-z0-9.+~:-]+$")
_ARCH = re.compile(r"^[a-z0-9-]+$")
# The folders merged-/usr moves under usr/ (Debian's usrmerge, which bookworm's
# debootstrap applies to every new system): each becomes a link to its usr/ twin.
_MERGED = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")
_LOCK_HEADER = (
    "# inferproof Debian lock: name version architecture filename sha256 size\n"
    "# Each .deb is checked against its sha256 before a byte of it is used.\n"
)


@dataclass(frozen=True)
class DebPackage:
    """One binary package of a Debian index or lock: what names it, the file to fetch
    from a mirror (``filename``, under ``pool/``), its size and SHA-256, and its raw
    ``Depends``, ``Pre-Depends`` and ``Provides`` fields (empty when read from a lock).

    Example::

        pkg = DebPackage("hello", "2.10-3", "amd64", "pool/main/h/hello/hello_2.10-3_amd64.deb",
                         53324, "ab" * 32)
    """

    name: str
    version: str
    architecture: str
    filename: str
    size: int
    sha256: str
    depends: str = ""
    pre_depends: str = ""
    provides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InputError(f"{self.name!r:.80} is not a Debian package name")
        if not _VERSION.match(self.version):
            raise InputError(f"{self.name}: {self.version!r:.80} is not a Debian version")
        if not _ARCH.match(self.architecture):
            raise InputError(f"{self.name}: {self.architecture!r:.40} is not an architecture")
        if not _HEX64.match(self.sha256):
            raise InputError(f"{self.name}: {self.sha256!r:.80} is not a lowercase SHA-256")
        if self.size <= 0:
            raise InputError(f"{self.name}: size {self.size} is not a file's size")
        _check_pool(self.filename, self.name)


def _check_pool(filename: str, name: str) -> None:
    parts = filename.split("/")
    if (
        parts[0] != "pool"
        or len(parts) < 2
        or any(p in ("", ".", "..") for p in parts)
        or not re.match(r"^[A-Za-z0-9/._+~:%-]+$", filename)
    ):
        raise InputError(f"{name}: {filename!r:.120} is not a relative pool/... path")


# --- the Packages index ------------------------------------------------------------


def parse_packages(text: str) -> dict[str, DebPackage]:
    """The packages of a Debian ``Packages`` index (deb822 stanzas), by name; when a
    name appears twice, the higher version (Debian's ordering) is kept.

    Example::

        index = parse_packages(Path("Packages").read_text())
        print(index["libc6"].version)
    """
    if len(text) > _MAX_INDEX:
        raise InputError(f"the Packages index is over {_MAX_INDEX} characters")
    out: dict[str, DebPackage] = {}
    for stanza in _stanzas(text):
        pkg = _package(stanza)
        old = out.get(pkg.name)
        if old is None or version_compare(pkg.version, old.version) > 0:
            out[pkg.name] = pkg
    return out


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    last = ""
    for n, line in enumerate([*text.splitlines(), ""], 1):
        if not line.strip():
            if fields:
                stanzas.append(fields)
            fields, last = {}, ""
        elif line[0] in " \t":
            if not last:
                raise InputError(f"Packages line {n}: a continuation line with no field")
            fields[last] += "\n" + line.strip()  # only Description has these; kept anyway
        elif ":" in line:
            key, value = line.split(":", 1)
            last = key.strip()
            if last in fields:
                raise InputError(f"Packages line {n}: field {last!r:.40} given twice")
            fields[last] = value.strip()
        else:
            raise InputError(f"Packages line {n}: {line!r:.80} is not 'Field: value'")
    return stanzas


def _package(fields: dict[str, str]) -> DebPackage:
    name = fields.get("Package", "?")
    missing = [k for k in _REQUIRED if k not in fields]
    if missing:
        raise InputError(f"Packages stanza {name!r:.80} lacks {', '.join(missing)}")
    if not fields["Size"].isdigit():
        raise InputError(f"{name}: Size {fields['Size']!r:.40} is not a number")
    return DebPackage(
        name, fields["Version"], fields["Architecture"], fields["Filename"],
        int(fields["Size"]), fields["SHA256"], fields.get("Depends", ""),
        fields.get("Pre-Depends", ""), tuple(_names(fields.get("Provides", ""))),
    )  # fmt: skip


_REQUIRED = ("Package", "Version", "Architecture", "Filename", "Size", "SHA256")


def _names(field: str) -> list[str]:
    """The names of a comma-separated relation field, without version constraints."""
    return [_bare(p) for p in field.split(",") if p.strip()]


def _bare(relation: str) -> str:
    # `libc6 (>= 2.34)`, `perl:any`, `foo [amd64] <!nocheck>`: only the name counts here.
    name = re.split(r"[\s(\[<]", relation.strip(), maxsplit=1)[0].split(":", 1)[0]
    if not _NAME.match(name):
        raise InputError(f"{relation.strip()!r:.80} does not name a package")
    return name


def version_compare(a: str, b: str) -> int:
    """Debian's ordering of versions (deb-version(7)): negative, zero or positive as
    ``a`` is lower than, equal to or higher than ``b``.

    Example::

        assert version_compare("1.0~rc1", "1.0") < 0
    """
    ea, ua, ra = _split_version(a)
    eb, ub, rb = _split_version(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def _split_version(v: str) -> tuple[int, str, str]:
    # deb-version(7): the epoch ends at the first colon, the revision starts after the
    # last hyphen; a missing revision compares like "0" (dpkg's verrevcmp).
    epoch, _, rest = v.partition(":") if ":" in v else ("0", "", v)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
    return (int(epoch) if epoch.isdigit() else 0), upstream, revision


def _order(c: str) -> int:
    # deb-version(7): `~` sorts before everything, even the end of the string (0);
    # letters sort before the other characters.
    if c == "~":
        return -1
    return ord(c) if c.isalpha() else ord(c) + 256


def _lead(s: str, digits: bool) -> str:
    i = 0
    while i < len(s) and s[i].isdigit() == digits:
        i += 1
    return s[:i]


def _compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternate runs of non-digits (by :func:`_order`) and digits
    (by value) until one differs."""
    while a or b:
        na, nb = _lead(a, False), _lead(b, False)
        for i in range(max(len(na), len(nb))):
            ox = _order(na[i]) if i < len(na) else 0
            oy = _order(nb[i]) if i < len(nb) else 0
            if ox != oy:
                return -1 if ox < oy else 1
        a, b = a[len(na) :], b[len(nb) :]
        da, db = _lead(a, True), _lead(b, True)
        if int(da or 0) != int(db or 0):
            return -1 if int(da or 0) < int(db or 0) else 1
        a, b = a[len(da) :], b[len(db) :]
    return 0


def resolve(index: dict[str, DebPackage], roots: list[str]) -> list[DebPackage]:
    """The packages ``roots`` need: the closure of their ``Depends`` and
    ``Pre-Depends``, sorted by name. Of alternatives ``a | b`` the first the index has
    (by name, or through a package that provides it) is taken; version constraints are
    not checked (the index holds one version of each name). A dependency nothing in
    the index satisfies is refused.

    Example::

        for pkg in resolve(parse_packages(text), ["libc6", "python3.11"]):
            print(pkg.name, pkg.version)
    """
    providers: dict[str, list[str]] = {}
    for pkg in index.values():
        for virtual in pkg.provides:
            providers.setdefault(virtual, []).append(pkg.name)
    chosen: dict[str, DebPackage] = {}
    todo = [(root, "the roots") for root in roots]
    while todo:
        group, wanted_by = todo.pop()
        name = _satisfy(index, providers, group)
        if name is None:
            raise InputError(f"{wanted_by} need {group.strip()!r:.120}, which the index lacks")
        if name in chosen:
            continue
        pkg = chosen[name] = index[name]
        for field in (pkg.pre_depends, pkg.depends):
            todo += [(g, name) for g in field.split(",") if g.strip()]
    return sorted(chosen.values(), key=lambda p: p.name)


def _satisfy(
    index: dict[str, DebPackage], providers: dict[str, list[str]], group: str
) -> str | None:
    for alternative in group.split("|"):
        name = _bare(alternative)
        if name in index:
            return name
        if name in providers:
            return min(providers[name])  # several providers: the same choice every time
    return None


# --- the lock -----------------------------------------------------------------------


def debian_lock(packages: list[DebPackage], notes: tuple[str, ...] = ()) -> str:
    """The lock text of ``packages``: a header comment (and ``notes``), then a line per package,
    ``name version architecture filename sha256 size``, sorted by name.

    Example::

        Path("debian.lock").write_text(debian_lock(resolve(index, ["libc6"])))
    """
    lines = sorted(
        f"{p.name} {p.version} {p.architecture} {p.filename} {p.sha256} {p.size}\n"
        for p in packages
    )
    return _LOCK_HEADER + "".join(f"# {n}\n" for n in notes) + "".join(lines)


def read_debian_lock(text: str) -> list[DebPackage]:
    """The packages of a lock :func:`debian_lock` wrote, sorted by name. A line that is
    not six fields, a hash that is not SHA-256 hex, a file outside ``pool/`` or a
    package named twice is refused.

    Example::

        packages = read_debian_lock(Path("debian.lock").read_text())
    """
    if len(text) > _MAX_INDEX:
        raise InputError(f"the Debian lock is over {_MAX_INDEX} characters")
    out: dict[str, DebPackage] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 6 or not fields[5].isdigit() or not _HEX64.match(fields[4]):
            raise InputError(f"Debian lock line {n}: {line!r:.120} is not "
                             "'name version architecture filename sha256 size'")  # fmt: skip
        try:
            name, version, arch, filename, sha256, size = fields
            pkg = DebPackage(name, version, arch, filename, int(size), sha256)
        except InputError as exc:
            raise InputError(f"Debian lock line {n}: {exc}") from None
        if pkg.name in out:
            raise InputError(f"Debian lock line {n}: {pkg.name} is locked twice")
        out[pkg.name] = pkg
    return sorted(out.values(), key=lambda p: p.name)


# --- the .deb -----------------------------------------------------------------------


def deb_files(data: bytes, pkg: DebPackage) -> list[LayerFile]:
    """The layer entries of the ``.deb`` ``data``, once its size and SHA-256 are the
    ones ``pkg`` locks: the files, folders and links of its data archive, placed as
    on a merged-/usr system (``lib/x`` becomes ``usr/lib/x``). Hard links become
    plain files with the linked content; device nodes, fifos and paths that leave the
    image are refused.

    Example::

        entries = deb_files(Path("hello.deb").read_bytes(), pkg)
    """
    _verify(data, pkg)
    member, payload = _data_member(data, pkg.name)
    if member.endswith(".zst"):
        # zstd joined the standard library in Python 3.14 (compression.zstd); this one
        # has no decoder, and the image takes no third-party one for a single format.
        raise InputError(f"{pkg.name}: {member} is zstd-compressed, which this Python "
                         "cannot read; bookworm's own packages use xz")  # fmt: skip
    tar_bytes = _decompress(payload, member, pkg.name)
    return _tar_entries(tar_bytes, pkg.name)


def _verify(data: bytes, pkg: DebPackage) -> None:
    _check_cap(pkg)
    digest = hashlib.sha256(data).hexdigest()
    if digest != pkg.sha256:
        raise VerificationError("image.deb", f"{pkg.name} {pkg.version}: the file hashes to "
                                f"sha256:{digest}, the lock says sha256:{pkg.sha256}")  # fmt: skip
    if len(data) != pkg.size:
        raise VerificationError(
            "image.deb", f"{pkg.name} {pkg.version}: {len(data)} bytes, the lock says {pkg.size}"
        )


def _check_cap(pkg: DebPackage) -> None:
    # The index lists a few larger .debs (game data); the image takes none of them.
    if pkg.size > _MAX_DEB:
        raise InputError(f"{pkg.name}: {pkg.size} bytes is over the {_MAX_DEB} a .deb may have")


def _ar_members(data: bytes, name: str) -> list[tuple[str, bytes]]:
    # The .deb format is an ar archive (deb(5)): the magic, then per member a 60-byte
    # header (name 16, mtime 12, uid 6, gid 6, mode 8, size 10, "`\n") and the data,
    # padded to an even length.
    if not data.startswith(b"!<arch>\n"):
        raise InputError(f"{name}: not a .deb (no ar magic)")
    members, pos = [], 8
    while pos < len(data):
        header = data[pos : pos + 60]
        if len(header) < 60 or header[58:60] != b"`\n":
            raise InputError(f"{name}: a truncated or malformed ar header at byte {pos}")
        size_field = header[48:58].strip()
        if not size_field.isdigit():
            raise InputError(f"{name}: ar member at byte {pos} has no size")
        size, start = int(size_field), pos + 60
        if start + size > len(data):
            raise InputError(f"{name}: ar member at byte {pos} runs past the end")
        member = header[:16].decode("ascii", "replace").strip().removesuffix("/")
        members.append((member, data[start : start + size]))
        pos = start + size + (size % 2)
        if len(members) > 16:
            raise InputError(f"{name}: more ar members than a .deb has")
    return members


def _data_member(data: bytes, name: str) -> tuple[str, bytes]:
    members = _ar_members(data, name)
    names = [m for m, _ in members]
    if not names or names[0] != "debian-binary" or not members[0][1].startswith(b"2."):
        raise InputError(f"{name}: not a version 2 .deb (members {names!r:.120})")
    found = [(m, body) for m, body in members if m.startswith("data.tar")]
    if len(found) != 1 or found[0][0] not in ("data.tar", "data.tar.gz", "data.tar.xz",
                                             "data.tar.zst"):  # fmt: skip
        raise InputError(f"{name}: no single data.tar[.gz|.xz|.zst] member ({names!r:.120})")
    return found[0]


def _decompress(payload: bytes, member: str, name: str) -> bytes:
    # Decompressors asked for at most the cap plus one byte: a bomb stops at the cap.
    done = True
    try:
        if member == "data.tar":
            out = payload
        elif member.endswith(".gz"):
            z = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            out = z.decompress(payload, _MAX_DATA + 1)
            done = z.eof
        else:
            x = lzma.LZMADecompressor()
            out = x.decompress(payload, _MAX_DATA + 1)
            done = x.eof
    except (zlib.error, lzma.LZMAError) as exc:
        raise InputError(f"{name}: {member} does not decompress: {exc}") from None
    if len(out) > _MAX_DATA:
        raise InputError(f"{name}: {member} unpacks to over {_MAX_DATA} bytes")
    if not done:
        raise InputError(f"{name}: {member} is truncated")
    return out


def _tar_entries(tar_bytes: bytes, name: str) -> list[LayerFile]:
    out: dict[str, LayerFile] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            for count, member in enumerate(tar, 1):
                if count > _MAX_MEMBERS:
                    raise InputError(f"{name}: data.tar has over {_MAX_MEMBERS} members")
                entry = _entry(tar, member, out, name)
                if entry is None:
                    continue
                if out.get(entry.path, entry) != entry:
                    raise InputError(f"{name}: {entry.path} is given twice, differently")
                out[entry.path] = entry
    except tarfile.TarError as exc:
        raise InputError(f"{name}: data.tar is not a tar: {exc}") from None
    return list(out.values())


def _entry(
    tar: tarfile.TarFile, m: tarfile.TarInfo, seen: dict[str, LayerFile], name: str
) -> LayerFile | None:
    path = _image_path(m.name, name)
    if path is None:
        return None  # the archive's root, "./"
    if m.isdir():
        return LayerFile(path, "dir")
    if m.issym():
        return LayerFile(path, "symlink", target=_moved_target(m.name, path, m.linkname))
    if m.islnk():
        linked = seen.get(_image_path(m.linkname, name) or "")
        if linked is None or linked.kind != "file":
            raise InputError(f"{name}: hard link {path} names {m.linkname!r:.80}, no earlier file")
        return LayerFile(path, "file", linked.data, executable=bool(m.mode & 0o111))
    if not m.isreg():
        raise InputError(f"{name}: {path} is a device, fifo or other special file")
    body = tar.extractfile(m)
    assert body is not None  # a regular member always has a body
    return LayerFile(path, "file", body.read(), executable=bool(m.mode & 0o111))


def _image_path(member: str, name: str) -> str | None:
    """Where a data.tar member goes in the image: no leading ``./``, merged /usr."""
    if member.startswith("/"):
        raise InputError(f"{name}: member {member!r:.80} is an absolute path")
    parts = [p for p in member.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InputError(f"{name}: member {member!r:.80} would land outside the image")
    if not parts:
        return None
    if parts[0] in _MERGED:
        parts.insert(0, "usr")
    return "/".join(parts)


def _moved_target(member: str, path: str, target: str) -> str:
    """A link's target, kept as written unless the link moved under usr/ and a
    relative target climbed out of its top folder (``lib/x -> ../../usr/lib/y``
    would then miss); such a target is written as the absolute path it meant."""
    original = "/".join(p for p in member.split("/") if p not in ("", "."))
    if target.startswith("/") or original == path:
        return target
    meant = posixpath.normpath(posixpath.join("/", posixpath.dirname(original), target))
    top = "/" + original.split("/")[0]
    if meant == top or meant.startswith(top + "/"):
        return target
    return meant


def usrmerge_links() -> list[LayerFile]:
    """The top-level links of a merged-/usr system, ``bin -> usr/bin`` and the like,
    as bookworm's debootstrap makes them.

    Example::

        entries = usrmerge_links() + deb_files(data, pkg)
    """
    return [LayerFile(d, "symlink", target=f"usr/{d}") for d in _MERGED]


def dpkg_status(packages: list[DebPackage]) -> LayerFile:
    """``var/lib/dpkg/status`` listing ``packages`` as installed, so that SBOM and
    vulnerability scanners reading dpkg's database find them.

    One status file, rather than distroless's ``status.d/<name>`` files, because it is
    the file dpkg itself reads and every scanner reads it; the per-package files exist
    so that separate layers can each add their own, and this base is a single layer.

    Example::

        entry = dpkg_status(read_debian_lock(text))
    """
    stanzas = [
        f"Package: {p.name}\nStatus: install ok installed\nVersion: {p.version}\n"
        f"Architecture: {p.architecture}\n"
        for p in sorted(packages, key=lambda p: p.name)
    ]
    return LayerFile("var/lib/dpkg/status", "file", "\n".join(stanzas).encode())


# --- fetching -----------------------------------------------------------------------


def fetch_deb(pkg: DebPackage, cache: Path, mirror: str = MIRROR) -> bytes:
    """The bytes of ``pkg``'s ``.deb``, checked against its size and SHA-256: from
    ``cache/<sha256>.deb`` when that file is there and still checks, else downloaded
    from ``mirror`` and then cached. A cached file that no longer checks is removed
    and downloaded again.

    Example::

        data = fetch_deb(pkg, Path("/tmp/debs"))
    """
    _check_cap(pkg)
    cached = cache / f"{pkg.sha256}.deb"
    if cached.is_file() and not cached.is_symlink():
        data = cached.read_bytes() if cached.stat().st_size <= pkg.size else b""
        try:
            _verify(data, pkg)
            return data
        except VerificationError:
            cached.unlink()
    data = _download(f"{mirror.rstrip('/')}/{pkg.filename}", pkg)
    _verify(data, pkg)
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{pkg.sha256}.{os.getpid()}.part"
    partial.write_bytes(data)
    os.replace(partial, cached)
    return data


def _download(url: str, pkg: DebPackage) -> bytes:
    over = VerificationError("image.deb", f"{url} is over the locked {pkg.size} bytes")
    return http_get(url, pkg.size, over)
