"""The chain dies, comes back, or comes back empty while providers read and patients approve.

Each test runs its own embedded Anvil node (started by the vault, as ``vault serve`` does),
because it kills it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from tests.api.support import (
    OBAMA_ENROLL,
    OBAMA_PROBE,
    bearer,
    enroll,
    patient_session,
    photos_field,
    sign_in_provider,
)
from vault.api.app import create_app
from vault.config import Settings
from vault.runtime import Vault, embedded_chain, open_vault

READERS = 4
OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"text": "Heart rate"},
    "valueQuantity": {"value": 71, "unit": "beats/minute"},
}
STEP_UP = photos_field((OBAMA_PROBE,), "photo")


@dataclass
class Read:
    started: float
    ended: float
    status: int
    code: str


@dataclass
class Scene:
    settings: Settings
    vault: Vault
    client: TestClient
    handle: str
    patient: dict[str, str]
    provider: dict[str, str]
    read_url: str


def ask(client: TestClient, handle: str, provider: dict[str, str]) -> str:
    reply = client.post(
        "/provider/requests",
        json={
            "patient": handle,
            "scope": "Observation",
            "purpose": "TREAT",
            "duration_seconds": 3600,
        },
        headers=provider,
    )
    assert reply.status_code == 201, reply.json()
    return str(reply.json()["request_id"])


def new_signed_in_provider(scene_client: TestClient, settings: Settings) -> dict[str, str]:
    key = Account.create()
    admin = {"Authorization": "Bearer " + settings.admin_token_file.read_text().strip()}
    added = scene_client.post("/admin/providers", json={"address": key.address}, headers=admin)
    assert added.status_code == 201, added.json()
    return bearer(sign_in_provider(scene_client, key))


@pytest.fixture
def scene(tmp_path: Path, project_root: Path) -> Iterator[Scene]:
    """A vault on its own chain; a patient with a record; a provider with consent."""
    settings = Settings(data_dir=tmp_path / "data", project_root=project_root)
    vault = open_vault(settings)
    try:
        client = TestClient(create_app(vault))
        handle = enroll(client, OBAMA_ENROLL)
        patient = bearer(patient_session(client, handle, OBAMA_PROBE))
        record = client.post("/patient/records", json=OBSERVATION, headers=patient).json()
        provider = new_signed_in_provider(client, settings)
        request_id = ask(client, handle, provider)
        approved = client.post(
            f"/patient/requests/{request_id}/approve", files=STEP_UP, headers=patient
        )
        assert approved.status_code == 200, approved.json()
        url = f"/provider/patients/{handle}/records/{record['record_id']}?purpose=TREAT"
        assert client.get(url, headers=provider).status_code == 200
        yield Scene(settings, vault, client, handle, patient, provider, url)
    finally:
        vault.close(stop_chain=True)


def read_continuously(scene: Scene, stop: threading.Event, log: list[Read]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        reply = scene.client.get(scene.read_url, headers=scene.provider)
        code = reply.json().get("code", "") if reply.status_code != 200 else ""
        log.append(Read(started, time.monotonic(), reply.status_code, code))


def test_chain_killed_under_readers_fails_closed_and_recovers(scene: Scene) -> None:
    chain = embedded_chain(scene.settings)
    pending = ask(scene.client, scene.handle, new_signed_in_provider(scene.client, scene.settings))
    stop = threading.Event()
    log: list[Read] = []
    readers = [
        threading.Thread(target=read_continuously, args=(scene, stop, log)) for _ in range(READERS)
    ]
    for t in readers:
        t.start()
    try:
        time.sleep(0.5)
        chain.down()
        down_at = time.monotonic()
        # A patient approving while the chain is down: refused, the request stays pending.
        refused = scene.client.post(
            f"/patient/requests/{pending}/approve", files=STEP_UP, headers=scene.patient
        )
        time.sleep(1.0)
        up_at = time.monotonic()
        chain.up()  # from its saved state, on the same port; the vault is not restarted
        back_at = time.monotonic()
        time.sleep(1.0)
    finally:
        stop.set()
        for t in readers:
            t.join(timeout=30)

    while_down = [r for r in log if r.started > down_at and r.ended < up_at]
    after = [r for r in log if r.started > back_at]
    assert while_down, "no read happened while the chain was down"
    assert {(r.status, r.code) for r in while_down} == {(503, "chain_unavailable")}
    assert not [r for r in log if r.started > down_at and r.ended < up_at and r.status == 200]
    assert after and {r.status for r in after} == {200}
    print(
        f"\n{len(log)} reads by {READERS} threads; {len(while_down)} while the chain was down, "
        f"all 503; {len(after)} after its restart, all 200"
    )

    assert refused.status_code == 503, refused.json()
    assert refused.json()["code"] == "chain_unavailable"
    request = next(
        r
        for r in scene.client.get("/patient/requests", headers=scene.patient).json()
        if r["request_id"] == pending
    )
    assert request["status"] == "pending"
    assert request["error_code"] == "chain_unavailable"
    again = scene.client.post(
        f"/patient/requests/{pending}/approve", files=STEP_UP, headers=scene.patient
    )
    assert again.status_code == 200, again.json()
    assert again.json()["status"] == "granted"
    # Every refusal during the outage is in the patient's access log.
    denied, cursor = [], 0
    while cursor is not None:  # the log comes a page at a time
        page = scene.client.get(
            "/patient/access-log", params={"after": cursor, "limit": 1000}, headers=scene.patient
        ).json()
        denied += [i for i in page["entries"] if i["entry"]["reason"] == "chain_unavailable"]
        cursor = page["next_after"]
    assert len(denied) == sum(1 for r in log if r.code == "chain_unavailable")


def test_fresh_chain_without_the_contract_refuses_with_contract_missing(scene: Scene) -> None:
    pending = ask(scene.client, scene.handle, new_signed_in_provider(scene.client, scene.settings))
    chain = embedded_chain(scene.settings)
    chain.down()
    chain.state_file.unlink()  # a chain reset: the node comes back empty
    chain.up()
    for _ in range(3):
        reply = scene.client.get(scene.read_url, headers=scene.provider)
        assert reply.status_code == 503, reply.json()
        assert reply.json()["code"] == "contract_missing"
        assert scene.vault.chain.deployment.address in reply.json()["message"]
    # Approving against the empty chain must not mark the request granted.
    approve = scene.client.post(
        f"/patient/requests/{pending}/approve", files=STEP_UP, headers=scene.patient
    )
    assert approve.status_code == 503, approve.json()
    assert approve.json()["code"] == "contract_missing"
    request = next(
        r
        for r in scene.client.get("/patient/requests", headers=scene.patient).json()
        if r["request_id"] == pending
    )
    assert (request["status"], request["error_code"]) == ("pending", "contract_missing")
    health = scene.client.get("/healthz")
    assert health.status_code == 503 and health.json()["chain"]["code"] == "contract_missing"
