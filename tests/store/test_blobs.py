"""The local blob store: atomic writes, safe keys, leftovers of crashed writes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from vault.errors import InvalidInput, NotFound
from vault.store.blobs import BlobStore, LocalBlobStore


def test_put_get_delete(tmp_path: Path) -> None:
    store: BlobStore = LocalBlobStore(tmp_path)
    store.put("ab/cd/abcdef", b"hello")
    store.put("ab/cd/abcdef", bytearray(b"again"))  # replace is atomic too
    assert store.get("ab/cd/abcdef") == b"again"
    assert store.exists("ab/cd/abcdef")
    assert list(store.list_keys()) == ["ab/cd/abcdef"]
    store.delete("ab/cd/abcdef")
    store.delete("ab/cd/abcdef")
    assert not store.exists("ab/cd/abcdef")
    with pytest.raises(NotFound):
        store.get("ab/cd/abcdef")


def test_files_are_private(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    store.put("k", b"x")
    assert (tmp_path / "b" / "k").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "key",
    ["../x", "a/../../x", "/etc/passwd", "a//b", "", ".hidden", "a/.tmp-x", "a b", "a\\b", "é"],
)
def test_refuses_unsafe_keys(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path / "b")
    with pytest.raises(InvalidInput):
        store.put(key, b"x")
    with pytest.raises(InvalidInput):
        store.get(key)
    assert not (tmp_path / "x").exists()


def test_removes_only_stale_temp_files(tmp_path: Path) -> None:
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


def test_large_blob_roundtrip(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    data = os.urandom(3 << 20)
    store.put("big", memoryview(data))
    assert store.get("big") == data


@pytest.mark.parametrize("size", [0, 1, 4096, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 2 << 20])
def test_reads_whole_blobs_across_read_boundaries(tmp_path: Path, size: int) -> None:
    """``get`` reads to end of file in 1 MB calls: empty, exact and off-by-one sizes."""
    store = LocalBlobStore(tmp_path)
    data = os.urandom(size)
    store.put("ab/blob", data)
    assert store.get("ab/blob") == data
