"""``inferproof migrate``: a real embedded home (signed model, inferences, bundles, tokens,
a workflow) copied into a real PostgreSQL and an S3 server, then served from there:
old bundles verify, old tokens authenticate, new receipts extend the same log. And
every refusal: no database, another log in the target, a tampered source (nothing
copied), a missing log key, a bundle stored with other contents; the command line."""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from inferproof import LocalNode
from inferproof.engine import Storage
from inferproof.errors import InputError, VerificationError
from inferproof.log import SQLiteLogStore, TlogProof, verify_consistency
from inferproof.node import TokenStore, migrate
from inferproof.node._bundles import IssuedBundles
from inferproof.receipts import Bundle, receipt_digest
from inferproof.stores import (
    BundleSummary,
    PostgresLogStore,
    S3BlobStore,
    SQLBundleStore,
    SQLRegistry,
    SQLTokenStore,
    SQLWorkflowStore,
    hash_token,
    sqlalchemy_url,
)
from tests._cli import inferproof
from tests.conftest import mlp_input

from .conftest import BUCKET
from .test_s3 import _raw


@dataclass(frozen=True)
class Home:
    root: Path
    bundles: list[Bundle]
    ids: list[str]
    tokens: list[str]
    notes: dict[int, bytes]  # every checkpoint of the embedded log, as stored
    blobs: list[str]


def _fresh_database(postgres: Any) -> str:
    import psycopg

    name = "mig_" + uuid.uuid4().hex[:16]
    with psycopg.connect(postgres.url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres.url.replace("+psycopg", "").rsplit("/", 1)[0] + "/" + name


def _signing_key(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    return path


def _build(root: Path, model: bytes, tmp: Path) -> Home:
    """An embedded home as a node leaves it: a signed model, three receipts in the
    log and their bundles stored, two tokens, one workflow definition."""
    with LocalNode(root, storage=Storage()) as node:
        node.push(model, name="mlp", version="1", sign_key=_signing_key(tmp / "pub.pem"))
        bundles = [node.infer("mlp:1", mlp_input(seed), nonce=f"n-{seed}").bundle
                   for seed in range(3)]  # fmt: skip
    tokens = [TokenStore(root).create("ci"), TokenStore(root).create("second one")]
    issued = IssuedBundles(root / "node" / "bundles.sqlite")
    ids = [
        issued.add(receipt_digest(b), TlogProof.parse(b.tlog_entry or "").index,
                   b.dumps().encode(), owner=hash_token(tokens[i % 2]))
        for i, b in enumerate(bundles)
    ]  # fmt: skip
    issued.close()
    workflows = SQLWorkflowStore("sqlite:///" + str(root / "workflows.sqlite"))
    workflows.put("risk", "model: mlp:1\n", "sha256:" + "ab" * 32, created=1.0)
    workflows.close()
    log = SQLiteLogStore(root / "log" / "log.sqlite")
    notes = {size: log.checkpoint(size) or b"" for size in log.checkpoint_sizes()}
    log.close()
    blobs = sorted(p.name for p in (root / "blobs" / "sha256").iterdir())
    return Home(root, bundles, ids, tokens, notes, blobs)


@pytest.fixture()
def home_dir(tmp_path: Path, mlp_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> Home:
    for name in ("INFERPROOF_DATABASE", "INFERPROOF_BLOBS", "INFERPROOF_S3_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    return _build(tmp_path / "home", mlp_bytes, tmp_path)


@pytest.fixture()
def target(postgres: Any, endpoint: str, request: pytest.FixtureRequest) -> Storage:
    prefix = "mig-" + uuid.uuid4().hex[:8]
    S3BlobStore(f"s3://{BUCKET}/{prefix}", endpoint_url=endpoint, create_bucket=True)
    return Storage(database=_fresh_database(postgres), blobs=f"s3://{BUCKET}/{prefix}",
                   s3_endpoint=endpoint)  # fmt: skip


def _objects(storage: Storage) -> list[str]:
    assert storage.blobs is not None and storage.s3_endpoint is not None
    prefix = storage.blobs.removeprefix(f"s3://{BUCKET}/") + "/"
    listed = _raw(storage.s3_endpoint).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", []))


def _assert_empty(storage: Storage) -> None:
    """Nothing of any part is in the target."""
    assert storage.database is not None
    log = PostgresLogStore(storage.database)
    assert (log.size(), log.get_meta("origin"), log.checkpoint_sizes()) == (0, None, [])
    log.close()
    assert SQLRegistry(sqlalchemy_url(storage.database)).list() == []
    assert SQLBundleStore(storage.database).count() == 0
    assert SQLTokenStore(storage.database).list() == []
    assert _objects(storage) == []


def test_migrate_copies_everything_and_the_node_serves_it(home_dir: Home, target: Storage) -> None:
    stages: set[str] = set()
    done = migrate(home_dir.root, target, lambda stage, n, total: stages.add(stage))
    assert (done.log_size, done.bundles, done.tokens, done.workflows) == (3, 3, 2, 1)
    assert done.checkpoints == len(home_dir.notes) and done.blobs == len(home_dir.blobs)
    assert done.models == 2  # mlp:1 and mlp:latest
    assert {"log", "blobs", "models", "bundles"} <= stages
    assert target.database is not None
    # Every blob is in S3; the model versions and their signatures are in PostgreSQL.
    assert _objects(target) == home_dir.blobs
    registry = SQLRegistry(sqlalchemy_url(target.database))
    assert sorted(r.ref for r in registry.list()) == ["mlp:1", "mlp:latest"]
    assert registry.by_name("mlp", "1").signature_digest is not None  # type: ignore[union-attr]
    # The log: every checkpoint byte for byte (the same roots follow from the same notes).
    log = PostgresLogStore(target.database)
    assert {s: log.checkpoint(s) for s in log.checkpoint_sizes()} == home_dir.notes
    log.close()
    # Bundles keep their ids, owners and search fields; tokens their hashes and labels.
    bundles = SQLBundleStore(target.database)
    for bundle_id, bundle in zip(home_dir.ids, home_dir.bundles, strict=True):
        assert bundles.by_id(bundle_id) == bundle.dumps().encode()
    source = IssuedBundles(home_dir.root / "node" / "bundles.sqlite")
    for summary, owner, _ in source.export():
        assert owner is not None
        page, _ = bundles.find(_query(owner))
        assert summary in page
    source.close()
    tokens = SQLTokenStore(target.database)
    assert tokens.list() == TokenStore(home_dir.root).list()
    assert all(tokens.check(t) == hash_token(t) for t in home_dir.tokens)
    assert SQLWorkflowStore(sqlalchemy_url(target.database)).get("risk") is not None

    old_size = max(home_dir.notes)
    with LocalNode(home_dir.root, storage=target) as node:
        # A bundle issued before the migration verifies against the migrated node ...
        receipt = node.verifier().verify(home_dir.bundles[0])
        assert receipt.receipt.nonce == "n-0"
        # ... and a new receipt extends the same log, consistently with the old checkpoint.
        old_root = node.log.checkpoint(old_size).root_hash
        new = node.infer("mlp:1", mlp_input(9)).bundle
        assert TlogProof.parse(new.tlog_entry or "").index == old_size
        new_root = node.log.checkpoint().root_hash
        verify_consistency(old_size, old_size + 1, old_root, new_root,
                           node.log.consistency_proof(old_size))  # fmt: skip
        node.verifier().verify(new)
    # The embedded log was not touched.
    local = SQLiteLogStore(home_dir.root / "log" / "log.sqlite")
    assert local.size() == old_size
    local.close()


def _query(owner: str) -> Any:
    from inferproof.stores import BundleQuery

    return BundleQuery(owner=owner)


def test_a_rerun_compares_what_is_there_and_finishes(home_dir: Home, target: Storage) -> None:
    """A failure in a later stage (here: workflows refused) leaves the finished parts;
    the re-run only compares the log, skips identical bundles and tokens, finishes."""
    assert target.database is not None
    blocker = SQLWorkflowStore(sqlalchemy_url(target.database))
    blocker.put("other", "x", "sha256:" + "cd" * 32, created=2.0)
    with pytest.raises(InputError, match="already holds workflows"):
        migrate(home_dir.root, target)
    assert SQLBundleStore(target.database).count() == 3  # the parts before it are kept
    assert blocker.delete("other")
    blocker.close()
    again = migrate(home_dir.root, target)
    assert (again.log_size, again.bundles, again.tokens, again.workflows) == (3, 3, 2, 1)
    log = PostgresLogStore(target.database)
    assert log.size() == 3 and {s: log.checkpoint(s) for s in log.checkpoint_sizes()} == (
        home_dir.notes
    )
    log.close()
    assert SQLBundleStore(target.database).count() == 3
    assert len(SQLTokenStore(target.database).list()) == 2


def test_a_log_grown_after_the_migration_is_refused(home_dir: Home, target: Storage) -> None:
    migrate(home_dir.root, target)
    with LocalNode(home_dir.root, storage=target) as node:
        node.infer("mlp:1", mlp_input(5))
    with pytest.raises(InputError, match=r"already holds a log .*size 4.* not this home's"):
        migrate(home_dir.root, target)


def test_migrate_needs_a_database(home_dir: Home) -> None:
    with pytest.raises(InputError, match=r"migrate copies into a database: give --database"):
        migrate(home_dir.root, Storage())
    with pytest.raises(InputError, match="is not a node's home folder"):
        migrate(home_dir.root / "nowhere", Storage(database="postgresql://x@127.0.0.1/x"))


def test_a_target_holding_another_log_is_refused(
    home_dir: Home, target: Storage, tmp_path: Path, mlp_bytes: bytes
) -> None:
    other = _build(tmp_path / "other", mlp_bytes, tmp_path)
    migrate(other.root, Storage(database=target.database))
    with pytest.raises(InputError, match=r"already holds a log \(inferproof\.local/"):
        migrate(home_dir.root, target)
    assert _objects(target) == []  # refused before any blob was copied
    assert SQLBundleStore(target.database or "").count() == 3  # only the other home's


def test_a_tampered_source_copies_nothing(home_dir: Home, target: Storage) -> None:
    db = sqlite3.connect(home_dir.root / "log" / "log.sqlite")
    (data,) = db.execute("SELECT data FROM entries WHERE idx = 1").fetchone()
    db.execute("UPDATE entries SET data = ? WHERE idx = 1", (bytes([data[0] ^ 1]) + data[1:],))
    db.commit()
    db.close()
    with pytest.raises(VerificationError, match="wrong root") as caught:
        migrate(home_dir.root, target)
    assert caught.value.check == "log.copy"
    _assert_empty(target)


def test_a_missing_log_key_is_refused(home_dir: Home, target: Storage) -> None:
    (home_dir.root / "keys" / "log.key").unlink()
    with pytest.raises(InputError, match=r"keys/log.key is missing: the log cannot be checked"):
        migrate(home_dir.root, target)
    _assert_empty(target)


def test_a_bundle_stored_with_other_contents_is_refused(home_dir: Home, target: Storage) -> None:
    assert target.database is not None
    source = IssuedBundles(home_dir.root / "node" / "bundles.sqlite")
    summary, owner, data = next(iter(source.export()))
    source.close()
    forged = BundleSummary(**{**summary.__dict__, "nonce": "forged"})
    store = SQLBundleStore(target.database)
    store.import_rows([(forged, owner, data)])
    with pytest.raises(InputError, match=f"bundle {summary.id} is already stored with other"):
        migrate(home_dir.root, target)
    assert store.count() == 1  # the import rolled back: only the forged row
    store.close()


def test_import_rows_refuses_foreign_rows_and_keeps_order(postgres: Any) -> None:
    url = _fresh_database(postgres)
    store = SQLBundleStore(url)
    rows = [(BundleSummary(f"{i:024x}", "sha256:" + f"{i:064x}", i, 100.0 + i, None, None,
                           None, None), "o", b"x%d" % i) for i in range(1, 4)]  # fmt: skip
    assert store.import_rows(rows[:2]) == (2, 0)
    assert store.import_rows(rows, total=3) == (1, 2)  # the first two are skipped
    page, _ = store.find(_query("o"))
    assert [s.id for s in page] == [rows[2][0].id, rows[1][0].id, rows[0][0].id]
    assert page[0].created == 103.0 and page[0].log_index == 3
    with pytest.raises(InputError, match="the target holds 2 bundles that are not the source's"):
        store.import_rows(rows[:1], total=1)
    taken = BundleSummary("f" * 24, rows[0][0].receipt_digest, 9, 1.0, None, None, None, None)
    with pytest.raises(InputError, match="already stored under another id"):
        store.import_rows([(taken, "o", b"y")])
    malformed = BundleSummary("nope", "sha256:" + "9" * 64, None, 1.0, None, None, None, None)
    with pytest.raises(InputError, match="is not 24 hex digits"):
        store.import_rows([(malformed, None, b"z")])
    assert store.count() == 3
    tokens = SQLTokenStore(url)
    from inferproof.stores import TokenInfo

    info = TokenInfo("ab" * 32, 5.0, "ci")
    assert tokens.import_tokens([info]) == 1 and tokens.import_tokens([info], total=1) == 0
    with pytest.raises(InputError, match="already stored with another time or label"):
        tokens.import_tokens([TokenInfo("ab" * 32, 6.0, "ci")])
    with pytest.raises(InputError, match="is not 64 hex digits"):
        tokens.import_tokens([TokenInfo("xyz", 6.0, "ci")])
    with pytest.raises(InputError, match="the target holds 1 tokens that are not the source's"):
        tokens.import_tokens([], total=0)
    assert tokens.list() == [info]


def test_the_command_line(home_dir: Home, target: Storage) -> None:
    env = dict(os.environ, INFERPROOF_HOME=str(home_dir.root), COLUMNS="300")
    assert target.database and target.blobs and target.s3_endpoint
    done = inferproof(env, "migrate", "--database", target.database, "--blobs", target.blobs,
                      "--s3-endpoint", target.s3_endpoint)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ok: ") and "3 log entries" in lines[0]
    assert "3 bundles, 2 tokens, 1 workflow rows copied and checked" in lines[0]
    bad = inferproof(env, "migrate", "--database", "mysql://db/x")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: the database must be a postgresql:// URL")
    assert len(bad.stderr.strip().splitlines()) == 1
    none = inferproof(env, "migrate")
    assert none.returncode == 2 and "migrate copies into a database" in none.stderr
