"""The blob store as an operator meets it: `vault doctor`'s check (the local directory,
or an S3 bucket it reaches) and `vault sweep` on an S3 bucket configured by environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.served import run_vault, vault_env
from tests.store.blob_backends import (
    S3_ACCESS_KEY_ID,
    S3_REGION,
    S3_SECRET_ACCESS_KEY,
    S3Server,
    s3_server,
)
from vault.cli.doctor import CHECKS, FIXES, _blob_store
from vault.config import get_settings
from vault.errors import BlobStoreError

# Fixture from tests/store/blob_backends.py: moto's S3 server.
__all__ = ["s3_server"]


def test_doctor_runs_the_blob_store_check() -> None:
    assert _blob_store in CHECKS
    assert BlobStoreError.code in FIXES


def test_local_directory(tmp_path: Path) -> None:
    check = _blob_store(get_settings(data_dir=tmp_path))
    assert check.ok and "created on first serve" in check.detail


def test_reachable_bucket(tmp_path: Path, s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    check = _blob_store(s3_server.settings(data_dir=tmp_path, bucket=bucket))
    assert check.ok
    assert f"S3 bucket {bucket} reachable at {s3_server.endpoint_url}" == check.detail


def test_missing_bucket_fails(tmp_path: Path, s3_server: S3Server) -> None:
    with pytest.raises(BlobStoreError):
        _blob_store(s3_server.settings(data_dir=tmp_path, bucket="vault-test-nobody-made-this"))


def test_sweep_on_s3_from_the_environment(tmp_path: Path, s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    # What a killed writer's late PUT leaves: an object no version and no intent names.
    s3_server.client.put_object(Bucket=bucket, Key="vault/ab/cd/landed-late", Body=b"x")
    env = vault_env(
        tmp_path / "data",
        VAULT_BLOB_STORE="s3",
        VAULT_BLOB_S3_BUCKET=bucket,
        VAULT_BLOB_S3_PREFIX="vault/",
        VAULT_BLOB_S3_ENDPOINT_URL=s3_server.endpoint_url,
        VAULT_BLOB_S3_REGION=S3_REGION,
        VAULT_BLOB_S3_ACCESS_KEY_ID=S3_ACCESS_KEY_ID,
        VAULT_BLOB_S3_SECRET_ACCESS_KEY=S3_SECRET_ACCESS_KEY,
    )
    kept = run_vault(["sweep"], env)
    assert kept.returncode == 0, kept.stderr
    assert "removed 0 unreferenced blobs" in kept.stdout  # younger than the grace period
    swept = run_vault(["sweep", "--older-than", "0"], env)
    assert swept.returncode == 0, swept.stderr
    assert "removed 1 unreferenced blobs" in swept.stdout
    assert "Contents" not in s3_server.client.list_objects_v2(Bucket=bucket)
