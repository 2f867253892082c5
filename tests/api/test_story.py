"""The whole story through the API, on a real chain, real faces, real crypto, real SQLite."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from tests.api.support import (
    BIDEN_ENROLL,
    BIDEN_PROBE,
    OBAMA_ENROLL,
    OBAMA_PROBE,
    SAMPLE,
    admin_headers,
    bearer,
    enroll,
    patient_session,
    photos_field,
)
from vault.demo.proofs import ProofInvalid, verify_history
from vault.services import Services

OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
    "valueQuantity": {"value": 72, "unit": "beats/minute"},
}
CONDITION = {
    "resourceType": "Condition",
    "code": {"text": "Hypertension"},
    "subject": {"display": "the patient"},
}


def test_patient_provider_story(
    client: TestClient, new_provider: Callable[..., tuple[LocalAccount, str]]
) -> None:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    handle = enroll(client, OBAMA_ENROLL)
    patient = bearer(patient_session(client, handle, OBAMA_PROBE))

    obs = client.post("/patient/records", json=OBSERVATION, headers=patient)
    assert obs.status_code == 201, obs.json()
    obs_id = obs.json()["record_id"]
    cond = client.post("/patient/records", json=CONDITION, headers=patient)
    assert cond.status_code == 201, cond.json()
    cond_id = cond.json()["record_id"]
    doc = client.post(
        "/patient/records/documents",
        files={
            "file": (
                "summary.pdf",
                (SAMPLE / "fhir" / "discharge-summary.pdf").read_bytes(),
                "application/pdf",
            )
        },
        data={"title": "Discharge summary"},
        headers=patient,
    )
    assert doc.status_code == 201, doc.json()

    provider_key, provider_token = new_provider()
    provider = bearer(provider_token)
    read_url = f"/provider/patients/{handle}/records/{obs_id}?purpose=TREAT"
    assert client.get(read_url, headers=provider).status_code == 403

    request = client.post(
        "/provider/requests",
        json={
            "patient": handle,
            "scope": "Observation",
            "purpose": "TREAT",
            "duration_seconds": 3600,
        },
        headers=provider,
    )
    assert request.status_code == 201, request.json()
    request_id = request.json()["request_id"]
    pending = client.get("/patient/requests?pending_only=true", headers=patient).json()
    assert [r["request_id"] for r in pending] == [request_id]

    # A wrong face cannot approve.
    wrong = client.post(
        f"/patient/requests/{request_id}/approve",
        files=photos_field((BIDEN_PROBE,), "photo"),
        headers=patient,
    )
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "verification_failed"

    approved = client.post(
        f"/patient/requests/{request_id}/approve",
        files=photos_field((OBAMA_PROBE,), "photo"),
        headers=patient,
    )
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "granted"
    assert approved.json()["tx_hash"].startswith("0x")

    read = client.get(read_url, headers=provider)
    assert read.status_code == 200, read.json()
    assert read.json()["resource"]["valueQuantity"]["value"] == 72
    # Out of scope, and another purpose: refused.
    assert (
        client.get(
            f"/provider/patients/{handle}/records/{cond_id}?purpose=TREAT", headers=provider
        ).status_code
        == 403
    )
    assert client.get(read_url.replace("TREAT", "HRESCH"), headers=provider).status_code == 403
    listing = client.get(f"/provider/patients/{handle}/records?purpose=TREAT", headers=provider)
    assert listing.status_code == 200
    assert {r["category"] for r in listing.json()} == {"Observation"}

    consents = client.get("/patient/consents", headers=patient).json()
    assert [(c["provider"], c["scope"], c["purpose"]) for c in consents] == [
        (provider_key.address, "Observation", "TREAT")
    ]

    revoked = client.post(
        "/patient/consents/revoke",
        files=photos_field((OBAMA_PROBE,), "photo"),
        data={"provider": provider_key.address, "scope": "Observation", "purpose": "TREAT"},
        headers=patient,
    )
    assert revoked.status_code == 200, revoked.json()
    # Enforced from the first read after the receipt.
    denied = client.get(read_url, headers=provider)
    assert denied.status_code == 403
    assert denied.json()["code"] == "access_denied"
    assert client.get("/patient/consents", headers=patient).json() == []

    anchored = client.post("/admin/audit/anchor", headers=admin_headers())
    assert anchored.status_code == 200 and anchored.json()["anchored"] is True

    history = client.get("/patient/access-log", headers=patient)
    assert history.status_code == 200
    body = history.json()
    outcomes = [(i["entry"]["action"], i["entry"]["outcome"]) for i in body["entries"]]
    assert ("read", "allowed") in outcomes and ("read", "denied") in outcomes
    assert ("grant", "allowed") in outcomes and ("revoke", "allowed") in outcomes
    kinds = [e["kind"] for e in body["chain_events"]]
    assert (
        kinds[:1] == ["patient_registered"]
        and "consent_granted" in kinds
        and "consent_revoked" in kinds
    )
    # Every proof verifies against the root the contract stores, recomputed client-side;
    # an entry altered after the fact does not.
    verified = verify_history(body, patient_handle=handle, registry=services.registry)
    assert [v.seq for v in verified] == [i["entry"]["seq"] for i in body["entries"]]
    tampered = copy.deepcopy(body)
    denied_entry = next(i for i in tampered["entries"] if i["entry"]["outcome"] == "denied")
    denied_entry["entry"]["outcome"] = "allowed"
    with pytest.raises(ProofInvalid):
        verify_history(tampered, patient_handle=handle, registry=services.registry)


def test_patients_cannot_reach_each_other(
    client: TestClient, new_provider: Callable[..., tuple[LocalAccount, str]]
) -> None:
    alice = enroll(client, OBAMA_ENROLL)
    bob = enroll(client, BIDEN_ENROLL)
    alice_h = bearer(patient_session(client, alice, OBAMA_PROBE))
    bob_h = bearer(patient_session(client, bob, BIDEN_PROBE))
    record = client.post("/patient/records", json=OBSERVATION, headers=alice_h).json()["record_id"]
    assert client.get(f"/patient/records/{record}", headers=bob_h).status_code == 404
    assert (
        client.put(f"/patient/records/{record}", json=OBSERVATION, headers=bob_h).status_code == 404
    )
    assert client.delete(f"/patient/records/{record}", headers=bob_h).status_code == 404
    assert client.get(f"/patient/records/{record}/history", headers=bob_h).status_code == 404
    # Bob's face does not open Alice's handle.
    reply = client.post(f"/patients/{alice}/sessions", files=photos_field((BIDEN_PROBE,), "photo"))
    assert reply.status_code == 401
    # A provider token is not a patient token, and vice versa.
    _, provider_token = new_provider()
    assert client.get("/patient/records", headers=bearer(provider_token)).status_code == 401
    assert client.get("/provider/requests", headers=alice_h).status_code == 401
    # Another patient's request cannot be approved.
    request_id = client.post(
        "/provider/requests",
        json={"patient": alice, "scope": "all", "purpose": "TREAT", "duration_seconds": 600},
        headers=bearer(provider_token),
    ).json()["request_id"]
    reply = client.post(
        f"/patient/requests/{request_id}/approve",
        files=photos_field((BIDEN_PROBE,), "photo"),
        headers=bob_h,
    )
    assert reply.status_code == 404
