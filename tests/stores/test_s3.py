"""The S3 blob store against a real S3 protocol server on loopback.

No S3-compatible server (MinIO, Ceph RGW, Garage) installs from the registries here,
so the server is moto's standalone one: a stand-in that speaks the S3 HTTP protocol,
reached by the real boto3 client over real HTTP. The store uses the plain S3 API
only, which is what lets MinIO or AWS take its place unchanged."""

from __future__ import annotations

import hashlib
from typing import Any

import boto3
import pytest
from botocore.config import Config

from inferproof._canonical import sha256_digest
from inferproof.errors import BlobCorruptError, Error, InputError
from inferproof.stores import S3BlobStore, _s3, parse_s3_url

from .conftest import BUCKET


def _raw(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))


@pytest.fixture()
def store(endpoint: str, request: pytest.FixtureRequest) -> S3BlobStore:
    prefix = request.node.name.replace("[", "-").replace("]", "")
    return S3BlobStore(f"s3://{BUCKET}/{prefix}", endpoint_url=endpoint, create_bucket=True)


def test_put_get_has_and_idempotence(store: S3BlobStore, endpoint: str) -> None:
    data = b"model bytes" * 1000
    digest = store.put(data)
    assert digest == sha256_digest(data) and store.has(digest)
    assert store.get(digest) == data and store.path(digest) is None
    assert store.put(data) == digest  # the same content: the same object, once
    listed = _raw(endpoint).list_objects_v2(Bucket=BUCKET, Prefix=store.prefix)
    assert [o["Key"] for o in listed["Contents"]] == [f"{store.prefix}sha256/{digest[7:]}"]
    head = _raw(endpoint).head_object(Bucket=BUCKET, Key=listed["Contents"][0]["Key"])
    assert head["Metadata"]["sha256"] == digest[7:]


def test_large_blobs_go_in_parts(store: S3BlobStore, endpoint: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    # S3's smallest part is 5 MiB: 11 MiB in 5 MiB parts is three parts.
    monkeypatch.setattr(_s3, "MULTIPART_THRESHOLD", 5 << 20)
    monkeypatch.setattr(_s3, "MULTIPART_CHUNK", 5 << 20)
    data = hashlib.sha256(b"seed").digest() * ((11 << 20) // 32)
    digest = store.put(data)
    head = _raw(endpoint).head_object(Bucket=BUCKET, Key=f"{store.prefix}sha256/{digest[7:]}")
    assert head["ETag"].strip('"').endswith("-3")  # S3's ETag of a three-part upload
    assert store.get(digest) == data


def test_a_corrupt_object_is_refused(store: S3BlobStore, endpoint: str) -> None:
    digest = store.put(b"the real model")
    _raw(endpoint).put_object(Bucket=BUCKET, Key=f"{store.prefix}sha256/{digest[7:]}",
                              Body=b"the real modeL")  # fmt: skip
    with pytest.raises(BlobCorruptError, match="is corrupt: its bytes hash to sha256:"):
        store.get(digest)


def test_a_missing_blob_and_bad_names(store: S3BlobStore) -> None:
    absent = sha256_digest(b"never stored")
    assert not store.has(absent)
    with pytest.raises(InputError, match=f"no blob {absent}"):
        store.get(absent)
    with pytest.raises(InputError):
        store.get("sha256:../../etc/passwd")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://bucket/x", "not an s3:// URL"),
        ("s3://Bad_Bucket/x", "is not an S3 bucket name"),
        ("s3://ok-bucket/../x", "is not a key prefix"),
        ("s3://ok-bucket/a b", "is not a key prefix"),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_s3_url(url)


def test_prefixes_are_normalised() -> None:
    assert parse_s3_url("s3://models") == ("models", "")
    assert parse_s3_url("s3://models/a/b/") == ("models", "a/b/")


def test_an_unreachable_endpoint_is_one_clear_error(endpoint: str) -> None:
    del endpoint  # only its credentials: this store points at a closed port
    store = S3BlobStore(f"s3://{BUCKET}/x", endpoint_url="http://127.0.0.1:1")
    with pytest.raises(Error, match=f"S3 {BUCKET}: cannot look up .*EndpointConnectionError"):
        store.put(b"x")
