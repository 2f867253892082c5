"""Tampering is caught on read and by the whole-store scan; the sweeper cleans up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from vault.errors import DecryptionFailed, TamperDetected
from vault.records.service import RecordService
from vault.store.blobs import LocalBlobStore
from vault.store.database import transaction
from vault.store.models import utcnow
from vault.store.record_models import PendingBlobRow, RecordVersionRow

Obs = Callable[..., dict[str, Any]]


def _blob_key(service: RecordService, record_id: str, version: int = 1) -> str:
    with transaction(service._sessions) as session:
        row = session.get(RecordVersionRow, (record_id, version))
        assert row is not None and row.blob_key is not None
        return row.blob_key


def test_flipped_byte_is_tamper_on_read_and_in_verify(
    service: RecordService, patient: str, blobs: LocalBlobStore, make_observation: Obs
) -> None:
    good = service.put_record(patient_id=patient, resource=make_observation(1))
    bad = service.put_record(patient_id=patient, resource=make_observation(2))
    key = _blob_key(service, bad.record_id)
    data = bytearray(blobs.get(key))
    data[30] ^= 0x01
    blobs.put(key, data)
    with pytest.raises(TamperDetected):
        service.get_record(patient_id=patient, record_id=bad.record_id)
    report = service.verify()
    assert [(p.kind, p.record_id) for p in report.problems] == [("hash_mismatch", bad.record_id)]
    assert report.versions_checked == 2
    assert service.get_record(patient_id=patient, record_id=good.record_id)


def test_missing_and_unreferenced_blobs_are_reported(
    service: RecordService, patient: str, blobs: LocalBlobStore, make_observation: Obs
) -> None:
    info = service.put_record(patient_id=patient, resource=make_observation())
    blobs.delete(_blob_key(service, info.record_id))
    blobs.put("zz/zz/planted", b"who put this here")
    with pytest.raises(TamperDetected):
        service.get_record(patient_id=patient, record_id=info.record_id)
    kinds = sorted(p.kind for p in service.verify().problems)
    assert kinds == ["missing_blob", "unreferenced_blob"]


def test_swapped_ciphertexts_with_hashes_fail_to_decrypt(
    service: RecordService, patient: str, make_observation: Obs
) -> None:
    """An attacker with database write access swaps two records' blobs and hashes: the
    SHA-256 check passes, but associated data stops the ciphertext opening elsewhere."""
    first = service.put_record(patient_id=patient, resource=make_observation(1))
    second = service.put_record(patient_id=patient, resource=make_observation(2))
    with transaction(service._sessions) as session:
        a = session.get(RecordVersionRow, (first.record_id, 1))
        b = session.get(RecordVersionRow, (second.record_id, 1))
        assert a is not None and b is not None
        moved = (b.blob_key, b.sha256)
        b.blob_key, b.sha256 = None, "0" * 64
        session.flush()
        a.blob_key, a.sha256 = moved
    with pytest.raises(DecryptionFailed):
        service.get_record(patient_id=patient, record_id=first.record_id)
    shallow = service.verify()  # hashes match: only the abandoned blob shows
    assert [p.kind for p in shallow.problems] == ["unreferenced_blob"]
    deep = service.verify(deep=True)
    assert sorted((p.kind, p.record_id or "") for p in deep.problems) == [
        ("undecryptable", first.record_id),
        ("unreferenced_blob", ""),
    ]


def test_sweeper_removes_orphans_of_dead_writers_only(
    service: RecordService, patient: str, blobs: LocalBlobStore, make_observation: Obs
) -> None:
    info = service.put_record(patient_id=patient, resource=make_observation())
    old, fresh = utcnow() - timedelta(hours=2), utcnow()
    blobs.put("aa/aa/dead-writer", b"ciphertext of a write that never committed")
    blobs.put("aa/aa/live-writer", b"ciphertext being written right now")
    with transaction(service._sessions) as session:
        session.execute(
            insert(PendingBlobRow),
            [
                {"blob_key": "aa/aa/dead-writer", "created_at": old},
                {"blob_key": "aa/aa/live-writer", "created_at": fresh},
                {"blob_key": "aa/aa/never-written", "created_at": old},
            ],
        )
    report = service.sweep(older_than_seconds=3600)
    assert report.pending_reclaimed == 2
    assert not blobs.exists("aa/aa/dead-writer") and blobs.exists("aa/aa/live-writer")
    assert service.get_record(patient_id=patient, record_id=info.record_id)
    assert service.verify().ok  # the live writer's blob is pending, not unreferenced


def test_write_older_than_grace_is_refused(
    service: RecordService, patient: str, make_observation: Obs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the sweeper reclaimed a slow write's intent, that write must not commit."""
    import vault.records.writes as writes

    real_put_all = writes._put_all

    def slow_put_all(blob_store: Any, versions: Any) -> None:
        real_put_all(blob_store, versions)
        with transaction(service._sessions) as session:
            session.execute(update(PendingBlobRow).values(created_at=utcnow() - timedelta(days=1)))
        service.sweep(older_than_seconds=60)

    monkeypatch.setattr(writes, "_put_all", slow_put_all)
    from vault.errors import Conflict

    with pytest.raises(Conflict):
        service.put_record(patient_id=patient, resource=make_observation())
    assert service.list_records(patient_id=patient) == []
    assert service.verify().ok


def test_deleted_ciphertext_leaves_the_blob_store(
    service: RecordService, patient: str, blobs: LocalBlobStore, make_observation: Obs
) -> None:
    info = service.put_record(patient_id=patient, resource=make_observation())
    key = _blob_key(service, info.record_id)
    service.delete_record(patient_id=patient, record_id=info.record_id)
    assert not blobs.exists(key)
    assert list(blobs.list_keys()) == []
