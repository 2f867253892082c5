"""The sweeper removes blobs that nothing names once they are older than the grace
period, judged by the store's own time of last write; on each database and blob store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from tests.store.blob_backends import blob_backend, blob_store, s3_server
from vault.crypto.keyring import StaticKeyring
from vault.records.service import RecordService
from vault.store.blobs import BlobStore
from vault.store.database import transaction
from vault.store.record_models import PendingBlobRow

# Fixtures from tests/store/blob_backends.py: an empty blob store of each backend.
__all__ = ["blob_backend", "blob_store", "s3_server"]

Obs = Callable[..., dict[str, Any]]
GRACE = 3600
LATER = timedelta(seconds=2 * GRACE)


def _service(
    sessions: sessionmaker[Session], blobs: BlobStore, keyring: StaticKeyring, *, at: datetime
) -> RecordService:
    return RecordService(session_factory=sessions, blobs=blobs, keyring=keyring, clock=lambda: at)


def test_old_blob_that_nothing_names_is_swept(
    session_factory: sessionmaker[Session],
    blob_store: BlobStore,
    keyring: StaticKeyring,
    make_observation: Obs,
) -> None:
    now = datetime.now(UTC)
    service = _service(session_factory, blob_store, keyring, at=now)
    patient = service.create_patient()
    kept = service.put_record(patient_id=patient, resource=make_observation(1))
    # A PUT that landed after the sweeper had reclaimed its writer's intent: no intent,
    # no version, only the object.
    blob_store.put("ab/cd/landed-late", b"ciphertext of a dead writer")

    young = service.sweep(older_than_seconds=GRACE)
    assert young.unreferenced_removed == 0  # may still be a live writer's
    assert blob_store.exists("ab/cd/landed-late")

    later = _service(session_factory, blob_store, keyring, at=now + LATER)
    report = later.sweep(older_than_seconds=GRACE)
    assert report.unreferenced_removed == 1
    assert not blob_store.exists("ab/cd/landed-late")
    assert later.get_record(patient_id=patient, record_id=kept.record_id).resource()
    assert later.verify(deep=True).ok


def test_old_blob_of_a_young_intent_is_kept(
    session_factory: sessionmaker[Session], blob_store: BlobStore, keyring: StaticKeyring
) -> None:
    """A blob whose intent is within the grace period belongs to a write in flight,
    whatever the blob's own age (the two clocks need not agree)."""
    later = datetime.now(UTC) + LATER
    with transaction(session_factory) as session:
        session.execute(insert(PendingBlobRow), [{"blob_key": "ab/in-flight", "created_at": later}])
    blob_store.put("ab/in-flight", b"x")
    report = _service(session_factory, blob_store, keyring, at=later).sweep(
        older_than_seconds=GRACE
    )
    assert (report.pending_reclaimed, report.unreferenced_removed) == (0, 0)
    assert blob_store.exists("ab/in-flight")


def test_sweep_keeps_every_blob_a_version_references(
    session_factory: sessionmaker[Session],
    blob_store: BlobStore,
    keyring: StaticKeyring,
    make_observation: Obs,
) -> None:
    now = datetime.now(UTC)
    service = _service(session_factory, blob_store, keyring, at=now)
    patient = service.create_patient()
    first = service.put_record(patient_id=patient, resource=make_observation(1))
    resource = service.get_record(patient_id=patient, record_id=first.record_id).resource()
    service.update_record(patient_id=patient, record_id=first.record_id, resource=resource)
    gone = service.put_record(patient_id=patient, resource=make_observation(2))
    service.delete_record(patient_id=patient, record_id=gone.record_id)
    before = sorted(blob_store.list_keys())
    assert len(before) == 2  # both versions of the first record; the deleted one's went

    report = _service(session_factory, blob_store, keyring, at=now + LATER).sweep(
        older_than_seconds=0
    )
    assert report.unreferenced_removed == 0
    assert sorted(blob_store.list_keys()) == before
    for version in (1, 2):
        service.get_record(patient_id=patient, record_id=first.record_id, version=version)
