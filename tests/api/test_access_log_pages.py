"""The patient's access log comes a page at a time, with a sequence cursor."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.support import OBAMA_ENROLL, OBAMA_PROBE, bearer, enroll, patient_session
from vault.audit.log import AuditEvent


def test_the_access_log_comes_in_pages_with_a_cursor(client: TestClient) -> None:
    handle = enroll(client, OBAMA_ENROLL)
    patient = bearer(patient_session(client, handle, OBAMA_PROBE))
    audit = client.app.state.services.audit  # type: ignore[attr-defined]
    for n in range(7):
        audit.append(AuditEvent(handle, "0xprovider", "read", "allowed", record_id=f"r{n}"))
        audit.append(AuditEvent("pat_someone_else", "0xprovider", "read", "allowed"))

    whole = client.get("/patient/access-log", headers=patient)
    assert whole.status_code == 200, whole.json()
    assert whole.json()["next_after"] is None  # the default page holds all of it
    everything = [item["entry"] for item in whole.json()["entries"]]
    assert {e["record_id"] for e in everything} >= {f"r{n}" for n in range(7)}
    assert all(e["seq"] in {x.seq for x in audit.entries(patient_id=handle)} for e in everything)

    walked: list[dict[str, object]] = []
    after: int | None = 0
    pages = 0
    while after is not None:
        page = client.get(
            "/patient/access-log", params={"after": after, "limit": 3}, headers=patient
        ).json()
        assert len(page["entries"]) <= 3
        walked.extend(item["entry"] for item in page["entries"])
        after = page["next_after"]
        pages += 1
    assert walked == everything
    assert pages == -(-len(everything) // 3)  # no empty trailing page

    for bad in ({"limit": 0}, {"limit": 1001}, {"after": -1}):
        refused = client.get("/patient/access-log", params=bad, headers=patient)
        assert refused.status_code == 422, (bad, refused.json())
