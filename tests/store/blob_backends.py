"""Blob store backends for the tests: the local directory, and S3 on a real S3-protocol
server (moto's server mode, ``moto.server.ThreadedMotoServer``, on a free loopback port).

A test that takes ``blob_store`` runs once per backend. Each S3 test gets a bucket of its
own. What moto does not prove: AWS's own consistency and durability, authentication and
IAM policies (moto accepts any signature), multipart and size limits, real latency.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from vault.config import Settings, get_settings
from vault.store.blobs import BlobStore, LocalBlobStore
from vault.store.s3_blobs import S3BlobStore, s3_client

BLOB_BACKENDS = ["local", "s3"]
#: Any non-empty pair: moto checks that requests are signed, not by whom.
S3_ACCESS_KEY_ID = "vault-test-key-id"
S3_SECRET_ACCESS_KEY = "vault-test-secret-access-key"
S3_REGION = "us-east-1"


class S3Server:
    """The server's URL and one client for it (boto3 clients are thread-safe; building
    one loads botocore's service model, about 0.1 s)."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url

    @cached_property
    def client(self) -> Any:
        return s3_client(
            endpoint_url=self.endpoint_url,
            region=S3_REGION,
            access_key_id=S3_ACCESS_KEY_ID,
            secret_access_key=S3_SECRET_ACCESS_KEY,
        )

    def settings(self, *, data_dir: Path, bucket: str, **more: object) -> Settings:
        """Settings of a vault whose blobs go to ``bucket`` on this server."""
        return get_settings(
            data_dir=data_dir,
            blob_store="s3",
            blob_s3_bucket=bucket,
            blob_s3_endpoint_url=self.endpoint_url,
            blob_s3_region=S3_REGION,
            blob_s3_access_key_id=S3_ACCESS_KEY_ID,
            blob_s3_secret_access_key=S3_SECRET_ACCESS_KEY,
            **more,
        )

    def new_bucket(self) -> str:
        name = f"vault-test-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3-protocol server in this process for the whole session, stopped at the end."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture(params=BLOB_BACKENDS)
def blob_backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def blob_store(blob_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> BlobStore:
    """An empty blob store of each backend."""
    if blob_backend == "local":
        return LocalBlobStore(tmp_path / "blobs")
    server: S3Server = request.getfixturevalue("s3_server")
    return S3BlobStore(client=server.client, bucket=server.new_bucket(), prefix="vault/")


def leave_incomplete_write(store: BlobStore, key: str) -> None:
    """What a writer killed mid-``put`` leaves behind, as each backend can leave it."""
    if isinstance(store, LocalBlobStore):
        path = store.root.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_name(f".tmp-{path.name}-{os.getpid()}-1").write_bytes(b"partial")
        return
    assert isinstance(store, S3BlobStore)
    client = store._client
    name = store.prefix + key
    upload = client.create_multipart_upload(Bucket=store.bucket, Key=name)
    client.upload_part(
        Bucket=store.bucket, Key=name, UploadId=upload["UploadId"], PartNumber=1, Body=b"x"
    )
