"""A node whose blobs live in S3: push, infer (ONNX and ZK) and verify with no model
bytes in the home, from the library and from the command line (INFERPROOF_BLOBS)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from inferproof import LocalNode
from inferproof.receipts import Bundle
from inferproof.runtime import NamedInputs
from inferproof.stores import S3BlobStore
from inferproof.verify import Policy
from tests._cli import inferproof

from ..zk.conftest import DECOMP, make_model
from .conftest import BUCKET
from .test_s3 import _raw


def test_a_node_on_s3_pushes_infers_proves_and_verifies(endpoint: str, tmp_path: Path) -> None:
    store = S3BlobStore(f"s3://{BUCKET}/node-lib", endpoint_url=endpoint, create_bucket=True)
    model = make_model(seed=11)
    with LocalNode(tmp_path / "home", blobs=store) as node:
        record = node.push(model.data, name="tiny", version="1")
        assert store.has(record.digest)
        node.zk_setup("tiny:1", [NamedInputs(s) for s in model.samples], dev_srs=True,
                      decomp=DECOMP)  # fmt: skip
        x = {"x": np.random.default_rng(2).uniform(-1, 1, (1, 8)).astype(np.float32)}
        plain = node.infer("tiny:1", x).bundle
        proven = node.infer("tiny:1", x, mode="zk").bundle
        from inferproof.verify import Material

        assert node.verifier().check(plain, Material()).verified
        assert node.verifier(Policy(allow_dev_srs=True)).check(proven, Material()).verified
    # Nothing of the model, its keys or its SRS is in the home's blob folder.
    local = tmp_path / "home" / "blobs" / "sha256"
    assert not local.exists() or list(local.iterdir()) == []


def test_the_command_line_on_s3(endpoint: str, tmp_path: Path, credit_files: Any) -> None:
    S3BlobStore(f"s3://{BUCKET}/node-cli", endpoint_url=endpoint, create_bucket=True)
    env = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "home"),
               INFERPROOF_BLOBS=f"s3://{BUCKET}/node-cli", INFERPROOF_S3_ENDPOINT=endpoint)  # fmt: skip
    model, inp = credit_files
    for args in (("model", "push", str(model), "--name", "risk"),
                 ("infer", "risk", "--input", str(inp), "-o", str(tmp_path / "b.json")),
                 ("verify", str(tmp_path / "b.json"))):  # fmt: skip
        done = inferproof(env, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    model_digest = Bundle.read(tmp_path / "b.json").receipt.model_digest
    listed = _raw(endpoint).list_objects_v2(Bucket=BUCKET, Prefix="node-cli/")
    keys = [o["Key"] for o in listed["Contents"]]
    assert keys == [f"node-cli/sha256/{model_digest.removeprefix('sha256:')}"]
    # Damage the object: the node refuses the model, in one line, and loses nothing.
    _raw(endpoint).put_object(Bucket=BUCKET, Key=keys[0], Body=model.read_bytes()[:-1])
    bad = inferproof(env, "infer", "risk", "--input", str(inp), "-o", str(tmp_path / "c.json"))
    assert bad.returncode == 2 and "is corrupt" in bad.stderr and "Traceback" not in bad.stderr
    wrong = inferproof(dict(env, INFERPROOF_BLOBS="s3://No_Such"), "model", "list")
    assert wrong.returncode == 2 and "is not an S3 bucket name" in wrong.stderr


def test_serve_with_blobs_in_s3(endpoint: str, tmp_path: Path, credit_files: Any) -> None:
    """`inferproof serve --blobs s3://... --s3-endpoint URL`: a model pushed over HTTP
    lands in the bucket, and an inference through the verifying client verifies."""
    import contextlib
    import subprocess
    import sys
    import time

    import httpx

    from inferproof.node import TokenStore

    S3BlobStore(f"s3://{BUCKET}/served", endpoint_url=endpoint, create_bucket=True)
    home = tmp_path / "node-home"
    token = TokenStore(home).create("ops")
    env = dict(os.environ, INFERPROOF_HOME=str(home), COLUMNS="200")
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferproof", "serve", "--port", "0",
         "--blobs", f"s3://{BUCKET}/served", "--s3-endpoint", endpoint],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().removeprefix("listening on ")
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.05)
        client = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "client-home"))
        model, inp = credit_files
        pushed = inferproof(client, "model", "push", str(model), "--name", "risk",
                            "--node", url, "--token", token)  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr
        ran = inferproof(client, "infer", "risk", "--input", str(inp), "-o",
                         str(tmp_path / "b.json"), "--node", url, "--token", token)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    listed = _raw(endpoint).list_objects_v2(Bucket=BUCKET, Prefix="served/")
    assert len(listed.get("Contents", [])) == 1
    assert not (home / "blobs" / "sha256").exists() or not list(
        (home / "blobs" / "sha256").iterdir()
    )
    refused = inferproof(env, "serve", "--port", "0", "--blobs", "s3://x")
    assert refused.returncode == 2 and "is not an S3 bucket name" in refused.stderr


def test_two_nodes_share_one_hub_on_postgresql_and_s3(
    endpoint: str, postgres: Any, tmp_path: Path, credit_model: Any
) -> None:
    """A model pushed through one node is found, loaded and run by another node with
    another home: the names are in PostgreSQL, the bytes in S3."""
    import psycopg

    from inferproof.stores import SQLRegistry
    from inferproof.verify import Material

    with psycopg.connect(postgres.url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("CREATE DATABASE shared_hub")
    url = postgres.url.rsplit("/", 1)[0] + "/shared_hub"
    store = S3BlobStore(f"s3://{BUCKET}/shared", endpoint_url=endpoint, create_bucket=True)
    with LocalNode(tmp_path / "a", blobs=store, registry=SQLRegistry(url)) as a:
        record = a.push(credit_model[0], name="risk", version="1")
    with LocalNode(tmp_path / "b", blobs=store, registry=SQLRegistry(url)) as b:
        assert [r.ref for r in b.hub.list()] == ["risk:1", "risk:latest"]
        bundle = b.infer("risk:1", {"X": credit_model[1]["X"]}).bundle
        assert bundle.receipt.model_digest == record.digest
        assert b.verifier().check(bundle, Material()).verified
