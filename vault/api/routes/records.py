"""A patient's own records: create, list, read, update, delete, history, documents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Query, Response, UploadFile, status

from vault.api.deps import CurrentPatient, ServicesDep
from vault.api.schemas import (
    ERRORS,
    MAX_SQL_INT,
    BundleImported,
    DocumentStored,
    Record,
    RecordVersion,
    RecordWithContent,
)

router = APIRouter(prefix="/patient/records", tags=["patient records"], responses=ERRORS)

FHIR_EXAMPLE = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
    "valueQuantity": {"value": 72, "unit": "beats/minute"},
}
FhirBody = Annotated[
    dict[str, Any], Body(examples=[FHIR_EXAMPLE], description="A FHIR R4B resource.")
]


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=Record, summary="Store a FHIR resource"
)
def create_record(patient: CurrentPatient, services: ServicesDep, resource: FhirBody) -> Record:
    info = services.records.put_record(patient_id=patient.record_patient_id, resource=resource)
    return Record.of(info)


@router.post(
    "/bundles",
    status_code=status.HTTP_201_CREATED,
    response_model=BundleImported,
    summary="Import a FHIR transaction Bundle (all or nothing)",
)
def import_bundle(
    patient: CurrentPatient, services: ServicesDep, bundle: FhirBody
) -> BundleImported:
    result = services.records.import_bundle(patient_id=patient.record_patient_id, bundle=bundle)
    return BundleImported(
        count=result.count, by_category=result.by_category, record_ids=result.record_ids
    )


@router.post(
    "/documents",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentStored,
    summary="Store a document (PDF, image) as a Binary plus a DocumentReference",
)
def create_document(
    patient: CurrentPatient,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="PDF, PNG, JPEG or TIFF")],
    title: Annotated[str | None, Form(max_length=200)] = None,
) -> DocumentStored:
    content = file.file.read()
    stored = services.records.put_document(
        patient_id=patient.record_patient_id,
        content=content,
        content_type=file.content_type or "application/octet-stream",
        title=title,
    )
    return DocumentStored(
        document_reference=Record.of(stored.document_reference), binary=Record.of(stored.binary)
    )


@router.get("", response_model=list[Record], summary="List my records")
def list_records(
    patient: CurrentPatient,
    services: ServicesDep,
    category: Annotated[
        str | None, Query(max_length=64, description="A FHIR resource type")
    ] = None,
) -> list[Record]:
    infos = services.records.list_records(patient_id=patient.record_patient_id, category=category)
    return [Record.of(i) for i in infos]


@router.get("/{record_id}", response_model=RecordWithContent, summary="Read one of my records")
def read_record(
    patient: CurrentPatient,
    services: ServicesDep,
    record_id: str,
    version: Annotated[int | None, Query(ge=1, le=MAX_SQL_INT)] = None,
) -> Response | RecordWithContent:
    stored = services.records.get_record(
        patient_id=patient.record_patient_id, record_id=record_id, version=version
    )
    if stored.info.resource_type == "Binary":
        return Response(stored.content, media_type=stored.content_type)
    return RecordWithContent(record=Record.of(stored.info), resource=stored.resource())


@router.put("/{record_id}", response_model=Record, summary="Add a version to one of my records")
def update_record(
    patient: CurrentPatient,
    services: ServicesDep,
    record_id: str,
    resource: FhirBody,
    expected_version: Annotated[
        int | None, Query(ge=1, le=MAX_SQL_INT, description="Optimistic concurrency")
    ] = None,
) -> Record:
    info = services.records.update_record(
        patient_id=patient.record_patient_id,
        record_id=record_id,
        resource=resource,
        expected_version=expected_version,
    )
    return Record.of(info)


@router.get(
    "/{record_id}/history", response_model=list[RecordVersion], summary="Every version of a record"
)
def record_history(
    patient: CurrentPatient, services: ServicesDep, record_id: str
) -> list[RecordVersion]:
    versions = services.records.history(patient_id=patient.record_patient_id, record_id=record_id)
    return [RecordVersion.of(v) for v in versions]


@router.delete(
    "/{record_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete (crypto-shred) one of my records",
)
def delete_record(patient: CurrentPatient, services: ServicesDep, record_id: str) -> Response:
    services.records.delete_record(patient_id=patient.record_patient_id, record_id=record_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
