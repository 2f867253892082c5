"""Helpers for API tests: sample photos, sign-in, enrollment."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from siwe import SiweMessage

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
FACES = SAMPLE / "faces"
OBAMA_ENROLL = ("people/obama/obama2.jpg", "people/obama/obama_test1.jpg", "obama_partial_face.jpg")
OBAMA_PROBE = "people/obama/obama.jpg"
BIDEN_ENROLL = ("people/biden/biden.jpg",)
BIDEN_PROBE = "people/biden/biden2.jpg"
ADMIN_TOKEN = "admin-" + secrets.token_hex(16)


def photo(name: str) -> bytes:
    return (FACES / name).read_bytes()


def photos_field(
    names: tuple[str, ...], field: str = "photos"
) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (name.rsplit("/", 1)[-1], photo(name), "image/jpeg")) for name in names]


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in_provider(client: TestClient, account: LocalAccount) -> str:
    nonce = client.get("/provider/nonce").json()
    now = datetime.now(UTC)
    message = SiweMessage(
        domain=nonce["domain"],
        address=account.address,
        uri=f"http://{nonce['domain']}",
        version="1",
        chain_id=nonce["chain_id"],
        issued_at=now.isoformat().replace("+00:00", "Z"),
        expiration_time=(now + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
        nonce=nonce["nonce"],
        statement="Sign in to the health data vault.",
    ).prepare_message()
    signature = account.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    reply = client.post("/provider/sessions", json={"message": message, "signature": signature})
    assert reply.status_code == 200, reply.json()
    return str(reply.json()["token"])


def enroll(client: TestClient, names: tuple[str, ...]) -> str:
    reply = client.post("/patients", files=photos_field(names))
    assert reply.status_code == 201, reply.json()
    return str(reply.json()["handle"])


def patient_session(client: TestClient, handle: str, probe: str) -> str:
    reply = client.post(f"/patients/{handle}/sessions", files=photos_field((probe,), "photo"))
    assert reply.status_code == 200, reply.json()
    return str(reply.json()["token"])
