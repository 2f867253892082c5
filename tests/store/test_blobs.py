"""The blob stores: atomic writes, safe keys, leftovers of crashed writes, listing by age.

Every test taking ``blob_store`` runs on the local directory and on S3 (moto's server,
see ``blob_backends.py``); the rest are about one backend's own mechanics.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.store.blob_backends import (
    S3Server,
    blob_backend,
    blob_store,
    leave_incomplete_write,
    s3_server,
)
from vault.errors import BlobStoreError, ConfigurationError, InvalidInput, NotFound
from vault.store.blobs import BlobStore, LocalBlobStore
from vault.store.s3_blobs import S3BlobStore, s3_client

# Fixtures from blob_backends.py: an empty store of each backend.
__all__ = ["blob_backend", "blob_store", "s3_server"]


def test_put_get_delete(blob_store: BlobStore) -> None:
    blob_store.put("ab/cd/abcdef", b"hello")
    blob_store.put("ab/cd/abcdef", bytearray(b"again"))  # replace is atomic too
    assert blob_store.get("ab/cd/abcdef") == b"again"
    assert blob_store.exists("ab/cd/abcdef")
    assert list(blob_store.list_keys()) == ["ab/cd/abcdef"]
    blob_store.delete("ab/cd/abcdef")
    blob_store.delete("ab/cd/abcdef")
    assert not blob_store.exists("ab/cd/abcdef")
    assert list(blob_store.list_keys()) == []
    with pytest.raises(NotFound):
        blob_store.get("ab/cd/abcdef")


def test_lists_every_key_once(blob_store: BlobStore) -> None:
    keys = {f"{i:02x}/{j:02x}/blob{i}{j}" for i in range(3) for j in range(4)} | {"top"}
    for key in keys:
        blob_store.put(key, key.encode())
    listed = list(blob_store.list_keys())
    assert sorted(listed) == sorted(keys)
    assert all(blob_store.get(key) == key.encode() for key in keys)


@pytest.mark.parametrize(
    "key",
    ["../x", "a/../../x", "/etc/passwd", "a//b", "", ".hidden", "a/.tmp-x", "a b", "a\\b", "é"],
)
def test_refuses_unsafe_keys(blob_store: BlobStore, key: str) -> None:
    for call in (
        lambda: blob_store.put(key, b"x"),
        lambda: blob_store.get(key),
        lambda: blob_store.exists(key),
        lambda: blob_store.delete(key),
    ):
        with pytest.raises(InvalidInput):
            call()
    assert list(blob_store.list_keys()) == []


def test_local_keys_cannot_escape_the_directory(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    with pytest.raises(InvalidInput):
        store.put("../x", b"x")
    assert not (tmp_path / "x").exists()


def test_lists_by_time_of_last_write(blob_store: BlobStore) -> None:
    blob_store.put("ab/old", b"x")
    now = datetime.now(UTC)
    assert list(blob_store.list_keys(modified_before=now + timedelta(seconds=2))) == ["ab/old"]
    assert list(blob_store.list_keys(modified_before=now - timedelta(hours=1))) == []


def test_incomplete_writes_are_never_listed_and_removed_once_stale(
    blob_store: BlobStore,
) -> None:
    blob_store.put("ab/real", b"keep")
    leave_incomplete_write(blob_store, "ab/cut")
    assert list(blob_store.list_keys()) == ["ab/real"]
    assert not blob_store.exists("ab/cut")
    if isinstance(blob_store, LocalBlobStore):
        # moto reports every multipart upload as initiated in 2010, so on S3 the age test
        # is not exercised here (a real store reports the real time).
        assert blob_store.remove_incomplete(older_than_seconds=3600) == 0  # may be in flight
    assert blob_store.remove_incomplete(older_than_seconds=0) == 1
    assert blob_store.remove_incomplete(older_than_seconds=0) == 0
    assert list(blob_store.list_keys()) == ["ab/real"]
    assert blob_store.get("ab/real") == b"keep"


def test_large_blob_roundtrip(blob_store: BlobStore) -> None:
    data = os.urandom(3 << 20)
    blob_store.put("big", memoryview(data))
    assert blob_store.get("big") == data


@pytest.mark.parametrize("size", [0, 1, 4096, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 2 << 20])
def test_reads_whole_blobs_across_read_boundaries(blob_store: BlobStore, size: int) -> None:
    """The local store reads in 1 MB calls: empty, exact and off-by-one sizes."""
    data = os.urandom(size)
    blob_store.put("ab/blob", data)
    assert blob_store.get("ab/blob") == data


# --- the local directory ---------------------------------------------------------------


def test_local_files_are_private(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    store.put("k", b"x")
    assert (tmp_path / "b" / "k").stat().st_mode & 0o077 == 0


def test_local_removes_only_stale_temp_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("ab/real", b"keep")
    stale = tmp_path / "ab" / ".tmp-real-1-1"
    fresh = tmp_path / "ab" / ".tmp-real-2-2"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"in flight")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert list(store.list_keys()) == ["ab/real"]  # temp files are never listed as blobs
    assert store.remove_incomplete(older_than_seconds=3600) == 1
    assert not stale.exists() and fresh.exists()
    assert store.get("ab/real") == b"keep"


# --- S3 ----------------------------------------------------------------------------------


def test_s3_objects_live_under_the_prefix(s3_server: S3Server) -> None:
    client = s3_server.client
    bucket = s3_server.new_bucket()
    store = S3BlobStore(client=client, bucket=bucket, prefix="tenant-a/blobs/")
    store.put("ab/cd/key", b"ciphertext")
    names = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert names == ["tenant-a/blobs/ab/cd/key"]
    other = S3BlobStore(client=client, bucket=bucket, prefix="tenant-b/")
    assert list(other.list_keys()) == []
    assert not other.exists("ab/cd/key")


def test_s3_lists_and_sweeps_only_vault_keys(s3_server: S3Server) -> None:
    """An object under the prefix that the vault cannot have written is left alone."""
    client = s3_server.client
    bucket = s3_server.new_bucket()
    client.put_object(Bucket=bucket, Key="vault/notes.txt", Body=b"operator's file")
    client.put_object(Bucket=bucket, Key="vault/a//b", Body=b"x")
    store = S3BlobStore(client=client, bucket=bucket, prefix="vault/")
    store.put("ab/real", b"x")
    assert list(store.list_keys()) == ["ab/real"]
    assert list(store.list_keys(modified_before=datetime.now(UTC) + timedelta(1))) == ["ab/real"]


@pytest.mark.slow  # 1003 PUTs to moto: about 5 s
def test_s3_paginates_listings(s3_server: S3Server) -> None:
    """More objects than one ListObjectsV2 page (1000) are all listed."""
    store = S3BlobStore(client=s3_server.client, bucket=s3_server.new_bucket())
    keys = {f"k{i:04d}" for i in range(1003)}
    for key in keys:
        store.put(key, b"")
    assert sorted(store.list_keys()) == sorted(keys)


def test_s3_missing_bucket_is_a_store_error(s3_server: S3Server) -> None:
    store = S3BlobStore(client=s3_server.client, bucket="vault-test-no-such-bucket")
    with pytest.raises(BlobStoreError):
        store.put("k", b"x")
    with pytest.raises(BlobStoreError):
        store.get("k")  # the bucket is missing, not the key
    with pytest.raises(BlobStoreError):
        list(store.list_keys())
    with pytest.raises(BlobStoreError):
        store.ping()


def test_s3_unreachable_endpoint_is_a_store_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = s3_client(
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        access_key_id="k",
        secret_access_key="s",
    )
    store = S3BlobStore(client=client, bucket="b")
    with pytest.raises(BlobStoreError):
        store.get("k")
    with pytest.raises(BlobStoreError):
        store.ping()


@pytest.mark.parametrize("prefix", ["vault", "/vault/", "a//", "a b/"])
def test_s3_refuses_malformed_prefix(s3_server: S3Server, prefix: str) -> None:
    with pytest.raises(ConfigurationError):
        S3BlobStore(client=s3_server.client, bucket="b", prefix=prefix)


def test_s3_ping_reaches_the_bucket(s3_server: S3Server) -> None:
    S3BlobStore(client=s3_server.client, bucket=s3_server.new_bucket()).ping()
