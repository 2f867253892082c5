"""Break-glass, deny, re-enrollment, deletion, deactivation, lockout, limits — through the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from tests.api.support import (
    BIDEN_PROBE,
    OBAMA_ENROLL,
    OBAMA_PROBE,
    admin_headers,
    bearer,
    enroll,
    patient_session,
    photos_field,
    sign_in_provider,
)
from vault.access.enrollment import STAGED_GRACE
from vault.access.scopes import purpose_id, scope_id
from vault.api.app import create_app
from vault.config import Settings
from vault.errors import InvalidConsentSignature, RecordDeleted
from vault.runtime import embedded_chain, open_vault

OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"text": "Heart rate"},
    "valueQuantity": {"value": 80, "unit": "beats/minute"},
}
STEP_UP = photos_field((OBAMA_PROBE,), "photo")


def patient_with_record(client: TestClient) -> tuple[str, dict[str, str], str]:
    """An enrolled patient (Obama's photos), their session headers, and one Observation."""
    handle = enroll(client, OBAMA_ENROLL)
    patient = bearer(patient_session(client, handle, OBAMA_PROBE))
    record = client.post("/patient/records", json=OBSERVATION, headers=patient).json()["record_id"]
    return handle, patient, str(record)


def grant(
    client: TestClient,
    handle: str,
    patient: dict[str, str],
    provider: dict[str, str],
    scope: str = "Observation",
) -> str:
    request_id = client.post(
        "/provider/requests",
        json={"patient": handle, "scope": scope, "purpose": "TREAT", "duration_seconds": 3600},
        headers=provider,
    ).json()["request_id"]
    reply = client.post(f"/patient/requests/{request_id}/approve", files=STEP_UP, headers=patient)
    assert reply.status_code == 200, reply.json()
    return str(request_id)


def test_emergency_access_is_open_at_once_and_shows_in_history(
    client: TestClient, new_provider: Callable[..., tuple[LocalAccount, str]]
) -> None:
    handle, patient, record = patient_with_record(client)
    key, token = new_provider(emergency=True)
    provider = bearer(token)
    url = f"/provider/patients/{handle}/records/{record}?purpose=ETREAT"
    assert client.get(url, headers=provider).status_code == 403

    terms_body = {
        "scope": "all",
        "reason": "unconscious patient in the ER",
        "duration_seconds": 3600,
    }
    terms = client.post(
        f"/provider/patients/{handle}/emergency/terms", json=terms_body, headers=provider
    )
    assert terms.status_code == 200, terms.json()
    typed = terms.json()["typed_data"]
    signature = Account.sign_typed_data(key.key, full_message=typed).signature.to_0x_hex()
    opened = client.post(
        f"/provider/patients/{handle}/emergency",
        json={
            **terms_body,
            "reason_salt": terms.json()["reason_salt"],
            "nonce": typed["message"]["nonce"],
            "deadline": typed["message"]["deadline"],
            "signature": signature,
        },
        headers=provider,
    )
    assert opened.status_code == 201, opened.json()
    read = client.get(url, headers=provider)
    assert read.status_code == 200, read.json()

    history = client.get("/patient/access-log", headers=patient).json()
    actions = [(i["entry"]["action"], i["entry"]["reason"]) for i in history["entries"]]
    assert ("emergency_open", "unconscious patient in the ER") in actions
    assert any(a == "emergency_read" for a, _ in actions)
    assert "emergency_access_opened" in [e["kind"] for e in history["chain_events"]]


def test_emergency_needs_the_role(
    client: TestClient, new_provider: Callable[..., tuple[LocalAccount, str]]
) -> None:
    handle = enroll(client, OBAMA_ENROLL)
    key, token = new_provider(emergency=False)
    body = {"scope": "all", "reason": "curious", "duration_seconds": 600}
    terms = client.post(
        f"/provider/patients/{handle}/emergency/terms", json=body, headers=bearer(token)
    ).json()
    typed = terms["typed_data"]
    reply = client.post(
        f"/provider/patients/{handle}/emergency",
        json={
            **body,
            "reason_salt": terms["reason_salt"],
            "nonce": typed["message"]["nonce"],
            "deadline": typed["message"]["deadline"],
            "signature": Account.sign_typed_data(key.key, full_message=typed).signature.to_0x_hex(),
        },
        headers=bearer(token),
    )
    assert reply.status_code == 403
    assert reply.json()["code"] == "chain_role_missing"


def test_denied_request_grants_nothing(
    client: TestClient, new_provider: Callable[..., tuple[LocalAccount, str]]
) -> None:
    handle, patient, record = patient_with_record(client)
    _, token = new_provider()
    request_id = client.post(
        "/provider/requests",
        json={
            "patient": handle,
            "scope": "Observation",
            "purpose": "TREAT",
            "duration_seconds": 600,
        },
        headers=bearer(token),
    ).json()["request_id"]
    denied = client.post(f"/patient/requests/{request_id}/deny", files=STEP_UP, headers=patient)
    assert denied.status_code == 200 and denied.json()["status"] == "denied"
    again = client.post(f"/patient/requests/{request_id}/approve", files=STEP_UP, headers=patient)
    assert again.status_code == 409
    reply = client.get(
        f"/provider/patients/{handle}/records/{record}?purpose=TREAT", headers=bearer(token)
    )
    assert reply.status_code == 403


def test_reenrollment_keeps_records_and_consents(
    client: TestClient, new_provider: Callable[..., tuple[LocalAccount, str]]
) -> None:
    handle, patient, record = patient_with_record(client)
    _, token = new_provider()
    grant(client, handle, patient, bearer(token))
    before = client.get("/patient/consents", headers=patient).json()

    files = [*STEP_UP, *photos_field(("people/obama/obama.jpg", "people/obama/obama2.jpg"))]
    renewed = client.post("/patient/reenroll", files=files, headers=patient)
    assert renewed.status_code == 200, renewed.json()
    assert client.get("/patient/consents", headers=patient).json() == before
    url = f"/provider/patients/{handle}/records/{record}?purpose=TREAT"
    assert client.get(url, headers=bearer(token)).status_code == 200
    assert client.get(f"/patient/records/{record}", headers=patient).status_code == 200
    # The new template still opens with a fresh photo, and the new key signs a revoke.
    revoke = client.post(
        "/patient/consents/revoke",
        files=photos_field(("people/obama/obama_test1.jpg",), "photo"),
        data={"provider": before[0]["provider"], "scope": "Observation", "purpose": "TREAT"},
        headers=patient,
    )
    assert revoke.status_code == 200, revoke.json()


REENROLL = [*STEP_UP, *photos_field(("people/obama/obama.jpg", "people/obama/obama2.jpg"))]


class ProcessKilled(Exception):
    """Stands for the process dying at one point: nothing after it runs."""


def _revoke_with_a_fresh_photo(client: TestClient, patient: dict[str, str], provider: str) -> int:
    reply = client.post(
        "/patient/consents/revoke",
        files=photos_field(("people/obama/obama_test1.jpg",), "photo"),
        data={"provider": provider, "scope": "Observation", "purpose": "TREAT"},
        headers=patient,
    )
    return int(reply.status_code)


def test_reenrollment_killed_after_the_rotation_is_finished_by_the_next_verification(
    client: TestClient,
    new_provider: Callable[..., tuple[LocalAccount, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chain adopted the new key, the process died before the new template replaced
    the old one: without the staged slot the face would yield a key the chain no longer
    accepts, for good."""
    services = client.app.state.services  # type: ignore[attr-defined]
    faces = services.enrollment._faces
    handle, patient, _ = patient_with_record(client)
    _, token = new_provider()
    grant(client, handle, patient, bearer(token))
    provider = client.get("/patient/consents", headers=patient).json()[0]["provider"]
    account = services.accounts.get(handle)
    old_key = account.controller

    def killed(_staged: object) -> bool:
        raise ProcessKilled

    monkeypatch.setattr(faces, "promote", killed)
    with pytest.raises(ProcessKilled):
        client.post("/patient/reenroll", files=REENROLL, headers=patient)
    monkeypatch.undo()  # the restarted process
    staged = faces.staged(handle)
    new_key = services.registry.controller_of(account.chain_patient_id)
    assert staged is not None and new_key == staged.address != old_key

    # The next verification (here, a new session) sees the chain name the staged key.
    session = bearer(patient_session(client, handle, OBAMA_PROBE))
    assert faces.staged(handle) is None
    assert services.accounts.get(handle).controller == new_key
    assert _revoke_with_a_fresh_photo(client, session, provider) == 200  # signed by new_key
    actions = [e.event.action for e in services.audit.entries(patient_id=handle)]
    assert actions.count("reenroll") == 1


def test_reenrollment_killed_between_its_two_commits_is_repaired_by_the_next_one(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    handle, patient, _ = patient_with_record(client)

    def killed(_handle: str, _controller: str) -> None:
        raise ProcessKilled

    monkeypatch.setattr(services.accounts, "set_controller", killed)
    with pytest.raises(ProcessKilled):
        client.post("/patient/reenroll", files=REENROLL, headers=patient)
    monkeypatch.undo()
    # The template and the chain moved on, the account row did not: a second
    # re-enrollment must still be allowed (the chain says which key is current).
    again = client.post("/patient/reenroll", files=REENROLL, headers=patient)
    assert again.status_code == 200, again.json()
    account = services.accounts.get(handle)
    assert account.controller == again.json()["address"]
    assert services.registry.controller_of(account.chain_patient_id) == account.controller


def test_a_staged_template_the_chain_never_adopted_is_dropped_only_after_the_grace(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after staging, before the rotation was sent: the old key stays current, the
    staged template is kept while a rotation could still be on its way, then dropped."""
    services = client.app.state.services  # type: ignore[attr-defined]
    enrollment, faces = services.enrollment, services.enrollment._faces
    handle, patient, _ = patient_with_record(client)
    old_key = services.accounts.get(handle).controller

    def killed(_signed: object) -> None:
        raise ProcessKilled

    monkeypatch.setattr(services.registry, "rotate_controller", killed)
    with pytest.raises(ProcessKilled):
        client.post("/patient/reenroll", files=REENROLL, headers=patient)
    monkeypatch.undo()
    assert faces.staged(handle) is not None

    patient_session(client, handle, OBAMA_PROBE)  # within the grace: kept, old key works
    assert faces.staged(handle) is not None
    assert services.accounts.get(handle).controller == old_key

    later = datetime.now(UTC) + STAGED_GRACE + timedelta(seconds=1)
    monkeypatch.setattr(enrollment, "_clock", lambda: later)
    patient_session(client, handle, OBAMA_PROBE)
    assert faces.staged(handle) is None
    assert services.accounts.get(handle).controller == old_key


def test_a_rotation_the_chain_refuses_leaves_nothing_staged(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    handle, patient, _ = patient_with_record(client)

    def refused(_signed: object) -> None:
        raise InvalidConsentSignature("the contract refused the rotation's signatures")

    monkeypatch.setattr(services.registry, "rotate_controller", refused)
    reply = client.post("/patient/reenroll", files=REENROLL, headers=patient)
    assert reply.status_code == 403 and reply.json()["code"] == InvalidConsentSignature.code
    assert services.enrollment._faces.staged(handle) is None


def test_deleting_the_account_revokes_and_shreds(
    client: TestClient, new_provider: Callable[..., tuple[LocalAccount, str]]
) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    handle = enroll(client, OBAMA_ENROLL)
    patient = bearer(patient_session(client, handle, OBAMA_PROBE))
    account = services.accounts.get(handle)
    record = client.post("/patient/records", json=OBSERVATION, headers=patient).json()["record_id"]
    key, token = new_provider()
    grant(client, handle, patient, bearer(token))
    assert client.post("/patient/delete", files=STEP_UP, headers=patient).status_code == 204
    assert client.get(f"/patient/records/{record}", headers=patient).status_code == 401
    reply = client.get(
        f"/provider/patients/{handle}/records/{record}?purpose=TREAT", headers=bearer(token)
    )
    assert reply.status_code == 404
    assert client.post(f"/patients/{handle}/sessions", files=STEP_UP).status_code == 401
    # The consent was revoked on chain, and the record's key is gone (crypto-shredded).
    state = services.registry.consent(
        account.chain_patient_id, key.address, scope_id("Observation"), purpose_id("TREAT")
    )
    assert state.revoked_at != 0
    with pytest.raises(RecordDeleted):
        services.records.get_record(patient_id=account.record_patient_id, record_id=record)


def test_deactivated_provider_is_refused_at_once(
    client: TestClient, new_provider: Callable[..., tuple[LocalAccount, str]]
) -> None:
    handle, patient, record = patient_with_record(client)
    key, token = new_provider()
    grant(client, handle, patient, bearer(token))
    url = f"/provider/patients/{handle}/records/{record}?purpose=TREAT"
    assert client.get(url, headers=bearer(token)).status_code == 200
    assert (
        client.delete(f"/admin/providers/{key.address}", headers=admin_headers()).status_code == 200
    )
    assert client.get(url, headers=bearer(token)).status_code == 403


def test_repeated_face_failures_lock_the_handle(client: TestClient) -> None:
    handle = enroll(client, OBAMA_ENROLL)
    wrong = photos_field((BIDEN_PROBE,), "photo")
    codes = [client.post(f"/patients/{handle}/sessions", files=wrong).status_code for _ in range(6)]
    assert codes[:5] == [401] * 5
    locked = client.post(f"/patients/{handle}/sessions", files=STEP_UP)
    assert locked.status_code == 429
    assert locked.json()["code"] == "biometric_locked_out"
    assert int(locked.headers["Retry-After"]) > 0


def test_bad_input_gets_4xx_with_a_code(client: TestClient) -> None:
    handle = enroll(client, OBAMA_ENROLL)
    patient = bearer(patient_session(client, handle, OBAMA_PROBE))
    cases = [
        client.post("/patients", files=[("photos", ("x.jpg", b"not an image", "image/jpeg"))]),
        client.post("/patient/records", json={"resourceType": "Observation"}, headers=patient),
        client.post(
            "/patient/records",
            content=b"{",
            headers={**patient, "content-type": "application/json"},
        ),
        client.get("/patient/records/../../etc/passwd", headers=patient),
        client.get("/provider/nonce?x=1"),
        client.post("/provider/sessions", json={"message": "hello", "signature": "0x00"}),
        client.post("/admin/providers", json={"address": "0x1"}, headers=admin_headers()),
        client.post("/admin/providers", json={"address": "0x" + "ab" * 20}),
        client.post("/patients/" + "x" * 200 + "/sessions", files=STEP_UP),
    ]
    for reply in cases:
        assert 400 <= reply.status_code < 500 or reply.status_code == 200, reply.text
        if reply.status_code != 200:
            assert set(reply.json()) == {"code", "message", "details"}, reply.text


def test_oversized_request_is_refused(tmp_path: Path, anvil, project_root: Path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        data_dir=tmp_path / "data",
        chain_rpc_url=anvil.url,
        project_root=project_root,
        max_request_bytes=1024,
    )
    vault = open_vault(settings)
    try:
        client = TestClient(create_app(vault))
        reply = client.post("/patients", files=photos_field(OBAMA_ENROLL))
        assert reply.status_code == 413
        assert reply.json()["code"] == "payload_too_large"
    finally:
        vault.close()


def test_provider_reads_fail_closed_when_the_chain_dies(tmp_path: Path, project_root: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", project_root=project_root)
    vault = open_vault(settings)  # its own embedded chain, which this test kills
    try:
        client = TestClient(create_app(vault))
        handle = enroll(client, OBAMA_ENROLL)
        patient = bearer(patient_session(client, handle, OBAMA_PROBE))
        record = client.post("/patient/records", json=OBSERVATION, headers=patient).json()[
            "record_id"
        ]
        key = Account.create()
        admin = {"Authorization": "Bearer " + settings.admin_token_file.read_text().strip()}
        assert (
            client.post(
                "/admin/providers", json={"address": key.address}, headers=admin
            ).status_code
            == 201
        )
        provider = bearer(sign_in_provider(client, key))
        grant(client, handle, patient, provider)
        url = f"/provider/patients/{handle}/records/{record}?purpose=TREAT"
        assert client.get(url, headers=provider).status_code == 200
        chain = embedded_chain(settings)
        chain.down()
        for _ in range(3):
            reply = client.get(url, headers=provider)
            assert reply.status_code == 503
            assert reply.json()["code"] == "chain_unavailable"
        chain.up()  # back from its saved state, on the same port
        assert client.get(url, headers=provider).status_code == 200
        log = client.get("/patient/access-log", headers=patient).json()["entries"]
        reasons = [i["entry"]["reason"] for i in log if i["entry"]["outcome"] == "denied"]
        assert reasons.count("chain_unavailable") == 3
    finally:
        vault.close()
