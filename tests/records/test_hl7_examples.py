"""Every official HL7 example that fhir.resources (R4B) accepts, the vault accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from vault.crypto.keyring import StaticKeyring
from vault.records.fhir import is_resource_type
from vault.records.service import RecordService
from vault.records.types import RecordLimits
from vault.store.blobs import LocalBlobStore

EXAMPLES = Path("/work/shared/fhir/hl7-examples")


def _library_accepts(resource: dict[str, object]) -> bool:
    from fhir.resources.R4B import get_fhir_model_class

    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not is_resource_type(resource_type):
        return False
    try:
        get_fhir_model_class(resource_type).model_validate(resource)
    except ValidationError:
        return False
    return True


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"{EXAMPLES} not present (shared data)")
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_vault_accepts_what_the_library_accepts(
    session_factory: sessionmaker[Session], blobs: LocalBlobStore, keyring: StaticKeyring
) -> None:
    service = RecordService(
        session_factory=session_factory, blobs=blobs, keyring=keyring, limits=RecordLimits()
    )
    patient = service.create_patient()
    accepted = refused_by_library = 0
    failures: list[str] = []
    for path in sorted(EXAMPLES.glob("*.json")):
        resource = json.loads(path.read_bytes())
        if not _library_accepts(resource):
            refused_by_library += 1
            continue
        try:
            info = service.put_record(patient_id=patient, resource=path.read_bytes())
            stored = service.get_record(patient_id=patient, record_id=info.record_id).resource()
            assert stored["resourceType"] == resource["resourceType"]
            accepted += 1
        except Exception as exc:
            failures.append(f"{path.name}: {exc}")
    assert not failures, failures[:10]
    assert accepted > 500, (accepted, refused_by_library)
