"""The records migration on every backend: tables, constraints, branch wiring."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, insert, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from vault.store.database import transaction
from vault.store.migrate import upgrade
from vault.store.models import utcnow
from vault.store.record_models import PatientRow, RecordRow, RecordVersionRow


def test_migration_creates_record_tables(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert {"patients", "records", "record_versions", "pending_blobs"} <= tables
    upgrade(engine)  # idempotent at heads


def test_versions_are_never_overwritten(session_factory: sessionmaker[Session]) -> None:
    now = utcnow()
    with transaction(session_factory) as session:
        session.add(PatientRow(id="p", wrapped_key=b"k", master_key_version=1, created_at=now))
        session.flush()
        session.add(
            RecordRow(
                id="r",
                patient_id="p",
                resource_type="Observation",
                category="Observation",
                current_version=1,
                created_at=now,
                updated_at=now,
            )
        )
    row = {
        "record_id": "r",
        "version": 1,
        "content_type": "x",
        "size": 1,
        "blob_key": "a",
        "sha256": "0" * 64,
        "wrapped_data_key": b"w",
        "created_at": now,
    }
    with transaction(session_factory) as session:
        session.execute(insert(RecordVersionRow), [row])
    with pytest.raises(IntegrityError), transaction(session_factory) as session:
        session.execute(insert(RecordVersionRow), [{**row, "blob_key": "b"}])


def test_records_need_a_patient(session_factory: sessionmaker[Session]) -> None:
    now = utcnow()
    with pytest.raises(IntegrityError), transaction(session_factory) as session:
        session.add(
            RecordRow(
                id="r",
                patient_id="nobody",
                resource_type="X",
                category="X",
                current_version=1,
                created_at=now,
                updated_at=now,
            )
        )
