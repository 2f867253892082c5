"""Blobs on an S3-compatible object store (AWS S3, MinIO, Ceph RGW...), through boto3.

Same :class:`~vault.store.blobs.BlobStore` contract as the local directory:

- ``put`` is one ``PutObject``: S3 makes an object visible whole or not at all, and
  acknowledges it once stored durably, so no temporary name is needed. Records are at
  most ``document_max_bytes`` (25 MiB by default), far under the 5 GiB of one PUT, so
  the store never starts multipart uploads; ``remove_incomplete`` still aborts stale
  ones under the prefix (left by an operator's tooling or an older client).
- ``list_keys(modified_before=...)`` filters on each object's ``LastModified``, which
  the sweeper uses to find objects that no version references and no intent names: a
  writer killed while its PUT was on the wire can have the server finish that PUT
  after the sweep has already reclaimed the intent.

Objects are named ``prefix + key``; names under the prefix that are not vault keys are
neither listed nor touched, so the vault never deletes what it did not write.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from vault.errors import BlobStoreError, ConfigurationError, NotFound
from vault.store.blobs import Bytes, check_key

#: Empty, or ``/``-terminated segments: keys stay readable in the bucket's console.
PREFIX_PATTERN = r"^([A-Za-z0-9._-]+/)*$"
_PREFIX = re.compile(PREFIX_PATTERN)
#: Error codes S3 (and compatible servers) give for an absent key.
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
#: Connections per process: anyio's worker threads (40) serving reads plus a bundle
#: import's parallel puts (8); past the pool size urllib3 opens and drops extra sockets.
_POOL_CONNECTIONS = 50


def s3_client(
    *,
    endpoint_url: str | None,
    region: str,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> Any:
    """A boto3 S3 client. Without keys, boto3's own chain finds credentials (its
    environment variables, config files, an instance or task role)."""
    session = boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
    )
    return session.client(
        "s3",
        endpoint_url=endpoint_url or None,
        config=Config(
            # "standard" retries throttling and transient errors with backoff, 3 tries;
            # bounded timeouts turn a stuck store into BlobStoreError (503), not a hang.
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=_POOL_CONNECTIONS,
        ),
    )


class S3BlobStore:
    """Ciphertext as objects ``prefix + key`` in one bucket. ``client`` is a boto3 S3
    client (thread-safe; each process builds its own)."""

    def __init__(self, *, client: Any, bucket: str, prefix: str = "") -> None:
        if not bucket:
            raise ConfigurationError("the S3 blob store needs a bucket")
        if not _PREFIX.fullmatch(prefix):
            raise ConfigurationError(
                "S3 key prefix must be empty or end with '/' ([A-Za-z0-9._-] segments)"
            )
        self._client = client
        self.bucket = bucket
        self.prefix = prefix

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: Bytes) -> None:
        body = bytes(data) if isinstance(data, memoryview) else data
        self._call("write", self._client.put_object, Key=self._name(key), Body=body)

    def get(self, key: str) -> bytes:
        name = self._name(key)
        reply = self._call("read", self._client.get_object, Key=name, missing=key)
        try:
            data: bytes = reply["Body"].read()
        except BotoCoreError as exc:  # the connection broke while the body streamed
            raise BlobStoreError(f"blob store read failed: {exc}") from exc
        return data

    def delete(self, key: str) -> None:
        # S3 answers 204 for an absent key too: deletion is idempotent by itself.
        self._call("delete", self._client.delete_object, Key=self._name(key))

    def exists(self, key: str) -> bool:
        try:
            self._call("read", self._client.head_object, Key=self._name(key), missing=key)
        except NotFound:
            return False
        return True

    def list_keys(self, *, modified_before: datetime | None = None) -> Iterator[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in self._pages("list", pages):
            for item in page.get("Contents", ()):
                key = item["Key"][len(self.prefix) :]
                if modified_before is not None and item["LastModified"] >= modified_before:
                    continue
                if _is_key(key):
                    yield key

    def remove_incomplete(self, *, older_than_seconds: float) -> int:
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        stale = [
            (upload["Key"], upload["UploadId"])
            for page in self._pages("list", pages)
            for upload in page.get("Uploads", ())
            if upload["Initiated"] <= cutoff
        ]
        for name, upload_id in stale:
            self._call("delete", self._client.abort_multipart_upload, Key=name, UploadId=upload_id)
        return len(stale)

    def ping(self) -> None:
        """Raise :class:`BlobStoreError` unless the bucket answers (``vault doctor``)."""
        self._call("reach", self._client.head_bucket)

    def _call(self, what: str, method: Any, *, missing: str | None = None, **kwargs: Any) -> Any:
        try:
            return method(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if missing is not None and code in _MISSING:
                raise NotFound("no such blob", details={"key": missing}) from None
            raise BlobStoreError(f"blob store {what} failed: S3 error {code}") from exc
        except BotoCoreError as exc:  # connection refused, timeout, bad credentials file
            raise BlobStoreError(f"blob store {what} failed: {exc}") from exc

    def _pages(self, what: str, pages: Any) -> Iterator[dict[str, Any]]:
        try:
            yield from pages
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            raise BlobStoreError(f"blob store {what} failed: S3 error {code}") from exc
        except BotoCoreError as exc:
            raise BlobStoreError(f"blob store {what} failed: {exc}") from exc


def _is_key(name: str) -> bool:
    try:
        check_key(name)
    except ValueError:
        return False
    return True
