"""Importing FHIR transaction Bundles: the sample patient, references, all or nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from vault.errors import InvalidInput, InvalidRecord, PayloadTooLarge
from vault.records.service import RecordService
from vault.records.types import RecordLimits

SHARED_DEV = Path("/work/shared/fhir/dev")
REQUIRED = {
    "Patient",
    "Condition",
    "Observation",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
}


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k == "reference" and isinstance(v, str)]
        return found + [r for v in value.values() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


def test_sample_bundle_imports_whole(
    service: RecordService, patient: str, sample_bundle: bytes
) -> None:
    entries = json.loads(sample_bundle)["entry"]
    result = service.import_bundle(patient_id=patient, bundle=sample_bundle)
    assert result.count == len(entries) == 117
    assert set(result.by_category) >= REQUIRED
    listed = service.list_records(patient_id=patient)
    assert len(listed) == 117
    conditions = service.list_records(patient_id=patient, category="Condition")
    assert len(conditions) == result.by_category["Condition"]
    # references between entries now name the vault's records, and resolve
    own_ids = {f"{r.resource_type}/{r.record_id}" for r in listed}
    condition = service.get_record(patient_id=patient, record_id=conditions[0].record_id).resource()
    subject = condition["subject"]["reference"]
    assert subject in own_ids and subject.startswith("Patient/")
    for record in listed[:40]:
        resource = service.get_record(patient_id=patient, record_id=record.record_id).resource()
        assert not any(ref.startswith("urn:uuid:") for ref in _references(resource))
    assert set(result.id_map.values()) == {r.record_id for r in listed}


def test_one_bad_entry_refuses_the_whole_bundle(
    service: RecordService, patient: str, sample_bundle: bytes
) -> None:
    bundle = json.loads(sample_bundle)
    bundle["entry"][5]["resource"]["bogusField"] = 1
    bundle["entry"][9]["resource"].pop("resourceType")
    with pytest.raises(InvalidRecord) as caught:
        service.import_bundle(patient_id=patient, bundle=bundle)
    fields = [e["field"] for e in caught.value.details["errors"]]
    assert "entry.5.resource.bogusField" in fields
    assert "entry.9.resource.resourceType" in fields
    assert service.list_records(patient_id=patient) == []
    assert service.verify().ok  # and nothing left in the blob store


def test_bundle_limits_and_shapes(service: RecordService, patient: str) -> None:
    small = RecordService(
        session_factory=service._sessions,
        blobs=service._blobs,
        keyring=service._keyring,
        limits=RecordLimits(bundle_max_entries=2, bundle_max_bytes=10_000),
    )
    entry = {
        "resource": {"resourceType": "Patient"},
        "request": {"method": "POST", "url": "Patient"},
    }
    with pytest.raises(PayloadTooLarge):
        small.import_bundle(
            patient_id=patient,
            bundle={"resourceType": "Bundle", "type": "transaction", "entry": [entry] * 3},
        )
    with pytest.raises(PayloadTooLarge):
        small.import_bundle(patient_id=patient, bundle=b" " * 10_001)
    with pytest.raises(InvalidInput):
        service.import_bundle(
            patient_id=patient, bundle={"resourceType": "Bundle", "type": "searchset"}
        )
    with pytest.raises(InvalidRecord):
        service.import_bundle(patient_id=patient, bundle={"resourceType": "Patient"})
    delete = {
        "request": {"method": "DELETE", "url": "Patient/1"},
        "resource": {"resourceType": "Patient"},
    }
    with pytest.raises(InvalidRecord):
        service.import_bundle(
            patient_id=patient,
            bundle={"resourceType": "Bundle", "type": "transaction", "entry": [delete]},
        )
    empty = service.import_bundle(
        patient_id=patient, bundle={"resourceType": "Bundle", "type": "batch"}
    )
    assert empty.count == 0


def test_imported_records_version_like_any_other(
    service: RecordService, patient: str, sample_bundle: bytes
) -> None:
    service.import_bundle(patient_id=patient, bundle=sample_bundle)
    (allergy,) = service.list_records(patient_id=patient, category="AllergyIntolerance")[:1]
    resource = service.get_record(patient_id=patient, record_id=allergy.record_id).resource()
    resource["criticality"] = "high"
    updated = service.update_record(
        patient_id=patient, record_id=allergy.record_id, resource=resource
    )
    assert updated.version == 2


@pytest.mark.skipif(not SHARED_DEV.is_dir(), reason="/work/shared/fhir/dev not present")
@pytest.mark.slow
def test_largest_dev_bundle_imports_quickly(service: RecordService, patient: str) -> None:
    largest = max(SHARED_DEV.glob("*.json"), key=lambda p: len(json.loads(p.read_bytes())["entry"]))
    started = time.perf_counter()
    result = service.import_bundle(patient_id=patient, bundle=largest.read_bytes())
    elapsed = time.perf_counter() - started
    assert result.count > 1000
    assert elapsed < 30, f"{result.count} resources took {elapsed:.1f}s"
