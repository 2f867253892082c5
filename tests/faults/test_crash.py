"""``vault serve`` killed with SIGKILL while patients upload and approve, several times.

The chain runs on its own (``vault chain up``), as in production, so only the API process
dies. After each kill the vault is started again on the same data; at the end every
record is either wholly readable or absent, every acknowledged write is there, and every
access request agrees with the chain: ``granted`` means a provider can read now, and a
request left ``pending`` or ``approving`` can be approved again.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from siwe import SiweMessage

from tests.api.support import FACES, OBAMA_ENROLL, OBAMA_PROBE
from tests.served import VAULT, run_vault, wait_healthy
from vault.chain.node import free_port

KILLS = 4
UPLOADERS = 2
PROVIDERS = 10
ADMIN = "admin-" + secrets.token_hex(16)


def files(field_name: str, names: tuple[str, ...]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field_name, (n, (FACES / n).read_bytes(), "image/jpeg")) for n in names]


def observation(marker: str) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": f"Heart rate {marker}"},
        "valueQuantity": {"value": 70, "unit": "beats/minute"},
    }


@dataclass
class Ledger:
    """What the clients sent and what the vault acknowledged."""

    sent_markers: set[str] = field(default_factory=set)
    acked_records: dict[str, str] = field(default_factory=dict)  # record id -> marker
    requests: dict[str, int] = field(default_factory=dict)  # request id -> provider index
    acked_grants: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ServedVault:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.base = f"http://127.0.0.1:{env['VAULT_PORT']}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*VAULT, "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        wait_healthy(f"{self.base}/healthz", self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedVault]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env.update(
        VAULT_DATA_DIR=str(tmp_path / "data"),
        VAULT_PORT=str(free_port()),
        VAULT_ADMIN_TOKEN=ADMIN,
    )
    assert run_vault(["chain", "up"], env).returncode == 0
    vault = ServedVault(env)
    try:
        yield vault
    finally:
        vault.stop()
        run_vault(["chain", "down"], env)


def sign_in(http: httpx.Client, key: LocalAccount) -> dict[str, str]:
    nonce = http.get("/provider/nonce").json()
    now = time.time()
    message = SiweMessage(
        domain=nonce["domain"],
        address=key.address,
        uri=f"http://{nonce['domain']}",
        version="1",
        chain_id=nonce["chain_id"],
        issued_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        expiration_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
        nonce=nonce["nonce"],
        statement="Sign in to the health data vault.",
    ).prepare_message()
    signature = key.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    reply = http.post("/provider/sessions", json={"message": message, "signature": signature})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['token']}"}


def uploader(base: str, patient: dict[str, str], ledger: Ledger, stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        while not stop.is_set():
            marker = secrets.token_hex(8)
            with ledger.lock:
                ledger.sent_markers.add(marker)
            try:
                reply = http.post("/patient/records", json=observation(marker), headers=patient)
            except httpx.HTTPError:
                return  # the vault died under us
            if reply.status_code == 201:
                with ledger.lock:
                    ledger.acked_records[reply.json()["record_id"]] = marker


def approver(
    base: str,
    handle: str,
    patient: dict[str, str],
    providers: list[dict[str, str]],
    ledger: Ledger,
    stop: threading.Event,
) -> None:
    with httpx.Client(base_url=base, timeout=60) as http:
        while not stop.is_set():
            with ledger.lock:
                free = [i for i in range(len(providers)) if i not in ledger.requests.values()]
            if not free:
                return
            index = free[0]
            try:
                asked = http.post(
                    "/provider/requests",
                    json={
                        "patient": handle,
                        "scope": "Observation",
                        "purpose": "TREAT",
                        "duration_seconds": 3600,
                    },
                    headers=providers[index],
                )
                if asked.status_code != 201:
                    return
                request_id = asked.json()["request_id"]
                with ledger.lock:
                    ledger.requests[request_id] = index
                approved = http.post(
                    f"/patient/requests/{request_id}/approve",
                    files=files("photo", (OBAMA_PROBE,)),
                    headers=patient,
                )
            except httpx.HTTPError:
                return
            if approved.status_code == 200:
                with ledger.lock:
                    ledger.acked_grants.add(request_id)


def test_sigkill_during_uploads_and_grants_loses_nothing(served: ServedVault) -> None:
    rng = random.Random(7)
    served.start()
    with httpx.Client(base_url=served.base, timeout=60) as http:
        enrolled = http.post("/patients", files=files("photos", OBAMA_ENROLL))
        assert enrolled.status_code == 201, enrolled.text
        handle = enrolled.json()["handle"]
        session = http.post(f"/patients/{handle}/sessions", files=files("photo", (OBAMA_PROBE,)))
        patient = {"Authorization": f"Bearer {session.json()['token']}"}
        keys = [Account.from_key(secrets.token_bytes(32)) for _ in range(PROVIDERS)]
        admin = {"Authorization": f"Bearer {ADMIN}"}
        for key in keys:
            added = http.post("/admin/providers", json={"address": key.address}, headers=admin)
            assert added.status_code == 201, added.text
        providers = [sign_in(http, key) for key in keys]

    ledger = Ledger()
    for round_ in range(KILLS):
        if round_:
            served.start()
        stop = threading.Event()
        workers = [
            threading.Thread(target=uploader, args=(served.base, patient, ledger, stop))
            for _ in range(UPLOADERS)
        ]
        workers.append(
            threading.Thread(
                target=approver, args=(served.base, handle, patient, providers, ledger, stop)
            )
        )
        for w in workers:
            w.start()
        time.sleep(rng.uniform(0.8, 2.5))
        served.kill()  # SIGKILL: no shutdown, no cleanup
        stop.set()
        for w in workers:
            w.join(timeout=60)

    served.start()
    with httpx.Client(base_url=served.base, timeout=60) as http:
        listed = http.get("/patient/records", headers=patient).json()
        ids = {r["record_id"] for r in listed}
        # Every acknowledged upload survived; every stored record is whole and one we sent.
        assert set(ledger.acked_records) <= ids
        for record_id in ids:
            reply = http.get(f"/patient/records/{record_id}", headers=patient)
            assert reply.status_code == 200, reply.text
            text = reply.json()["resource"]["code"]["text"]
            assert text.removeprefix("Heart rate ") in ledger.sent_markers
            if record_id in ledger.acked_records:
                assert text == f"Heart rate {ledger.acked_records[record_id]}"
        one_record = next(iter(ids))

        statuses: dict[str, int] = {}
        for request in http.get("/patient/requests", headers=patient).json():
            request_id, status = request["request_id"], request["status"]
            statuses[status] = statuses.get(status, 0) + 1
            if request_id not in ledger.requests:
                continue  # its 201 was lost with the process: a provider would ask again
            provider = providers[ledger.requests[request_id]]
            url = f"/provider/patients/{handle}/records/{one_record}?purpose=TREAT"
            if request_id in ledger.acked_grants:
                assert status == "granted", request
            if status == "granted":
                # Granted in the database means the consent stands on chain.
                assert http.get(url, headers=provider).status_code == 200, request
                continue
            assert status in ("pending", "approving"), request
            again = http.post(
                f"/patient/requests/{request_id}/approve",
                files=files("photo", (OBAMA_PROBE,)),
                headers=patient,
            )
            assert again.status_code == 200, again.text
            assert http.get(url, headers=provider).status_code == 200
        # Every request the vault acknowledged is there, and it holds no other.
        assert set(statuses) <= {"granted", "pending", "approving"}
        listed_requests = {
            r["request_id"] for r in http.get("/patient/requests", headers=patient).json()
        }
        assert listed_requests == set(ledger.requests)
        verified = run_vault(["audit", "verify"], served.env)
        assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout
    print(
        f"\n{KILLS} SIGKILLs; {len(ledger.sent_markers)} uploads sent, "
        f"{len(ledger.acked_records)} acknowledged, {len(ids)} stored and whole; "
        f"{len(ledger.requests)} requests: {json.dumps(statuses)}, "
        f"{len(ledger.acked_grants)} grants acknowledged"
    )
