"""Build the record service from :class:`~vault.config.Settings` (CLI and API use this)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine

from vault.config import Settings
from vault.crypto.keyring import FileKeyring, KeyringSource, StaticKeyring, parse_keyring
from vault.errors import ConfigurationError
from vault.records.service import RecordService
from vault.records.types import RecordLimits
from vault.store.blobs import BlobStore, LocalBlobStore
from vault.store.database import make_engine, make_session_factory
from vault.store.migrate import upgrade

if TYPE_CHECKING:
    from vault.store.s3_blobs import S3BlobStore


def keyring_source(settings: Settings) -> KeyringSource:
    """The inline keyring if set, else the keyring file (created 0600 on first use)."""
    if settings.master_keyring is not None:
        return StaticKeyring(parse_keyring(settings.master_keyring.get_secret_value()))
    return FileKeyring(settings.resolved_master_key_file)


def blob_store(settings: Settings) -> BlobStore:
    """The configured blob store: the local directory, or an S3 bucket."""
    if settings.blob_store == "s3":
        return s3_blob_store(settings)
    return LocalBlobStore(settings.resolved_blob_dir)


def s3_blob_store(settings: Settings) -> S3BlobStore:
    """The S3 bucket of the settings; :class:`ConfigurationError` if it is incomplete."""
    # Imported here: boto3 takes about 0.4 s to import, which a vault on the local
    # store need not pay at every start.
    from vault.store.s3_blobs import S3BlobStore, s3_client

    key_id, secret = settings.blob_s3_access_key_id, settings.blob_s3_secret_access_key
    if (key_id is None) != (secret is None):
        raise ConfigurationError(
            "set both VAULT_BLOB_S3_ACCESS_KEY_ID and VAULT_BLOB_S3_SECRET_ACCESS_KEY, or neither"
        )
    client = s3_client(
        endpoint_url=settings.blob_s3_endpoint_url or None,
        region=settings.blob_s3_region,
        access_key_id=None if key_id is None else key_id.get_secret_value(),
        secret_access_key=None if secret is None else secret.get_secret_value(),
    )
    return S3BlobStore(
        client=client, bucket=settings.blob_s3_bucket, prefix=settings.blob_s3_prefix
    )


def record_service(
    settings: Settings, *, engine: Engine | None = None, migrate: bool = True
) -> RecordService:
    """A :class:`RecordService` on the settings' database, blob store and keyring."""
    engine = engine or make_engine(settings.resolved_database_url)
    if migrate:
        upgrade(engine)
    return RecordService(
        session_factory=make_session_factory(engine),
        blobs=blob_store(settings),
        keyring=keyring_source(settings),
        limits=RecordLimits.from_settings(settings),
    )
