"""Every provider read path goes through the consent gate, which decides and audits.

For each path (one record, a deleted record, a damaged record, the listing of every
category, the listing of one, a break-glass read) the tests change only what the chain
says, never the request: the chain says yes, then no (the operator deactivates the
provider on chain), then cannot answer (its JSON-RPC endpoint stops answering). A path
that skipped the gate would answer the same each time; one that decided without auditing
would leave the access log short. So each request must get the chain's answer (200, 403,
503) and exactly one new audit entry saying so, written before the reply.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.api.support import (
    OBAMA_ENROLL,
    OBAMA_PROBE,
    admin_headers,
    bearer,
    enroll,
    patient_session,
)
from tests.api.test_lifecycle import grant
from vault.audit.log import AuditEvent
from vault.chain.jsonrpc import JsonRpcClient
from vault.runtime import Vault
from vault.services import Services
from vault.store.record_models import RecordVersionRow


def _observation(text: str) -> dict[str, object]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": text}}


CONDITION: dict[str, object] = {
    "resourceType": "Condition",
    "subject": {"reference": "Patient/example"},
    "code": {"text": "Asthma"},
}


@dataclass
class Reads:
    """A patient with Observations (live, deleted, damaged) and a Condition; a provider
    whose consent covers Observations for TREAT."""

    client: TestClient
    services: Services
    handle: str
    patient: dict[str, str]
    live: str
    deleted: str
    damaged: str
    condition: str
    provider: LocalAccount
    provider_token: dict[str, str]


def _blob_of(vault: Vault, record_id: str) -> Path:
    with vault.session_factory() as session:
        key = session.scalars(
            select(RecordVersionRow.blob_key).where(RecordVersionRow.record_id == record_id)
        ).one()
    assert key is not None
    return vault.settings.resolved_blob_dir.joinpath(*key.split("/"))


@pytest.fixture
def reads(
    client: TestClient, vault: Vault, new_provider: Callable[..., tuple[LocalAccount, str]]
) -> Reads:
    handle = enroll(client, OBAMA_ENROLL)
    patient = bearer(patient_session(client, handle, OBAMA_PROBE))

    def create(body: dict[str, object]) -> str:
        reply = client.post("/patient/records", json=body, headers=patient)
        assert reply.status_code == 201, reply.json()
        return str(reply.json()["record_id"])

    live, deleted, damaged = (create(_observation(t)) for t in ("live", "deleted", "damaged"))
    condition = create(CONDITION)
    assert client.delete(f"/patient/records/{deleted}", headers=patient).status_code == 204
    blob = _blob_of(vault, damaged)
    flipped = bytearray(blob.read_bytes())
    flipped[len(flipped) // 2] ^= 1
    blob.write_bytes(bytes(flipped))
    provider, token = new_provider()
    grant(client, handle, patient, bearer(token), scope="Observation")
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return Reads(
        client,
        services,
        handle,
        patient,
        live,
        deleted,
        damaged,
        condition,
        provider,
        bearer(token),
    )


#: Each path: its URL, the action its audit entry names, and what an allowed read answers.
PATHS: dict[str, tuple[Callable[[Reads], str], str, int]] = {
    "record": (lambda r: f"/provider/patients/{r.handle}/records/{r.live}", "read", 200),
    "deleted record": (
        lambda r: f"/provider/patients/{r.handle}/records/{r.deleted}",
        "read",
        400,  # record_deleted, told only to a provider the chain lets read
    ),
    "damaged record": (
        lambda r: f"/provider/patients/{r.handle}/records/{r.damaged}",
        "read",
        502,  # tamper_detected, likewise
    ),
    "listing": (lambda r: f"/provider/patients/{r.handle}/records", "list", 200),
    "listing of a category": (
        lambda r: f"/provider/patients/{r.handle}/records?category=Observation",
        "list",
        200,
    ),
}


def _get(reads: Reads, url: str, purpose: str = "TREAT") -> tuple[int, str, list[AuditEvent]]:
    """GET ``url`` as the provider: (status, error code, the audit entries it added)."""
    before = len(reads.services.audit.entries(patient_id=reads.handle))
    separator = "&" if "?" in url else "?"
    reply = reads.client.get(f"{url}{separator}purpose={purpose}", headers=reads.provider_token)
    added = reads.services.audit.entries(patient_id=reads.handle)[before:]
    code = reply.json().get("code", "") if reply.status_code != 200 else ""
    return reply.status_code, code, [e.event for e in added]


def _dead_node() -> JsonRpcClient:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return JsonRpcClient(f"http://127.0.0.1:{port}")


def _verdicts(events: list[AuditEvent]) -> list[tuple[str, str, str, str]]:
    return [(e.action, e.outcome, e.reason, e.actor.lower()) for e in events]


@pytest.mark.parametrize("path", list(PATHS))
def test_each_read_path_answers_what_the_chain_says_and_audits_it(
    reads: Reads, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url_of, action, allowed_status = PATHS[path]
    url, actor = url_of(reads), reads.provider.address.lower()

    status, _, events = _get(reads, url)
    assert status == allowed_status
    assert _verdicts(events) == [(action, "allowed", "", actor)]

    # The chain cannot answer: refused (503), audited, whatever was decided a moment ago.
    with monkeypatch.context() as down:
        down.setattr(reads.services.registry, "_rpc", _dead_node())
        status, code, events = _get(reads, url)
    assert (status, code) == (503, "chain_unavailable")
    assert _verdicts(events) == [(action, "denied", "chain_unavailable", actor)]

    # The chain says no: the operator deactivates the provider (a new block).
    reply = reads.client.delete(
        f"/admin/providers/{reads.provider.address}", headers=admin_headers()
    )
    assert reply.status_code == 200, reply.json()
    status, code, events = _get(reads, url)
    assert (status, code) == (403, "access_denied")
    assert _verdicts(events) == [(action, "denied", "no_consent", actor)]


def test_a_listing_shows_only_the_categories_the_chain_allows(reads: Reads) -> None:
    listing = f"/provider/patients/{reads.handle}/records?purpose=TREAT"
    reply = reads.client.get(listing, headers=reads.provider_token)
    assert reply.status_code == 200
    assert {r["record_id"] for r in reply.json()} == {reads.live, reads.damaged}
    assert reads.condition not in {r["record_id"] for r in reply.json()}
    refused = reads.client.get(f"{listing}&category=Condition", headers=reads.provider_token)
    assert refused.status_code == 403
    entries = reads.services.audit.entries(patient_id=reads.handle)[-2:]
    assert [(e.event.action, e.event.outcome, e.event.scope) for e in entries] == [
        ("list", "allowed", "Observation"),
        ("list", "denied", "Condition"),
    ]


def test_a_break_glass_read_goes_through_the_gate(
    reads: Reads,
    new_provider: Callable[..., tuple[LocalAccount, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Emergency access is a basis the chain gives like consent: refused before the
    provider breaks the glass, allowed and audited as ``emergency_read`` after, refused
    again when the chain cannot answer."""
    key, token = new_provider(emergency=True)
    emergency = Reads(**{**reads.__dict__, "provider": key, "provider_token": bearer(token)})
    url, actor = PATHS["record"][0](emergency), key.address.lower()
    listing = PATHS["listing"][0](emergency)

    status, _, events = _get(emergency, url, purpose="ETREAT")
    assert status == 403
    assert _verdicts(events) == [("read", "denied", "no_consent", actor)]

    body = {"scope": "all", "reason": "unconscious patient in the ER", "duration_seconds": 600}
    terms = reads.client.post(
        f"/provider/patients/{reads.handle}/emergency/terms", json=body, headers=bearer(token)
    ).json()
    typed = terms["typed_data"]
    opened = reads.client.post(
        f"/provider/patients/{reads.handle}/emergency",
        json={
            **body,
            "reason_salt": terms["reason_salt"],
            "nonce": typed["message"]["nonce"],
            "deadline": typed["message"]["deadline"],
            "signature": Account.sign_typed_data(key.key, full_message=typed).signature.to_0x_hex(),
        },
        headers=bearer(token),
    )
    assert opened.status_code == 201, opened.json()

    status, _, events = _get(emergency, url, purpose="ETREAT")
    assert status == 200
    assert _verdicts(events) == [("emergency_read", "allowed", "", actor)]
    status, _, events = _get(emergency, listing, purpose="ETREAT")
    assert status == 200
    assert _verdicts(events) == [("list", "allowed", "", actor)]
    with monkeypatch.context() as down:
        down.setattr(reads.services.registry, "_rpc", _dead_node())
        status, code, events = _get(emergency, url, purpose="ETREAT")
    assert (status, code) == (503, "chain_unavailable")
    assert _verdicts(events) == [("read", "denied", "chain_unavailable", actor)]
