"""The record service on a real database (SQLite and PostgreSQL) and a real blob dir."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from vault.errors import (
    Conflict,
    InvalidInput,
    InvalidRecord,
    NotFound,
    PayloadTooLarge,
    RecordDeleted,
)
from vault.records.fhir import FHIR_CONTENT_TYPE
from vault.records.service import RecordService

Obs = Callable[..., dict[str, Any]]


def test_put_then_get_returns_the_resource_with_vault_id(
    service: RecordService, patient: str, make_observation: Obs
) -> None:
    info = service.put_record(patient_id=patient, resource=make_observation())
    assert info.category == "Observation" and info.version == 1
    stored = service.get_record(patient_id=patient, record_id=info.record_id)
    resource = stored.resource()
    assert resource["id"] == info.record_id
    assert resource["meta"]["versionId"] == "1"
    assert resource["valueQuantity"]["value"] == 72.0
    assert stored.content_type == FHIR_CONTENT_TYPE


def test_accepts_json_bytes_and_text(
    service: RecordService, patient: str, make_observation: Obs
) -> None:
    as_bytes = service.put_record(
        patient_id=patient, resource=json.dumps(make_observation()).encode()
    )
    as_text = service.put_record(patient_id=patient, resource=json.dumps(make_observation()))
    assert {as_bytes.category, as_text.category} == {"Observation"}


def test_invalid_resource_names_failing_fields(service: RecordService, patient: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        service.put_record(
            patient_id=patient,
            resource={
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": 5},
                "x": 1,
            },
        )
    fields = {error["field"] for error in caught.value.details["errors"]}
    assert fields == {"code.text", "x"}
    assert caught.value.code == "invalid_record"


@pytest.mark.parametrize(
    "resource",
    [b"not json", b"[1, 2]", b'{"resourceType": "NoSuchType"}', b'{"status": "final"}'],
)
def test_refuses_garbage(service: RecordService, patient: str, resource: bytes) -> None:
    with pytest.raises(InvalidRecord):
        service.put_record(patient_id=patient, resource=resource)


def test_size_limit_is_a_clear_error(
    service: RecordService, patient: str, make_observation: Obs
) -> None:
    big = make_observation()
    big["note"] = [{"text": "x" * (service.limits.record_max_bytes + 1)}]
    with pytest.raises(PayloadTooLarge) as caught:
        service.put_record(patient_id=patient, resource=big)
    assert caught.value.details["limit"] == service.limits.record_max_bytes
    with pytest.raises(PayloadTooLarge):
        service.put_record(patient_id=patient, resource=json.dumps(big).encode())


def test_update_adds_versions_and_keeps_history(
    service: RecordService, patient: str, make_observation: Obs
) -> None:
    info = service.put_record(patient_id=patient, resource=make_observation(70))
    for value in (71, 72):
        info = service.update_record(
            patient_id=patient, record_id=info.record_id, resource=make_observation(value)
        )
    assert info.version == 3
    history = service.history(patient_id=patient, record_id=info.record_id)
    assert [v.version for v in history] == [1, 2, 3]
    assert len({v.sha256 for v in history}) == 3
    values = [
        service.get_record(patient_id=patient, record_id=info.record_id, version=n).resource()[
            "valueQuantity"
        ]["value"]
        for n in (1, 2, 3)
    ]
    assert values == [70, 71, 72]
    current = service.get_record(patient_id=patient, record_id=info.record_id)
    assert current.version == 3 and current.resource()["meta"]["versionId"] == "3"


def test_stale_update_conflicts(
    service: RecordService, patient: str, make_observation: Obs
) -> None:
    info = service.put_record(patient_id=patient, resource=make_observation())
    service.update_record(
        patient_id=patient, record_id=info.record_id, resource=make_observation(1)
    )
    with pytest.raises(Conflict):
        service.update_record(
            patient_id=patient,
            record_id=info.record_id,
            resource=make_observation(2),
            expected_version=1,
        )
    assert len(service.history(patient_id=patient, record_id=info.record_id)) == 2


def test_update_cannot_change_resource_type(
    service: RecordService, patient: str, make_observation: Obs
) -> None:
    info = service.put_record(patient_id=patient, resource=make_observation())
    with pytest.raises(InvalidInput):
        service.update_record(
            patient_id=patient,
            record_id=info.record_id,
            resource={"resourceType": "Patient", "name": [{"family": "X"}]},
        )


def test_other_patients_records_are_not_found(
    service: RecordService, patient: str, make_observation: Obs
) -> None:
    other = service.create_patient()
    info = service.put_record(patient_id=patient, resource=make_observation())
    with pytest.raises(NotFound):
        service.get_record(patient_id=other, record_id=info.record_id)
    with pytest.raises(NotFound):
        service.update_record(
            patient_id=other, record_id=info.record_id, resource=make_observation()
        )
    with pytest.raises(NotFound):
        service.delete_record(patient_id=other, record_id=info.record_id)
    assert service.list_records(patient_id=other) == []


def test_list_by_category(service: RecordService, patient: str, make_observation: Obs) -> None:
    service.put_record(patient_id=patient, resource=make_observation())
    service.put_record(patient_id=patient, resource={"resourceType": "Patient", "gender": "male"})
    assert {r.category for r in service.list_records(patient_id=patient)} == {
        "Observation",
        "Patient",
    }
    only = service.list_records(patient_id=patient, category="Observation")
    assert [r.resource_type for r in only] == ["Observation"]


def test_patient_ids(service: RecordService) -> None:
    assert service.create_patient(patient_id="p-123") == "p-123"
    with pytest.raises(Conflict):
        service.create_patient(patient_id="p-123")
    for bad in ("../etc", "a" * 65, "x y", "-lead"):
        with pytest.raises(InvalidInput):
            service.create_patient(patient_id=bad)
    with pytest.raises(NotFound):
        service.put_record(patient_id="nobody", resource={"resourceType": "Patient"})


def test_delete_record_shreds_all_versions_keeps_tombstone(
    service: RecordService, patient: str, make_observation: Obs
) -> None:
    info = service.put_record(patient_id=patient, resource=make_observation())
    service.update_record(
        patient_id=patient, record_id=info.record_id, resource=make_observation(9)
    )
    keep = service.put_record(patient_id=patient, resource=make_observation(1))
    service.delete_record(patient_id=patient, record_id=info.record_id)
    service.delete_record(patient_id=patient, record_id=info.record_id)  # idempotent
    for version in (None, 1, 2):
        with pytest.raises(RecordDeleted):
            service.get_record(patient_id=patient, record_id=info.record_id, version=version)
    history = service.history(patient_id=patient, record_id=info.record_id)
    assert [v.shredded for v in history] == [True, True]
    assert all(len(v.sha256) == 64 for v in history)
    assert service.get_info(patient_id=patient, record_id=info.record_id).deleted
    assert [r.record_id for r in service.list_records(patient_id=patient)] == [keep.record_id]
    assert len(service.list_records(patient_id=patient, include_deleted=True)) == 2
    with pytest.raises(RecordDeleted):
        service.update_record(
            patient_id=patient, record_id=info.record_id, resource=make_observation()
        )
    assert service.get_record(patient_id=patient, record_id=keep.record_id).version == 1


def test_delete_patient_shreds_everything(
    service: RecordService, patient: str, make_observation: Obs, sample_pdf: bytes
) -> None:
    info = service.put_record(patient_id=patient, resource=make_observation())
    doc = service.put_document(
        patient_id=patient, content=sample_pdf, content_type="application/pdf"
    )
    other = service.create_patient()
    kept = service.put_record(patient_id=other, resource=make_observation())
    service.delete_patient(patient_id=patient)
    for record_id in (info.record_id, doc.binary.record_id, doc.document_reference.record_id):
        with pytest.raises(RecordDeleted):
            service.get_record(patient_id=patient, record_id=record_id)
    with pytest.raises(RecordDeleted):
        service.put_record(patient_id=patient, resource=make_observation())
    assert not service.patient_exists(patient_id=patient)
    assert service.list_records(patient_id=patient) == []
    assert len(service.list_records(patient_id=patient, include_deleted=True)) == 3
    assert service.get_record(patient_id=other, record_id=kept.record_id).version == 1
    assert service.verify(deep=True).ok


def test_document_is_binary_plus_reference(
    service: RecordService, patient: str, sample_pdf: bytes
) -> None:
    doc = service.put_document(
        patient_id=patient,
        content=sample_pdf,
        content_type="application/pdf",
        title="Discharge summary",
        document_reference={"type": {"text": "Discharge summary"}},
    )
    assert doc.binary.category == "DocumentReference"
    assert doc.binary.resource_type == "Binary"
    assert doc.binary.security_context_id == doc.document_reference.record_id
    binary = service.get_record(patient_id=patient, record_id=doc.binary.record_id)
    assert binary.content == sample_pdf and binary.content_type == "application/pdf"
    reference = service.get_record(
        patient_id=patient, record_id=doc.document_reference.record_id
    ).resource()
    attachment = reference["content"][0]["attachment"]
    assert attachment["url"] == f"Binary/{doc.binary.record_id}"
    assert attachment["size"] == len(sample_pdf)
    assert reference["type"]["text"] == "Discharge summary"
    assert {
        r.resource_type
        for r in service.list_records(patient_id=patient, category="DocumentReference")
    } == {
        "Binary",
        "DocumentReference",
    }
    service.delete_record(patient_id=patient, record_id=doc.document_reference.record_id)
    with pytest.raises(RecordDeleted):
        service.get_record(patient_id=patient, record_id=doc.binary.record_id)


def test_documents_are_checked(service: RecordService, patient: str, sample_pdf: bytes) -> None:
    with pytest.raises(InvalidInput):
        service.put_document(
            patient_id=patient, content=b"MZ\x90\x00", content_type="application/pdf"
        )
    with pytest.raises(InvalidInput):
        service.put_document(patient_id=patient, content=sample_pdf, content_type="text/html")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    assert service.put_document(patient_id=patient, content=png, content_type="image/png")
    with pytest.raises(PayloadTooLarge):
        service.put_document(
            patient_id=patient,
            content=b"%PDF-" + b"0" * service.limits.document_max_bytes,
            content_type="application/pdf",
        )
