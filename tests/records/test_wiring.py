"""The record service built from settings: the blob store the settings choose."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.blob_backends import (
    S3_SECRET_ACCESS_KEY,
    S3Server,
    s3_server,
)
from vault.config import Settings, get_settings
from vault.errors import ConfigurationError
from vault.records.wiring import blob_store, record_service
from vault.store.blobs import LocalBlobStore
from vault.store.s3_blobs import S3BlobStore

# Fixture from tests/store/blob_backends.py: moto's S3 server.
__all__ = ["s3_server"]


def _s3_settings(tmp_path: Path, server: S3Server, bucket: str, **more: object) -> Settings:
    return server.settings(
        data_dir=tmp_path / "data", bucket=bucket, blob_s3_prefix="vault/blobs/", **more
    )


def test_local_directory_by_default(tmp_path: Path) -> None:
    store = blob_store(get_settings(data_dir=tmp_path / "data"))
    assert isinstance(store, LocalBlobStore)
    assert store.root == (tmp_path / "data" / "blobs").resolve()


def test_s3_setting_stores_records_in_the_bucket(
    tmp_path: Path, s3_server: S3Server, database_url: str
) -> None:
    bucket = s3_server.new_bucket()
    settings = _s3_settings(tmp_path, s3_server, bucket, database_url=database_url)
    service = record_service(settings)
    assert isinstance(service.blobs, S3BlobStore)
    patient = service.create_patient()
    info = service.put_record(
        patient_id=patient,
        resource={"resourceType": "Observation", "status": "final", "code": {"text": "pulse"}},
    )
    names = [o["Key"] for o in s3_server.client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(names) == 1 and names[0].startswith("vault/blobs/")
    stored = service.get_record(patient_id=patient, record_id=info.record_id)
    assert stored.resource()["code"] == {"text": "pulse"}
    assert service.verify(deep=True).ok


def test_s3_needs_a_bucket(tmp_path: Path, s3_server: S3Server) -> None:
    with pytest.raises(ConfigurationError, match="bucket"):
        blob_store(_s3_settings(tmp_path, s3_server, ""))


def test_s3_keys_come_in_pairs(tmp_path: Path) -> None:
    settings = get_settings(
        data_dir=tmp_path, blob_store="s3", blob_s3_bucket="b", blob_s3_access_key_id="id"
    )
    with pytest.raises(ConfigurationError, match="both"):
        blob_store(settings)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("blob_store", "ftp"),
        ("blob_s3_prefix", "no-slash"),
        ("blob_s3_prefix", "/abs/"),
        ("blob_s3_endpoint_url", "127.0.0.1:9000"),
    ],
)
def test_malformed_s3_settings_are_refused(tmp_path: Path, field: str, value: str) -> None:
    with pytest.raises(ConfigurationError):
        get_settings(data_dir=tmp_path, **{field: value})


def test_s3_secret_is_not_printed(tmp_path: Path, s3_server: S3Server) -> None:
    settings = _s3_settings(tmp_path, s3_server, "b")
    assert S3_SECRET_ACCESS_KEY not in repr(settings)
