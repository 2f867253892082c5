"""Master key rotation re-wraps patient keys and never touches record ciphertext."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from vault.crypto.keyring import FileKeyring, retire_keyring_version, rotate_keyring_file
from vault.records.service import RecordService
from vault.store.blobs import LocalBlobStore

Obs = Callable[..., dict[str, Any]]


def test_rotate_rewrap_retire(
    tmp_path: Path,
    session_factory: sessionmaker[Session],
    blobs: LocalBlobStore,
    make_observation: Obs,
) -> None:
    path = tmp_path / "secrets" / "master.keyring"
    service = RecordService(session_factory=session_factory, blobs=blobs, keyring=FileKeyring(path))
    patients = [service.create_patient() for _ in range(3)]
    records = {p: service.put_record(patient_id=p, resource=make_observation()) for p in patients}
    before = {key: blobs.get(key) for key in blobs.list_keys()}

    rotate_keyring_file(path)  # as `vault keys rotate` does, possibly in another process
    assert service.patients_under_master_version(version=1) == 3
    assert service.rewrap_patient_keys(batch_size=2) == 3
    assert service.rewrap_patient_keys() == 0  # re-running is harmless
    assert service.patients_under_master_version(version=1) == 0

    retire_keyring_version(path, 1)
    after = {key: blobs.get(key) for key in blobs.list_keys()}
    assert after == before  # not one byte of record ciphertext changed
    for patient, info in records.items():
        assert service.get_record(patient_id=patient, record_id=info.record_id).version == 1
    new = service.create_patient()
    assert service.put_record(patient_id=new, resource=make_observation())
