"""Blobs in S3-compatible object storage: AWS S3, MinIO, Ceph RGW, anything that speaks
the plain S3 API.

Content-addressed as on disk: the blob named ``sha256:HEX`` is the object
``PREFIX sha256/HEX``, so a put is idempotent and two nodes writing the same model
write the same object. Only core S3 calls are used (HeadObject, GetObject, PutObject
and the multipart upload boto3 makes of it, CreateBucket), with path-style addressing,
which every S3-compatible server accepts. Reads are checked: an object whose bytes
do not hash to its name is refused (:class:`~inferproof.errors.BlobCorruptError`),
whoever wrote it. Uploads past :data:`MULTIPART_THRESHOLD` go in parts, and each
upload carries its SHA-256 (``x-amz-meta-sha256``) so an operator can audit the
bucket without reading it.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, Literal

from .._canonical import check_digest, sha256_digest
from ..errors import BlobCorruptError, Error, InputError

__all__ = ["S3BlobStore", "parse_s3_url"]

# Parts of 16 MiB from 64 MiB on: a 1 GiB model is 64 parts, within S3's 10,000-part
# limit up to 160 GiB; below 64 MiB a single PUT is one request (S3 accepts up to 5 GiB).
MULTIPART_THRESHOLD = 64 << 20
MULTIPART_CHUNK = 16 << 20
# The largest blob read into memory: the hub's own model cap is 4 GiB.
MAX_BLOB_BYTES = 4 << 30
# S3 bucket names (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html):
# 3-63 characters, lower case, digits, dots and hyphens, starting and ending alphanumeric.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9._\-/]{0,200}$")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as ``(bucket, prefix)``; the prefix ends in ``/`` (or is
    empty). InputError for anything else."""
    if not url.startswith("s3://"):
        raise InputError(f"not an s3:// URL: {url[:80]!r}")
    bucket, _, prefix = url[5:].partition("/")
    if not _BUCKET.match(bucket):
        raise InputError(f"{bucket[:80]!r} is not an S3 bucket name")
    if not _PREFIX.match(prefix) or ".." in prefix.split("/"):
        raise InputError(f"{prefix[:80]!r} is not a key prefix (letters, digits, . _ - /)")
    return bucket, (prefix.rstrip("/") + "/") if prefix else ""


class S3BlobStore:
    """A :class:`~inferproof.hub.BlobStore` in a bucket (module docs).

    Example::

        store = S3BlobStore("s3://models/inferproof", endpoint_url="http://127.0.0.1:9000")
        digest = store.put(model_bytes)
        assert store.get(digest) == model_bytes
    """

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        client: Any = None,
        create_bucket: bool = False,
    ) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3})
            client = boto3.client("s3", endpoint_url=endpoint_url, config=config)
        self._s3 = client
        if create_bucket:
            with self._errors("create the bucket"):
                if not self._bucket_exists():
                    self._s3.create_bucket(Bucket=self.bucket)

    def _key(self, digest: str) -> str:
        # The key comes from a validated digest only, never a caller's string.
        return f"{self.prefix}sha256/{check_digest(digest).split(':', 1)[1]}"

    def _bucket_exists(self) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _status(exc) in (404, 403):
                return False
            raise
        return True

    def _errors(self, what: str) -> Any:
        return _S3Errors(f"S3 {self.bucket}: cannot {what}")

    def put(self, data: bytes) -> str:
        digest = sha256_digest(data)
        if self.has(digest):
            return digest
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD,
                                multipart_chunksize=MULTIPART_CHUNK)  # fmt: skip
        extra = {"Metadata": {"sha256": digest.split(":", 1)[1]}}
        with self._errors(f"write {digest}"):
            self._s3.upload_fileobj(io.BytesIO(data), self.bucket, self._key(digest),
                                    ExtraArgs=extra, Config=config)  # fmt: skip
        return digest

    def get(self, digest: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            with self._errors(f"read {digest}"):
                got = self._s3.get_object(Bucket=self.bucket, Key=self._key(digest))
                if int(got.get("ContentLength", 0)) > MAX_BLOB_BYTES:
                    raise BlobCorruptError(f"blob {digest} is over {MAX_BLOB_BYTES} bytes")
                data = got["Body"].read(MAX_BLOB_BYTES + 1)
        except ClientError as exc:  # re-raised by _S3Errors for a missing key only
            raise InputError(f"no blob {digest} in {self.bucket}") from exc
        actual = sha256_digest(data)
        if actual != digest:
            raise BlobCorruptError(
                f"blob {digest} is corrupt: its bytes hash to {actual}; refusing to load it"
            )
        return bytes(data)

    def has(self, digest: str) -> bool:
        from botocore.exceptions import ClientError

        key = self._key(digest)
        try:
            with self._errors(f"look up {digest}"):
                self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        return True

    def path(self, digest: str) -> Path | None:
        return None  # no local file: callers that need one write the checked bytes


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class _S3Errors:
    """botocore's errors as ours; a 404 is passed on for the caller to name."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> Literal[False]:
        if exc is None:
            return False
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            if _status(exc) == 404 or exc.response.get("Error", {}).get("Code") in (
                "NoSuchKey", "404", "NotFound"
            ):  # fmt: skip
                return False
            code = exc.response.get("Error", {}).get("Code", "error")
            raise Error(f"{self._what}: {code}") from None
        if isinstance(exc, BotoCoreError):
            raise Error(f"{self._what}: {exc.__class__.__name__}: {exc}") from None
        return False
