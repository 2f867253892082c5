"""The database locked by another writer: clear 503s with a code, nothing half-written.

On each backend: SQLite held by another connection's exclusive transaction, PostgreSQL's
tables held in EXCLUSIVE mode (what a stuck writer or a long migration holds: reads go on,
writes wait).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from tests.api.support import OBAMA_ENROLL, OBAMA_PROBE, bearer, enroll, patient_session
from vault.audit import log as audit_log
from vault.config import Settings
from vault.store import database

OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"text": "Heart rate"},
    "valueQuantity": {"value": 64, "unit": "beats/minute"},
}


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorter lock waits than production (SQLite's busy timeout, PostgreSQL's lock_timeout),
    so a locked database answers within a second."""
    monkeypatch.setattr(database, "LOCK_TIMEOUT_MS", 200)
    monkeypatch.setattr(audit_log, "APPEND_DEADLINE_SECONDS", 1.0)


@contextmanager
def exclusive_lock(database_url: str) -> Iterator[None]:
    """Another connection holds the write lock (as a stuck writer or a backup would)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        other = sqlite3.connect(str(url.database), isolation_level=None, timeout=5)
        try:
            other.execute("BEGIN EXCLUSIVE")
            yield
            other.execute("ROLLBACK")
        finally:
            other.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            tables = conn.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            ).all()
            quoted = ", ".join(conn.dialect.identifier_preparer.quote(t) for t in tables)
            conn.execute(text(f"LOCK TABLE {quoted} IN EXCLUSIVE MODE"))
            yield
    finally:
        engine.dispose()


def test_locked_database_gives_503_and_no_partial_write(
    client: TestClient,
    api_settings: Settings,
    new_provider: Callable[..., tuple[LocalAccount, str]],
) -> None:
    handle = enroll(client, OBAMA_ENROLL)
    patient = bearer(patient_session(client, handle, OBAMA_PROBE))
    first = client.post("/patient/records", json=OBSERVATION, headers=patient)
    assert first.status_code == 201, first.json()
    _, token = new_provider()
    provider = bearer(token)
    request = client.post(
        "/provider/requests",
        json={
            "patient": handle,
            "scope": "Observation",
            "purpose": "TREAT",
            "duration_seconds": 600,
        },
        headers=provider,
    )
    assert request.status_code == 201
    before = client.get("/patient/records", headers=patient).json()
    read_url = f"/provider/patients/{handle}/records/{first.json()['record_id']}?purpose=TREAT"

    with exclusive_lock(api_settings.resolved_database_url):
        replies = {
            "upload": client.post("/patient/records", json=OBSERVATION, headers=patient),
            "request": client.post(
                "/provider/requests",
                json={
                    "patient": handle,
                    "scope": "Observation",
                    "purpose": "TREAT",
                    "duration_seconds": 600,
                },
                headers=provider,
            ),
            "provider_read": client.get(read_url, headers=provider),
        }
        for name, reply in replies.items():
            assert reply.status_code == 503, (name, reply.status_code, reply.text)
            body = reply.json()
            assert body["code"] == "database_unavailable", (name, body)

    # Nothing half-written: the same records as before, and the vault works again at once.
    assert client.get("/patient/records", headers=patient).json() == before
    mine = client.get("/provider/requests", headers=provider).json()
    assert len(mine) == 1
    again = client.post("/patient/records", json=OBSERVATION, headers=patient)
    assert again.status_code == 201, again.json()
    assert client.get(read_url, headers=provider).status_code == 403  # no consent: denied, not 503
