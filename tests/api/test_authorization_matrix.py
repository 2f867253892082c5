"""Every route, every caller: the API's authorization matrix, on the real chain and faces.

``ROUTES`` names who may call each operation the app serves. The tests check that:

1. the matrix names every route the app serves, so a new route without a row fails here;
2. every authenticated route refuses a missing token, a garbage token and the
   credentials of every other kind of caller (patient, provider, operator) with 401;
3. across subjects: a second patient reaches none of the first one's records, requests,
   consents or access log, even with a valid face of their own, and a second provider
   without consent reads, lists and opens nothing of a patient another provider may read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from tests.api.support import (
    BIDEN_ENROLL,
    BIDEN_PROBE,
    OBAMA_ENROLL,
    OBAMA_PROBE,
    admin_headers,
    bearer,
    enroll,
    patient_session,
    photos_field,
)


class Caller(Enum):
    ANYONE = "anyone"  # no token: health, enrollment, sign-in (face or SIWE are the proof)
    PATIENT = "patient"
    PROVIDER = "provider"
    OPERATOR = "operator"


ROUTES: dict[tuple[str, str], Caller] = {
    ("GET", "/healthz"): Caller.ANYONE,
    ("POST", "/patients"): Caller.ANYONE,
    ("POST", "/patients/{handle}/sessions"): Caller.ANYONE,
    ("GET", "/provider/nonce"): Caller.ANYONE,
    ("POST", "/provider/sessions"): Caller.ANYONE,
    ("GET", "/patient/requests"): Caller.PATIENT,
    ("POST", "/patient/requests/{request_id}/approve"): Caller.PATIENT,
    ("POST", "/patient/requests/{request_id}/deny"): Caller.PATIENT,
    ("GET", "/patient/consents"): Caller.PATIENT,
    ("POST", "/patient/consents/revoke"): Caller.PATIENT,
    ("GET", "/patient/access-log"): Caller.PATIENT,
    ("POST", "/patient/reenroll"): Caller.PATIENT,
    ("POST", "/patient/delete"): Caller.PATIENT,
    ("POST", "/patient/records"): Caller.PATIENT,
    ("POST", "/patient/records/bundles"): Caller.PATIENT,
    ("POST", "/patient/records/documents"): Caller.PATIENT,
    ("GET", "/patient/records"): Caller.PATIENT,
    ("GET", "/patient/records/{record_id}"): Caller.PATIENT,
    ("PUT", "/patient/records/{record_id}"): Caller.PATIENT,
    ("GET", "/patient/records/{record_id}/history"): Caller.PATIENT,
    ("DELETE", "/patient/records/{record_id}"): Caller.PATIENT,
    ("GET", "/provider/patients/{handle}/records/{record_id}"): Caller.PROVIDER,
    ("POST", "/provider/requests"): Caller.PROVIDER,
    ("GET", "/provider/requests"): Caller.PROVIDER,
    ("GET", "/provider/patients/{handle}/records"): Caller.PROVIDER,
    ("POST", "/provider/patients/{handle}/emergency/terms"): Caller.PROVIDER,
    ("POST", "/provider/patients/{handle}/emergency"): Caller.PROVIDER,
    ("POST", "/admin/providers"): Caller.OPERATOR,
    ("GET", "/admin/providers/{address}"): Caller.OPERATOR,
    ("DELETE", "/admin/providers/{address}"): Caller.OPERATOR,
    ("POST", "/admin/audit/anchor"): Caller.OPERATOR,
    ("POST", "/admin/keys/rewrap"): Caller.OPERATOR,
}

OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "valueQuantity": {"value": 72, "unit": "beats/minute"},
}


@dataclass
class World:
    """Alice has a record and a pending request; Bob is another patient. The consenting
    provider may read Alice's records (all, TREAT); the stranger is registered, signed in
    and has no consent or emergency role."""

    alice: str
    alice_token: dict[str, str]
    alice_record: str
    alice_pending: str
    bob: str
    bob_token: dict[str, str]
    consenting: LocalAccount
    consenting_token: dict[str, str]
    stranger: LocalAccount
    stranger_token: dict[str, str]


@pytest.fixture
def world(client: TestClient, new_provider: Callable[..., tuple[LocalAccount, str]]) -> World:
    alice = enroll(client, OBAMA_ENROLL)
    bob = enroll(client, BIDEN_ENROLL)
    alice_token = bearer(patient_session(client, alice, OBAMA_PROBE))
    bob_token = bearer(patient_session(client, bob, BIDEN_PROBE))
    record = client.post("/patient/records", json=OBSERVATION, headers=alice_token)
    assert record.status_code == 201, record.json()
    consenting, consenting_token = new_provider()
    stranger, stranger_token = new_provider()

    def ask(token: str, scope: str) -> str:
        reply = client.post(
            "/provider/requests",
            json={"patient": alice, "scope": scope, "purpose": "TREAT", "duration_seconds": 3600},
            headers=bearer(token),
        )
        assert reply.status_code == 201, reply.json()
        return str(reply.json()["request_id"])

    granted = client.post(
        f"/patient/requests/{ask(consenting_token, 'all')}/approve",
        files=photos_field((OBAMA_PROBE,), "photo"),
        headers=alice_token,
    )
    assert granted.status_code == 200, granted.json()
    return World(
        alice=alice,
        alice_token=alice_token,
        alice_record=str(record.json()["record_id"]),
        alice_pending=ask(consenting_token, "Observation"),
        bob=bob,
        bob_token=bob_token,
        consenting=consenting,
        consenting_token=bearer(consenting_token),
        stranger=stranger,
        stranger_token=bearer(stranger_token),
    )


def served_routes(client: TestClient) -> set[tuple[str, str]]:
    """Every operation of the app's OpenAPI (test_openapi checks each is documented)."""
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return {(method.upper(), path) for path, operations in paths.items() for method in operations}


def test_the_matrix_names_every_route_the_app_serves(client: TestClient) -> None:
    assert served_routes(client) == set(ROUTES)


def test_every_authenticated_route_refuses_every_other_caller(
    client: TestClient, world: World
) -> None:
    credentials: dict[str, dict[str, str]] = {
        "no token": {},
        "garbage": {"Authorization": "Bearer not-a-token"},
        Caller.PATIENT.value: world.bob_token,
        Caller.PROVIDER.value: world.stranger_token,
        Caller.OPERATOR.value: admin_headers(),
    }
    values = {
        "handle": world.alice,
        "record_id": world.alice_record,
        "request_id": world.alice_pending,
        "address": world.consenting.address,
    }
    checked = 0
    for (method, template), caller in ROUTES.items():
        if caller is Caller.ANYONE:
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)
        url = f"{path}?purpose=TREAT" if caller is Caller.PROVIDER else path
        for name, headers in credentials.items():
            if name == caller.value:
                continue
            reply = client.request(method, url, headers=headers)
            assert reply.status_code == 401, (method, template, name, reply.text)
            assert reply.json()["code"] == "authentication_failed", (method, template, name)
            checked += 1
    assert checked == 4 * sum(caller is not Caller.ANYONE for caller in ROUTES.values())
    # Nothing was done on anyone's behalf: the pending request is still pending, the
    # provider still registered, and the record still there.
    pending = client.get("/patient/requests?pending_only=true", headers=world.alice_token)
    assert world.alice_pending in [r["request_id"] for r in pending.json()]
    provider = client.get(f"/admin/providers/{world.consenting.address}", headers=admin_headers())
    assert provider.json()["status"] == "active", provider.json()
    record = client.get(f"/patient/records/{world.alice_record}", headers=world.alice_token)
    assert record.status_code == 200


def test_a_patient_reaches_nothing_of_another_patient(client: TestClient, world: World) -> None:
    bob, record, request = world.bob_token, world.alice_record, world.alice_pending
    bob_face = photos_field((BIDEN_PROBE,), "photo")
    for method, path in (
        ("GET", f"/patient/records/{record}"),
        ("GET", f"/patient/records/{record}/history"),
        ("DELETE", f"/patient/records/{record}"),
    ):
        assert client.request(method, path, headers=bob).status_code == 404, (method, path)
    assert (
        client.put(f"/patient/records/{record}", json=OBSERVATION, headers=bob).status_code == 404
    )
    # A fresh, matching face of Bob's own does not make Alice's request his.
    for action in ("approve", "deny"):
        reply = client.post(f"/patient/requests/{request}/{action}", files=bob_face, headers=bob)
        assert reply.status_code == 404, (action, reply.json())
    # Bob's face does not open Alice's handle.
    reply = client.post(f"/patients/{world.alice}/sessions", files=bob_face)
    assert reply.status_code == 401

    # Bob's own lists show nothing of Alice's.
    assert record not in [
        r["record_id"] for r in client.get("/patient/records", headers=bob).json()
    ]
    assert client.get("/patient/requests", headers=bob).json() == []
    assert client.get("/patient/consents", headers=bob).json() == []
    log = client.get("/patient/access-log", headers=bob).json()
    provider = world.consenting.address.lower()
    for item in log["entries"]:  # the grant and the reads of Alice's record are hers alone
        assert item["entry"]["record_id"] != record and item["entry"]["actor"].lower() != provider

    # Revoking "the consenting provider" as Bob touches only Bob's own (absent) consent.
    client.post(
        "/patient/consents/revoke",
        files=bob_face,
        data={"provider": world.consenting.address, "scope": "all", "purpose": "TREAT"},
        headers=bob,
    )
    read = f"/provider/patients/{world.alice}/records/{record}?purpose=TREAT"
    assert client.get(read, headers=world.consenting_token).status_code == 200

    # Alice's side is untouched: her record, her pending request, her consent.
    assert client.get(f"/patient/records/{record}", headers=world.alice_token).status_code == 200
    pending = client.get("/patient/requests?pending_only=true", headers=world.alice_token).json()
    assert [r["request_id"] for r in pending] == [request]
    consents = client.get("/patient/consents", headers=world.alice_token).json()
    assert [(c["provider"], c["scope"]) for c in consents] == [(world.consenting.address, "all")]


def test_a_provider_without_consent_reaches_nothing(client: TestClient, world: World) -> None:
    stranger, alice, record = world.stranger_token, world.alice, world.alice_record
    read = f"/provider/patients/{alice}/records/{record}?purpose=TREAT"
    listing = f"/provider/patients/{alice}/records?purpose=TREAT"
    # The consenting provider can: so the refusals below are about who asks.
    assert client.get(read, headers=world.consenting_token).status_code == 200
    assert client.get(listing, headers=world.consenting_token).status_code == 200

    for path in (read, listing, f"{listing}&category=Observation"):
        reply = client.get(path, headers=stranger)
        assert reply.status_code == 403, (path, reply.json())
        assert reply.json()["code"] == "access_denied"
    # Emergency terms are only an offer to sign; the chain refuses a provider without the role.
    body = {"scope": "all", "reason": "not my patient", "duration_seconds": 600}
    terms = client.post(f"/provider/patients/{alice}/emergency/terms", json=body, headers=stranger)
    assert terms.status_code == 200, terms.json()
    typed = terms.json()["typed_data"]
    signature = Account.sign_typed_data(world.stranger.key, full_message=typed).signature
    opened = client.post(
        f"/provider/patients/{alice}/emergency",
        json={
            **body,
            "reason_salt": terms.json()["reason_salt"],
            "nonce": typed["message"]["nonce"],
            "deadline": typed["message"]["deadline"],
            "signature": signature.to_0x_hex(),
        },
        headers=stranger,
    )
    assert opened.status_code == 403 and opened.json()["code"] == "chain_role_missing"
    assert client.get(read, headers=stranger).status_code == 403
    # Another provider's requests are not listed to the stranger.
    theirs = client.get("/provider/requests", headers=stranger).json()
    assert world.alice_pending not in [r["request_id"] for r in theirs]
    mine = client.get("/provider/requests", headers=world.consenting_token).json()
    assert world.alice_pending in [r["request_id"] for r in mine]
    # Every refusal is in Alice's access log, with the stranger as the actor.
    log = client.get("/patient/access-log", headers=world.alice_token).json()["entries"]
    denied = [i["entry"] for i in log if i["entry"]["outcome"] == "denied"]
    assert len(denied) >= 3
    assert {e["actor"].lower() for e in denied} == {world.stranger.address.lower()}
