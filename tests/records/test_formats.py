"""Record formats on a real database: format-2 versions (written by earlier versions of
the vault) stay readable beside format 1; the patient-key cache never outlives what the
database says."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session, sessionmaker

from vault.crypto.envelope import RecordContext, WrappedPatientKey, unwrap_patient_key
from vault.crypto.keyring import StaticKeyring
from vault.errors import RecordDeleted
from vault.records.service import RecordService
from vault.store.blobs import LocalBlobStore
from vault.store.database import transaction
from vault.store.record_models import PatientRow, RecordVersionRow

Obs = Callable[..., dict[str, Any]]


def _restore_as_format_2(
    service: RecordService,
    blobs: LocalBlobStore,
    keyring: StaticKeyring,
    patient_id: str,
    record_id: str,
) -> None:
    """Re-store version 1 of ``record_id`` exactly as earlier versions wrote format 2."""
    with transaction(service._sessions) as session:
        version = session.get(RecordVersionRow, (record_id, 1))
        assert version is not None and version.blob_key is not None
        patient = session.get(PatientRow, patient_id)
        assert patient is not None and patient.wrapped_key is not None
        assert patient.master_key_version is not None
        key = unwrap_patient_key(
            keyring.get(),
            patient.id,
            WrappedPatientKey(patient.master_key_version, patient.wrapped_key),
        )
        context = RecordContext(record_id, patient.id, 1, version.content_type)
        plaintext = key.decrypt(context, blobs.get(version.blob_key), version.wrapped_data_key)
        data_key, nonce = os.urandom(32), os.urandom(12)
        body = AESGCM(data_key).encrypt(bytes(12), plaintext, context.record_aad(2))
        blobs.put(version.blob_key, body)
        version.sha256 = hashlib.sha256(body).hexdigest()
        version.wrapped_data_key = (
            b"\x02" + nonce + AESGCM(key._key).encrypt(nonce, data_key, context.data_key_aad(2))
        )


def _wrapped_data_key(service: RecordService, record_id: str, version: int) -> bytes:
    with transaction(service._sessions) as session:
        row = session.get(RecordVersionRow, (record_id, version))
        assert row is not None and row.wrapped_data_key is not None
        return row.wrapped_data_key


def test_format_2_versions_stay_readable_and_updates_write_format_1(
    service: RecordService,
    patient: str,
    blobs: LocalBlobStore,
    keyring: StaticKeyring,
    make_observation: Obs,
) -> None:
    info = service.put_record(patient_id=patient, resource=make_observation(61))
    assert _wrapped_data_key(service, info.record_id, 1)[0] == 1
    _restore_as_format_2(service, blobs, keyring, patient, info.record_id)
    assert _wrapped_data_key(service, info.record_id, 1)[0] == 2
    stored = service.get_record(patient_id=patient, record_id=info.record_id)
    assert stored.resource()["valueQuantity"]["value"] == 61
    assert service.verify(deep=True).problems == []
    service.update_record(
        patient_id=patient, record_id=info.record_id, resource=make_observation(62)
    )
    assert _wrapped_data_key(service, info.record_id, 2)[0] == 1
    old = service.get_record(patient_id=patient, record_id=info.record_id, version=1)
    new = service.get_record(patient_id=patient, record_id=info.record_id)
    assert old.resource()["valueQuantity"]["value"] == 61
    assert new.resource()["valueQuantity"]["value"] == 62


def test_a_key_cached_by_one_process_dies_with_the_row(
    session_factory: sessionmaker[Session],
    blobs: LocalBlobStore,
    keyring: StaticKeyring,
    make_observation: Obs,
) -> None:
    """Two services on one database stand for two API processes, each with its own cache."""
    reader = RecordService(session_factory=session_factory, blobs=blobs, keyring=keyring)
    deleter = RecordService(session_factory=session_factory, blobs=blobs, keyring=keyring)
    patient = reader.create_patient()
    info = reader.put_record(patient_id=patient, resource=make_observation())
    assert reader.get_record(patient_id=patient, record_id=info.record_id)  # key now cached
    deleter.delete_patient(patient_id=patient)
    with pytest.raises(RecordDeleted):
        reader.get_record(patient_id=patient, record_id=info.record_id)
    with pytest.raises(RecordDeleted):
        reader.put_record(patient_id=patient, resource=make_observation())
