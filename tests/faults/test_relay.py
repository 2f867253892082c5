"""A relayed grant that is dropped, or mined too late: the request stays pending, retryable.

Automine is switched off on the session's node for a block of code (restored in
``finally``), so the grant sits unmined until the relayer gives up waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from web3 import Web3

from tests.api.support import (
    OBAMA_ENROLL,
    OBAMA_PROBE,
    bearer,
    enroll,
    patient_session,
    photos_field,
)
from vault.access.scopes import purpose_id, scope_id

STEP_UP = photos_field((OBAMA_PROBE,), "photo")
OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"text": "Heart rate"},
    "valueQuantity": {"value": 58, "unit": "beats/minute"},
}


@contextmanager
def manual_mining(w3: Web3) -> Iterator[None]:
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        yield
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


@pytest.fixture
def setup(
    client: TestClient,
    new_provider: Callable[..., tuple[LocalAccount, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[TestClient, str, dict[str, str], LocalAccount, dict[str, str], str]:
    services = client.app.state.services  # type: ignore[attr-defined]
    # Give up on a receipt after 1 s rather than a minute.
    monkeypatch.setattr(services.registry.relayer, "_receipt_timeout", 1.0)
    handle = enroll(client, OBAMA_ENROLL)
    patient = bearer(patient_session(client, handle, OBAMA_PROBE))
    record = client.post("/patient/records", json=OBSERVATION, headers=patient).json()
    key, token = new_provider()
    url = f"/provider/patients/{handle}/records/{record['record_id']}?purpose=TREAT"
    return client, handle, patient, key, bearer(token), url


def ask(client: TestClient, handle: str, provider: dict[str, str]) -> str:
    reply = client.post(
        "/provider/requests",
        json={
            "patient": handle,
            "scope": "Observation",
            "purpose": "TREAT",
            "duration_seconds": 900,
        },
        headers=provider,
    )
    assert reply.status_code == 201, reply.json()
    return str(reply.json()["request_id"])


def request_state(client: TestClient, patient: dict[str, str], request_id: str) -> tuple[str, str]:
    for r in client.get("/patient/requests", headers=patient).json():
        if r["request_id"] == request_id:
            return r["status"], r["error_code"]
    raise AssertionError(f"request {request_id} not listed")


def consent_on_chain(client: TestClient, handle: str, provider: str) -> bool:
    services = client.app.state.services  # type: ignore[attr-defined]
    account = services.accounts.get(handle)
    state = services.registry.consent(
        account.chain_patient_id, provider, scope_id("Observation"), purpose_id("TREAT")
    )
    return bool(state.stands_at(services.registry.chain_time()))


def test_dropped_grant_leaves_the_request_pending_and_retryable(setup) -> None:  # type: ignore[no-untyped-def]
    client, handle, patient, key, provider, url = setup
    services = client.app.state.services
    w3 = services.registry.w3
    operator = services.registry.relayer.address
    request_id = ask(client, handle, provider)
    nonce_before = w3.eth.get_transaction_count(operator, "latest")
    with manual_mining(w3):
        reply = client.post(
            f"/patient/requests/{request_id}/approve", files=STEP_UP, headers=patient
        )
        assert reply.status_code == 503, reply.json()
        assert reply.json()["code"] == "transaction_not_confirmed"
        dropped = w3.provider.make_request("anvil_dropAllTransactions", [])  # type: ignore[arg-type]
        assert "error" not in dropped
    assert request_state(client, patient, request_id) == ("pending", "transaction_not_confirmed")
    assert not consent_on_chain(client, handle, key.address)
    assert client.get(url, headers=provider).status_code == 403

    again = client.post(f"/patient/requests/{request_id}/approve", files=STEP_UP, headers=patient)
    assert again.status_code == 200, again.json()
    assert (again.json()["status"], again.json()["error_code"]) == ("granted", None)
    # The relayer reused the dropped nonce: no gap strands later transactions.
    tx = w3.eth.get_transaction(again.json()["tx_hash"])
    assert tx["nonce"] == nonce_before
    assert client.get(url, headers=provider).status_code == 200


def test_grant_mined_after_the_timeout_can_be_approved_again(setup) -> None:  # type: ignore[no-untyped-def]
    client, handle, patient, key, provider, url = setup
    w3 = client.app.state.services.registry.w3
    request_id = ask(client, handle, provider)
    with manual_mining(w3):
        reply = client.post(
            f"/patient/requests/{request_id}/approve", files=STEP_UP, headers=patient
        )
        assert reply.status_code == 503, reply.json()
    # Mined on leaving the block: the consent stands, the request still says pending.
    assert consent_on_chain(client, handle, key.address)
    assert request_state(client, patient, request_id) == ("pending", "transaction_not_confirmed")
    again = client.post(f"/patient/requests/{request_id}/approve", files=STEP_UP, headers=patient)
    assert again.status_code == 200, again.json()
    assert again.json()["status"] == "granted"
    assert client.get(url, headers=provider).status_code == 200
    # Later transactions from the same relayer go through (nonces in step with the node).
    revoke = client.post(
        "/patient/consents/revoke",
        files=STEP_UP,
        data={"provider": key.address, "scope": "Observation", "purpose": "TREAT"},
        headers=patient,
    )
    assert revoke.status_code == 200, revoke.json()
    assert client.get(url, headers=provider).status_code == 403
