"""Build the record service from :class:`~vault.config.Settings` (CLI and API use this)."""

from __future__ import annotations

from sqlalchemy import Engine

from vault.config import Settings
from vault.crypto.keyring import FileKeyring, KeyringSource, StaticKeyring, parse_keyring
from vault.records.service import RecordService
from vault.records.types import RecordLimits
from vault.store.blobs import BlobStore, LocalBlobStore
from vault.store.database import make_engine, make_session_factory
from vault.store.migrate import upgrade


def keyring_source(settings: Settings) -> KeyringSource:
    """The inline keyring if set, else the keyring file (created 0600 on first use)."""
    if settings.master_keyring is not None:
        return StaticKeyring(parse_keyring(settings.master_keyring.get_secret_value()))
    return FileKeyring(settings.resolved_master_key_file)


def blob_store(settings: Settings) -> BlobStore:
    """The configured blob store. (An S3-compatible backend would be chosen here.)"""
    return LocalBlobStore(settings.resolved_blob_dir)


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
