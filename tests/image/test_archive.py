"""Locking the Debian base from an archive: InRelease checked by gpgv against a
keyring, the index by the hash InRelease gives, the highest version of the suites
taken. The archive is a real HTTP server on loopback, signed by a real GnuPG key made
for the test (Debian's own keys cannot sign here)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import http.server
import lzma
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferproof.errors import Error, VerificationError
from inferproof.image._archive import (
    SECURITY,
    Suite,
    lock_debian_base,
    mirror_for,
    signed_index,
)
from inferproof.image._debian import MIRROR, DebPackage, read_debian_lock

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None or shutil.which("gpgv") is None,
                                reason="GnuPG (Debian's gpg and gpgv) is not installed")  # fmt: skip


def _gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["gpg", "--batch", "--homedir", str(home), *args], input=data,
                          capture_output=True, check=True, timeout=120).stdout  # fmt: skip


@functools.cache
def _key(root: Path) -> tuple[Path, Path]:
    home = root / "gnupg"
    home.mkdir(mode=0o700)
    _gpg(home, "--passphrase", "", "--quick-gen-key", "archive test", "ed25519", "sign", "never")
    keyring = root / "keyring.gpg"
    keyring.write_bytes(_gpg(home, "--export"))
    return home, keyring


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _key(tmp_path_factory.mktemp("gpg"))


def _stanza(name: str, version: str, depends: str = "", pool: str = "pool/main") -> str:
    filename = f"{pool}/{name[0]}/{name}/{name}_{version}_amd64.deb"
    digest = hashlib.sha256(f"{name}{version}".encode()).hexdigest()
    dep = f"Depends: {depends}\n" if depends else ""
    return (f"Package: {name}\nVersion: {version}\nArchitecture: amd64\n{dep}"
            f"Filename: {filename}\nSize: 1000\nSHA256: {digest}\n\n")  # fmt: skip


def _release(index: bytes, extra: str = "") -> str:
    digest = hashlib.sha256(index).hexdigest()
    return (f"Origin: Debian\nSuite: test\nDate: Sat, 01 Nov 2025 10:00:00 UTC\n{extra}"
            f"SHA256:\n {digest} {len(index)} main/binary-amd64/Packages.xz\n")  # fmt: skip


def _sign(home: Path, text: str) -> bytes:
    return _gpg(home, "--clearsign", data=text.encode())


def _suite(root: Path, home: Path, name: str, packages: str, tamper: str = "") -> None:
    folder = root / "dists" / name
    (folder / "main" / "binary-amd64").mkdir(parents=True)
    index = lzma.compress(packages.encode())
    served = {"": index, "append": index + b"x", "flip": index[:-1] + bytes([index[-1] ^ 1])}
    (folder / "main/binary-amd64/Packages.xz").write_bytes(served[tamper])
    (folder / "InRelease").write_bytes(_sign(home, _release(index)))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def archive(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_good_signature_gives_the_listed_files(key: tuple[Path, Path]) -> None:
    home, keyring = key
    files = signed_index(_sign(home, _release(b"index")), keyring)
    assert files == {"main/binary-amd64/Packages.xz": (5, hashlib.sha256(b"index").hexdigest())}


def test_a_changed_signed_byte_is_refused(key: tuple[Path, Path]) -> None:
    home, keyring = key
    signed = _sign(home, _release(b"index"))
    forged = signed.replace(b"Origin: Debian", b"Origin: Debiam")
    assert forged != signed
    with pytest.raises(VerificationError, match=r"debian\.release"):
        signed_index(forged, keyring)


def test_a_signature_by_another_key_is_refused(
    key: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    home, _ = key
    _, other = _key(tmp_path_factory.mktemp("other"))
    with pytest.raises(VerificationError, match="signature"):
        signed_index(_sign(home, _release(b"index")), other)


def test_an_unsigned_release_is_refused(key: tuple[Path, Path]) -> None:
    _, keyring = key
    with pytest.raises(VerificationError, match=r"debian\.release"):
        signed_index(_release(b"index").encode(), keyring)


def test_an_expired_index_is_refused(key: tuple[Path, Path]) -> None:
    home, keyring = key
    signed = _sign(home, _release(b"i", "Valid-Until: Sat, 08 Nov 2025 10:00:00 UTC\n"))
    before = dt.datetime(2025, 11, 7, tzinfo=dt.UTC)
    assert signed_index(signed, keyring, now=before)
    with pytest.raises(VerificationError, match="expired"):
        signed_index(signed, keyring, now=before + dt.timedelta(days=2))


def test_the_lock_takes_the_closure_and_the_highest_version(
    key: tuple[Path, Path], archive: tuple[Path, str]
) -> None:
    home, keyring = key
    root, url = archive
    _suite(root, home, "main", _stanza("app", "1.0", "libz (>= 1) | libalt, libc")
           + _stanza("libz", "1.0") + _stanza("libc", "2.36-9") + _stanza("unrelated", "9"))
    _suite(root, home, "security", _stanza("libc", "2.36-9+deb12u4", pool="pool/updates/main"))
    suites = (Suite(url, "main"), Suite(url, "security"))
    text = lock_debian_base(("app",), suites, keyring)
    locked = {p.name: p for p in read_debian_lock(text)}
    assert sorted(locked) == ["app", "libc", "libz"]
    assert locked["libc"].version == "2.36-9+deb12u4"
    assert mirror_for(locked["libc"]) == SECURITY and mirror_for(locked["app"]) == MIRROR
    assert "# roots: app" in text and f"# from {url} security main amd64" in text


@pytest.mark.parametrize("tamper", ["append", "flip"])
def test_an_index_that_is_not_the_signed_one_is_refused(
    key: tuple[Path, Path], archive: tuple[Path, str], tamper: str
) -> None:
    home, keyring = key
    root, url = archive
    _suite(root, home, "main", _stanza("app", "1.0"), tamper=tamper)
    with pytest.raises(VerificationError, match=r"debian\.index"):
        lock_debian_base(("app",), (Suite(url, "main"),), keyring)


def test_a_missing_suite_is_a_clear_error(key: tuple[Path, Path], archive: tuple[Path, str]) -> None:
    _, url = archive
    with pytest.raises(Error, match="HTTP 404"):
        lock_debian_base(("app",), (Suite(url, "nowhere"),), key[1])


def test_mirror_for_is_decided_by_the_pool() -> None:
    pkg = DebPackage("a", "1", "amd64", "pool/updates/main/a/a/a_1_amd64.deb", 1, "0" * 64)
    assert mirror_for(pkg) == SECURITY
