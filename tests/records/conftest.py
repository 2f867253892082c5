"""Record service fixtures: a real database of each backend (``session_factory``, from
``tests/backends.py``), a real blob directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from vault.crypto.keyring import StaticKeyring, new_keyring
from vault.records.service import RecordService
from vault.records.types import RecordLimits
from vault.store.blobs import LocalBlobStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_FHIR = PROJECT_ROOT / "sample_data" / "fhir"
SHARED_FHIR = Path("/work/shared/fhir")


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


@pytest.fixture
def keyring() -> StaticKeyring:
    return StaticKeyring(new_keyring())


@pytest.fixture
def limits() -> RecordLimits:
    return RecordLimits(record_max_bytes=200_000, document_max_bytes=100_000)


@pytest.fixture
def service(
    session_factory: sessionmaker[Session],
    blobs: LocalBlobStore,
    keyring: StaticKeyring,
    limits: RecordLimits,
) -> RecordService:
    return RecordService(
        session_factory=session_factory, blobs=blobs, keyring=keyring, limits=limits
    )


@pytest.fixture
def patient(service: RecordService) -> str:
    return service.create_patient()


@pytest.fixture(scope="session")
def sample_bundle() -> bytes:
    return (SAMPLE_FHIR / "synthea-patient-bundle.json").read_bytes()


@pytest.fixture(scope="session")
def sample_pdf() -> bytes:
    return (SAMPLE_FHIR / "discharge-summary.pdf").read_bytes()


@pytest.fixture
def make_observation() -> object:
    def make(value: float = 72.0) -> dict[str, object]:
        return {
            "resourceType": "Observation",
            "status": "final",
            "code": {
                "coding": [{"system": "http://loinc.org", "code": "8867-4"}],
                "text": "Heart rate",
            },
            "valueQuantity": {"value": value, "unit": "beats/minute"},
        }

    return make
