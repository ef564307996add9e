"""The node's image, reduced variant: two builds in clean folders, under another umask,
time zone and working folder, give the same digest; what GNU tar reads of a layer
shows nothing of the build machine; a flipped byte anywhere is refused; the lock's
hashes decide which wheels go in.

The wheels come from the package index the first time (pip, hash-checked) and then
from a cache shared by this module's builds.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from inferproof._canonical import canonical_json
from inferproof.errors import InputError, VerificationError
from inferproof.hub import publisher_id
from inferproof.image import (
    BuildInputs,
    Image,
    LayerFile,
    build_image,
    image_entry,
    layer_tar,
    provenance_statement,
    read_image_entry,
    read_layout,
    read_lock,
    sbom_document,
)
from inferproof.image._wheels import LockedPackage, wheel_files
from tests._cli import inferproof

ROOT = Path(__file__).resolve().parents[2]
EPOCH = 1_700_000_000


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wheels")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> tuple[Path, Image]:
    out = tmp_path_factory.mktemp("first") / "image"
    return out, build_image(out, BuildInputs(ROOT, cache, EPOCH))


@pytest.fixture()
def other_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Another umask, time zone and working folder than the first build had."""
    old = os.umask(0o077)
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    monkeypatch.chdir(tmp_path)
    try:
        yield
    finally:
        os.umask(old)


def test_two_clean_builds_give_the_same_digest(
    built: tuple[Path, Image], tmp_path: Path, other_machine: None
) -> None:
    first_dir, first = built
    # Another cache folder too: the wheels are fetched again, and checked again.
    again = build_image(tmp_path / "again", BuildInputs(ROOT, tmp_path / "cache", EPOCH))
    assert again.digest == first.digest and again.layers == first.layers
    files = sorted(p.relative_to(first_dir) for p in first_dir.rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file()
    )
    for rel in files:
        assert (first_dir / rel).read_bytes() == (tmp_path / "again" / rel).read_bytes(), rel


def test_the_epoch_is_an_input(built: tuple[Path, Image], cache: Path, tmp_path: Path) -> None:
    other = build_image(tmp_path / "later", BuildInputs(ROOT, cache, EPOCH + 1))
    assert other.digest != built[1].digest


def test_gnu_tar_reads_root_owners_the_epoch_and_sorted_paths(built: tuple[Path, Image]) -> None:
    layout = read_layout(built[0])
    names = [name for name, _ in layout.layers]
    assert names == ["wheels", "inferproof"]
    tar = dict(layout.layers)["inferproof"]
    listing = subprocess.run(["tar", "--list", "--verbose", "--full-time", "--numeric-owner"],
                             input=tar, capture_output=True, check=True,
                             env={**os.environ, "TZ": "UTC"}).stdout.decode()  # fmt: skip
    lines = listing.splitlines()
    assert len(lines) > 100
    paths = []
    for line in lines:
        mode, owner, _size, day, clock, path = line.split(None, 5)
        assert owner == "0/0", line
        assert f"{day} {clock}" == "2023-11-14 22:13:20", line  # EPOCH in UTC
        assert mode in ("drwxr-xr-x", "-rw-r--r--", "-rwxr-xr-x"), line
        paths.append(path.rstrip("/"))
    assert paths == sorted(paths)
    assert "usr/local/lib/python3.11/dist-packages/inferproof/errors.py" in paths
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in paths)


def test_the_image_holds_the_committed_source(built: tuple[Path, Image]) -> None:
    layout = read_layout(built[0])
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    assert layout.annotations["org.opencontainers.image.revision"] == head
    committed = subprocess.run(["git", "-C", str(ROOT), "show", "HEAD:src/inferproof/errors.py"],
                               capture_output=True, check=True).stdout  # fmt: skip
    tar = dict(layout.layers)["inferproof"]
    listing = subprocess.run(["tar", "-xO", "usr/local/lib/python3.11/dist-packages/inferproof/errors.py"],
                             input=tar, capture_output=True, check=True).stdout  # fmt: skip
    assert listing == committed
    assert layout.config["config"]["Entrypoint"] == ["/usr/bin/python3.11", "-m", "inferproof"]
    assert layout.config["rootfs"]["diff_ids"] == list(built[1].layers.values())


def test_a_flipped_byte_of_any_blob_is_refused(built: tuple[Path, Image], tmp_path: Path) -> None:
    import shutil

    blobs = sorted((built[0] / "blobs" / "sha256").iterdir())
    assert len(blobs) == 4  # two layers, the config, the manifest
    for blob in blobs:
        copy = tmp_path / blob.name
        shutil.copytree(built[0], copy)
        target = copy / "blobs" / "sha256" / blob.name
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        with pytest.raises(VerificationError, match="does not match its digest") as caught:
            read_layout(copy)
        assert caught.value.check == "image.blob"


def test_image_verify_rebuilds_and_compares(built: tuple[Path, Image], tmp_path: Path) -> None:
    env = {**os.environ, "INFERPROOF_HOME": str(tmp_path / "home"), "SOURCE_DATE_EPOCH": str(EPOCH)}
    good = inferproof(env, "image", "verify", str(built[0]), "--checkout", str(ROOT))
    assert good.returncode == 0, good.stderr
    assert f"image.reproduced: passed rebuilt {built[1].digest}" in good.stdout
    # An image with one file changed, its digests made consistent again: the rebuild
    # differs, and the layer that differs is named.
    forged = tmp_path / "forged"
    layout = read_layout(built[0])
    tar = dict(layout.layers)["inferproof"]
    entries = _entries(tar)
    entries = [LayerFile(e.path, e.kind, e.data + b"#" if e.path.endswith("errors.py") else e.data,
                         e.target, e.executable) for e in entries]  # fmt: skip
    from inferproof.image import Layer, write_layout

    write_layout(forged, [Layer("wheels", dict(layout.layers)["wheels"]),
                          Layer("inferproof", layer_tar(entries, EPOCH))], epoch=EPOCH,
                 config=layout.config["config"], annotations=layout.annotations)  # fmt: skip
    bad = inferproof(env, "image", "verify", str(forged), "--checkout", str(ROOT))
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    last = bad.stderr.strip().splitlines()[-1]  # after the rebuild's progress lines
    assert last.startswith("error: image.reproduced: the rebuild is ")
    assert "layers that differ: inferproof;" in last


def _entries(tar: bytes) -> list[LayerFile]:
    import tarfile

    out = []
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        for m in t.getmembers():
            if m.isfile():
                f = t.extractfile(m)
                assert f is not None
                out.append(LayerFile(m.name, "file", f.read(), executable=bool(m.mode & 0o111)))
    return out


def test_image_build_prints_the_digest(built: tuple[Path, Image], tmp_path: Path) -> None:
    env = {**os.environ, "INFERPROOF_HOME": str(tmp_path / "home"), "SOURCE_DATE_EPOCH": str(EPOCH)}
    done = inferproof(env, "image", "build", "-o", str(tmp_path / "img"), "--checkout", str(ROOT))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == built[1].digest
    again = inferproof(env, "image", "build", "-o", str(tmp_path / "img"), "--checkout", str(ROOT))
    assert (
        again.returncode != 0 and again.stderr.startswith("error: ") and "not empty" in again.stderr
    )
    other = inferproof(env, "image", "build", "--variant", "huge", "-o", str(tmp_path / "x"),
                       "--checkout", str(ROOT))  # fmt: skip
    assert other.returncode != 0
    assert " ".join(other.stderr.split()).startswith("error: unknown image variant 'huge'")


# -- the lock and the wheels ----------------------------------------------------------------


def test_the_lock_is_read_as_pip_reads_it() -> None:
    text = (ROOT / "requirements.lock").read_text()
    lock = read_lock(text)
    # Expected values read off the file with a regular expression, not by the parser.
    block = re.search(r"^rfc8785==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}.*\n)+)", text, re.M)
    assert block is not None
    assert lock["rfc8785"].version == block.group(1)
    assert lock["rfc8785"].hashes == frozenset(re.findall(r"[0-9a-f]{64}", block.group(2)))
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", text, re.M)
    assert len(lock) == len(pins) > 100


def _wheel(tmp_path: Path, members: dict[str, bytes]) -> tuple[Path, LockedPackage]:
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    return path, LockedPackage("demo", "1.0", frozenset({digest}))


def test_a_wheel_the_lock_does_not_allow_is_refused(tmp_path: Path) -> None:
    path, locked = _wheel(tmp_path, {"demo/__init__.py": b"x = 1\n"})
    assert [f.path for f in wheel_files(path, locked)] == [
        "usr/local/lib/python3.11/dist-packages/demo/__init__.py"
    ]
    other = LockedPackage("demo", "1.0", frozenset({"0" * 64}))
    with pytest.raises(VerificationError, match="is not a file the lock allows") as caught:
        wheel_files(path, other)
    assert caught.value.check == "image.wheel"


@pytest.mark.parametrize("name", ["../evil.py", "/etc/passwd", "demo-1.0.data/scripts/run", "a\\b"])
def test_a_wheel_member_outside_site_packages_is_refused(tmp_path: Path, name: str) -> None:
    path, locked = _wheel(tmp_path, {name: b"boom"})
    with pytest.raises(InputError):
        wheel_files(path, locked)


def test_a_layer_refuses_escaping_or_doubled_paths() -> None:
    with pytest.raises(InputError, match="not a path inside the image"):
        layer_tar([LayerFile("a/../../etc/x", "file", b"")], EPOCH)
    with pytest.raises(InputError, match="twice"):
        layer_tar([LayerFile("a", "file", b"1"), LayerFile("/a", "file", b"2")], EPOCH)
    with pytest.raises(InputError, match="unknown kind"):
        layer_tar([LayerFile("dev/null", "char")], EPOCH)


# -- SBOM, provenance, the signed image entry -----------------------------------------------


def _publisher(tmp_path: Path) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "publisher.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    return path, key


def test_the_sbom_and_provenance_name_every_package(built: tuple[Path, Image]) -> None:
    image = built[1]
    sbom = sbom_document(image)
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.5"
    assert sbom["metadata"]["component"]["version"] == image.digest
    purls = [c["purl"] for c in sbom["components"]]
    lock = read_lock((ROOT / "requirements.lock").read_text())
    for name in ("rfc8785", "idna", "mdurl", "shellingham", "click"):
        assert f"pkg:pypi/{name}@{lock[name].version}" in purls
    wheels = [c for c in sbom["components"] if c["purl"].startswith("pkg:pypi/")]
    for c in wheels:  # each hash is one the lock allows for that package
        assert c["hashes"][0]["content"] in lock[c["name"]].hashes
    sbom_bytes = canonical_json(sbom)
    st = provenance_statement(image, sbom_bytes)
    assert st["predicateType"] == "https://slsa.dev/provenance/v1"
    assert st["subject"][0]["digest"]["sha256"] == image.digest.split(":", 1)[1]
    (by,) = st["predicate"]["runDetails"]["byproducts"]
    assert by["digest"]["sha256"] == hashlib.sha256(sbom_bytes).hexdigest()
    assert by["annotations"]["components"] == len(sbom["components"]) == 6


def test_an_image_entry_verifies_and_every_flipped_bit_is_refused(
    built: tuple[Path, Image], tmp_path: Path
) -> None:
    _, key = _publisher(tmp_path)
    sbom = canonical_json(sbom_document(built[1]))
    entry = image_entry(provenance_statement(built[1], sbom), key)
    trusted = {publisher_id(key.public_key()): key.public_key()}
    read = read_image_entry(entry, trusted)
    assert read.digest == built[1].digest and read.components == 6
    assert read.sbom_digest == "sha256:" + hashlib.sha256(sbom).hexdigest()
    assert len(entry) < 65536  # a log entry's cap (tlog-tiles)
    for i in range(0, len(entry) * 8, 11):
        bad = bytearray(entry)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises((InputError, VerificationError)):
            read_image_entry(bytes(bad), trusted)


def test_an_entry_by_another_publisher_is_refused(
    built: tuple[Path, Image], tmp_path: Path
) -> None:
    _, key = _publisher(tmp_path)
    other = ec.generate_private_key(ec.SECP256R1())
    sbom = canonical_json(sbom_document(built[1]))
    forged = image_entry(provenance_statement(built[1], sbom), other)
    with pytest.raises(VerificationError, match="not a trusted publisher") as caught:
        read_image_entry(forged, {publisher_id(key.public_key()): key.public_key()})
    assert caught.value.check == "image.entry"
    # A receipt's envelope is never read as an image entry.
    with pytest.raises(InputError, match="not an inferproof image entry"):
        read_image_entry(canonical_json(json.loads(forged)["envelope"]),
                         {publisher_id(other.public_key()): other.public_key()})  # fmt: skip


def test_publish_logs_the_image_and_show_reads_it_back(
    built: tuple[Path, Image], tmp_path: Path
) -> None:
    import shutil

    env = {**os.environ, "INFERPROOF_HOME": str(tmp_path / "home"), "SOURCE_DATE_EPOCH": str(EPOCH)}
    image = tmp_path / "img"
    done = inferproof(env, "image", "build", "-o", str(image), "--checkout", str(ROOT))
    assert done.returncode == 0, done.stderr
    key_path, key = _publisher(tmp_path)
    published = inferproof(env, "image", "publish", str(image), "--sign-key", str(key_path))
    assert published.returncode == 0, published.stderr
    said = " ".join(published.stdout.split())
    assert f"image entry for {built[1].digest} logged at index 0 (SBOM with 6 packages)" in said
    entry = (image / "image-entry.json").read_bytes()
    trusted = {publisher_id(key.public_key()): key.public_key()}
    assert read_image_entry(entry, trusted).digest == built[1].digest
    # The publisher is not trusted by this home yet: show refuses the entry.
    untrusted = inferproof(env, "image", "show", built[1].digest)
    assert untrusted.returncode != 0 and "by a publisher this home trusts" in " ".join(
        untrusted.stderr.split()
    )
    trust = tmp_path / "home" / "trust" / "publishers"
    trust.mkdir(parents=True, exist_ok=True)
    (trust / "me.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    shown = inferproof(env, "image", "show", built[1].digest)
    assert shown.returncode == 0, shown.stderr
    assert f"image {built[1].digest} (logged at index 0, SBOM with 6 packages)" in " ".join(
        shown.stdout.split()
    )
    # An SBOM swapped for another is refused before anything is signed.
    swapped = tmp_path / "swapped"
    shutil.copytree(image, swapped)
    (swapped / "sbom.cdx.json").write_bytes((swapped / "sbom.cdx.json").read_bytes() + b" ")
    bad = inferproof(env, "image", "publish", str(swapped), "--sign-key", str(key_path))
    assert bad.returncode != 0 and "is not the SBOM the provenance names" in " ".join(
        bad.stderr.split()
    )


def test_a_signed_statement_that_is_not_a_provenance_is_refused(tmp_path: Path) -> None:
    """Validly signed, but not an image's provenance: a JSON list, a receipt-like
    statement, one with two subjects. Each is refused as image.entry, never a crash."""
    _, key = _publisher(tmp_path)
    trusted = {publisher_id(key.public_key()): key.public_key()}
    from inferproof.receipts import signed_envelope

    sign = lambda m: key.sign(m, ec.ECDSA(hashes.SHA256()))  # noqa: E731
    bad_statements = [
        [1, 2, 3],
        {"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://inferproof.dev/receipt/v1"},
        {"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1",
         "subject": [{"name": "inferproof-node", "digest": {"sha256": "ab" * 32}}] * 2},
    ]  # fmt: skip
    for st in bad_statements:
        envelope = signed_envelope(canonical_json(st), publisher_id(key.public_key()), sign)
        entry = canonical_json({"mediaType": "application/vnd.inferproof.image-entry.v1+json",
                                "envelope": envelope})  # fmt: skip
        with pytest.raises(VerificationError, match="is not an image's provenance") as caught:
            read_image_entry(entry, trusted)
        assert caught.value.check == "image.entry"


def test_malformed_records_beside_an_image_are_one_line_errors(
    built: tuple[Path, Image], tmp_path: Path
) -> None:
    import shutil

    env = {**os.environ, "INFERPROOF_HOME": str(tmp_path / "home")}
    key_path, _ = _publisher(tmp_path)
    for name, content in (("provenance.json", b"[]"), ("sbom.cdx.json", b'{"components": 1}')):
        folder = tmp_path / name
        shutil.copytree(built[0], folder)
        image = Image(built[1].digest, built[1].layers, built[1].size, built[1].config,
                      built[1].components, built[1].revision, built[1].variant, built[1].epoch)  # fmt: skip
        from inferproof.cli._image import write_records

        write_records(folder, image)
        (folder / name).write_bytes(content)
        for args in (("publish", str(folder), "--sign-key", str(key_path)), ("show", str(folder))):
            done = inferproof(env, "image", *args)
            said = " ".join(done.stderr.split())
            assert done.returncode != 0 and said.startswith("error: "), said
            assert "Traceback" not in done.stderr
            assert "not an image's provenance" in said or "lists no components" in said


def test_an_image_is_never_written_over_a_file(tmp_path: Path, cache: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("keep me")
    with pytest.raises(InputError, match="is not empty"):
        build_image(target, BuildInputs(ROOT, cache, EPOCH))
    assert target.read_text() == "keep me"


def test_the_build_reads_the_commit_not_the_working_tree(cache: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    first = build_image(tmp_path / "a", BuildInputs(clone, cache, EPOCH))
    commit = first.revision
    # Uncommitted edits to the lock and the source do not reach the image.
    with (clone / "requirements.lock").open("a") as f:
        f.write("click==0.0.1 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    with (clone / "src" / "inferproof" / "errors.py").open("a") as f:
        f.write("# an uncommitted edit\n")
    assert build_image(tmp_path / "b", BuildInputs(clone, cache, EPOCH)).digest == first.digest
    # A new commit does, and the old commit still builds as before.
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@e.org"]
    subprocess.run([*git, "checkout", "-q", "requirements.lock"], check=True, timeout=60)
    subprocess.run([*git, "commit", "-qam", "edit"], check=True, timeout=60)
    moved = build_image(tmp_path / "c", BuildInputs(clone, cache, EPOCH))
    assert moved.revision != commit and moved.digest != first.digest
    old = build_image(tmp_path / "d", BuildInputs(clone, cache, EPOCH, revision=commit))
    assert old.digest == first.digest and old.revision == commit
    # `image verify` rebuilds at the commit the image names, not the checkout's HEAD.
    env = {**os.environ, "INFERPROOF_HOME": str(tmp_path / "home"), "SOURCE_DATE_EPOCH": str(EPOCH)}
    done = inferproof(env, "image", "verify", str(tmp_path / "a"), "--checkout", str(clone))
    assert done.returncode == 0 and f"from commit {commit}" in done.stdout, done.stderr
    with pytest.raises(InputError, match="not a git revision"):
        build_image(tmp_path / "e", BuildInputs(clone, cache, EPOCH, revision="--output=x"))
    with pytest.raises(InputError, match="holding commit"):
        build_image(tmp_path / "f", BuildInputs(clone, cache, EPOCH, revision="f" * 40))
