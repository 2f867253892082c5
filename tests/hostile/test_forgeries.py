"""Replays and forgeries through the API: each refused with a clear code.

Covered elsewhere and not repeated here (see docs/security-tests.md): SIWE domain, chain
id, expiry and wrong signer (tests/auth/test_siwe_login.py); token tampering, other kind,
other key (tests/auth/test_tokens.py); consent replay, expired and wrong-signer consent on
chain (tests/chain/test_reverts.py, tests/chain/test_relayer.py); consent signed for
another chain id or another contract, malleable twins, rotated keys
(contracts/test/ConsentRegistry.Signatures.t.sol); flipped and swapped ciphertext in the
records service (tests/records/test_integrity.py).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.api.support import (
    BIDEN_ENROLL,
    BIDEN_PROBE,
    OBAMA_PROBE,
    bearer,
    patient_session,
    photos_field,
)
from tests.api.support import enroll as enroll_patient
from tests.hostile.conftest import Actors
from vault.auth.tokens import SubjectKind, TokenIssuer
from vault.crypto.secret_files import load_or_create_secret
from vault.store.record_models import RecordVersionRow


def _fingerprint(root: Path) -> set[tuple[str, int]]:
    return {(str(p), p.stat().st_size) for p in root.rglob("*") if p.is_file()}


def test_reused_siwe_message_and_nonce_are_refused(actors: Actors) -> None:
    from datetime import UTC, datetime, timedelta

    from eth_account.messages import encode_defunct
    from siwe import SiweMessage

    client = actors.client
    nonce = client.get("/provider/nonce").json()
    now = datetime.now(UTC)
    message = SiweMessage(
        domain=nonce["domain"],
        address=actors.provider.address,
        uri=f"http://{nonce['domain']}",
        version="1",
        chain_id=nonce["chain_id"],
        issued_at=now.isoformat().replace("+00:00", "Z"),
        expiration_time=(now + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
        nonce=nonce["nonce"],
    ).prepare_message()
    signature = actors.provider.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    body = {"message": message, "signature": signature}
    assert client.post("/provider/sessions", json=body).status_code == 200
    replay = client.post("/provider/sessions", json=body)
    assert replay.status_code == 401, replay.json()
    # The same nonce in a freshly signed message: burned too.
    later = (now + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    again = re.sub(r"Issued At: .*", f"Issued At: {later}", message)
    assert again != message
    resigned = actors.provider.sign_message(encode_defunct(text=again)).signature.to_0x_hex()
    reuse = client.post("/provider/sessions", json={"message": again, "signature": resigned})
    assert reuse.status_code == 401, reuse.json()


def test_approving_the_same_request_twice_relays_nothing_new(actors: Actors) -> None:
    client = actors.client
    provider, patient = bearer(actors.provider_token), bearer(actors.patient_token)
    made = client.post(
        "/provider/requests",
        json={
            "patient": actors.handle,
            "scope": "Condition",
            "purpose": "TREAT",
            "duration_seconds": 600,
        },
        headers=provider,
    )
    assert made.status_code == 201, made.json()
    url = f"/patient/requests/{made.json()['request_id']}/approve"
    first = client.post(url, files=photos_field((OBAMA_PROBE,), "photo"), headers=patient)
    assert first.status_code == 200, first.json()
    second = client.post(url, files=photos_field((OBAMA_PROBE,), "photo"), headers=patient)
    assert second.status_code == 409, second.json()
    assert second.json()["code"]


def test_tokens_for_another_subject_kind_or_time_are_refused(actors: Actors) -> None:
    client = actors.client
    other = enroll_patient(client, BIDEN_ENROLL)
    other_token = bearer(patient_session(client, other, BIDEN_PROBE))
    # Another patient's record id with my token: not found (existence not revealed).
    mine = client.get(f"/patient/records/{actors.record_id}", headers=other_token)
    assert mine.status_code == 404 and mine.json()["code"] in {"not_found", "record_not_found"}
    # A patient token on provider routes, a provider token on patient routes.
    assert client.get("/provider/requests", headers=bearer(actors.patient_token)).status_code == 401
    assert client.get("/patient/records", headers=bearer(actors.provider_token)).status_code == 401
    # Tokens are not admin tokens.
    assert (
        client.post("/admin/audit/anchor", headers=bearer(actors.patient_token)).status_code == 401
    )
    # An expired token under the vault's real key, built with a clock an hour back.
    settings = actors.vault.settings
    key = load_or_create_secret(settings.resolved_token_key_file)
    past = TokenIssuer(key=key, ttl_seconds=60, clock=lambda: time.time() - 3600)
    expired, _ = past.issue(SubjectKind.PATIENT, actors.handle)
    reply = client.get("/patient/records", headers=bearer(expired))
    assert reply.status_code == 401 and reply.json()["code"] == "authentication_failed"
    # The same key, a live clock: accepted (the refusal above was the expiry).
    live, _ = TokenIssuer(key=key, ttl_seconds=60).issue(SubjectKind.PATIENT, actors.handle)
    assert client.get("/patient/records", headers=bearer(live)).status_code == 200
    # A provider token naming a provider who never signed in, under the real key: it is
    # a valid session, but the chain grants it nothing.
    forged, _ = TokenIssuer(key=key, ttl_seconds=60).issue(SubjectKind.PROVIDER, "0x" + "11" * 20)
    read = client.get(
        f"/provider/patients/{actors.handle}/records/{actors.record_id}?purpose=TREAT",
        headers=bearer(forged),
    )
    assert read.status_code == 403


def test_the_provider_read_route_checks_its_bearer_token_like_every_other_route(
    actors: Actors,
) -> None:
    """The hot read route parses its Authorization header itself (it solves no FastAPI
    dependencies): it must refuse exactly what the HTTPBearer routes refuse."""
    client = actors.client
    url = f"/provider/patients/{actors.handle}/records/{actors.record_id}?purpose=TREAT"
    key = load_or_create_secret(actors.vault.settings.resolved_token_key_file)
    past = TokenIssuer(key=key, ttl_seconds=60, clock=lambda: time.time() - 3600)
    expired, _ = past.issue(SubjectKind.PROVIDER, actors.provider.address)
    refused = {
        "no header": {},
        "basic scheme": {"Authorization": "Basic " + actors.provider_token},
        "empty token": {"Authorization": "Bearer "},
        "scheme only": {"Authorization": "Bearer"},
        "garbage": {"Authorization": "Bearer not.a.token"},
        "patient token": bearer(actors.patient_token),
        "expired provider token": bearer(expired),
    }
    for case, headers in refused.items():
        reply = client.get(url, headers=headers)
        assert reply.status_code == 401, case
        assert reply.json()["code"] == "authentication_failed", case
    # The same route, the real token, any case of the scheme: the consent on chain decides.
    assert client.get(
        url, headers={"Authorization": "bearer " + actors.provider_token}
    ).status_code in {200, 403}


def test_the_provider_read_route_validates_its_parameters_like_fastapi(actors: Actors) -> None:
    """The hot read route reads its path and query itself: a missing or overlong purpose
    gets FastAPI's refusal (422 ``invalid_request`` naming the field), a bad code the
    vault's, and percent-encoding is decoded as for every other route."""
    client = actors.client
    base = f"/provider/patients/{actors.handle}/records/{actors.record_id}"
    provider = bearer(actors.provider_token)
    for query, kind in (("", "missing"), ("?purpose=" + "T" * 17, "too long")):
        reply = client.get(base + query, headers=provider)
        assert reply.status_code == 422, kind
        body = reply.json()
        assert body["code"] == "invalid_request", kind
        assert [e["loc"] for e in body["details"]["errors"]] == [["query", "purpose"]], kind
    unknown = client.get(base + "?purpose=NOPE", headers=provider)
    assert unknown.status_code == 422 and unknown.json()["code"] == "invalid_input"
    # Authentication comes first, as with a dependency: no token, no parameter check.
    assert client.get(base).status_code == 401
    # %45 is "E": the same purpose as TREAT, so the chain decides (no consent here: 403).
    encoded = client.get(base + "?purpose=TR%45AT", headers=provider)
    plain = client.get(base + "?purpose=TREAT", headers=provider)
    assert encoded.status_code == plain.status_code and encoded.status_code in {200, 403}


def _blob_of(actors: Actors, record_id: str) -> Path:
    with actors.vault.session_factory() as session:
        key = session.scalars(
            select(RecordVersionRow.blob_key).where(RecordVersionRow.record_id == record_id)
        ).one()
    assert key is not None
    return actors.vault.settings.resolved_blob_dir.joinpath(*key.split("/"))


def test_tampered_and_swapped_ciphertext_are_refused_with_a_code(actors: Actors) -> None:
    client = actors.client
    patient = bearer(actors.patient_token)
    ids = []
    for text in ("first", "second"):
        made = client.post(
            "/patient/records",
            json={"resourceType": "Observation", "status": "final", "code": {"text": text}},
            headers=patient,
        )
        ids.append(made.json()["record_id"])
    assert client.get(f"/patient/records/{ids[0]}", headers=patient).status_code == 200
    first, second = [_blob_of(actors, ids[0])], [_blob_of(actors, ids[1])]
    blobs = {p: p.read_bytes() for p in (*first, *second)}
    # Swap: the second record's ciphertext under the first record's key.
    first[0].write_bytes(blobs[second[0]])
    swapped = client.get(f"/patient/records/{ids[0]}", headers=patient)
    assert 400 <= swapped.status_code < 600 and swapped.status_code != 500, swapped.json()
    assert swapped.json()["code"] == "tamper_detected"
    print(f"\nswapped ciphertext: {swapped.status_code} {swapped.json()['code']}")
    # One flipped byte.
    flipped = bytearray(blobs[first[0]])
    flipped[len(flipped) // 2] ^= 1
    first[0].write_bytes(bytes(flipped))
    tampered = client.get(f"/patient/records/{ids[0]}", headers=patient)
    assert tampered.json()["code"] == "tamper_detected" and tampered.status_code != 500
    first[0].write_bytes(blobs[first[0]])
    assert client.get(f"/patient/records/{ids[0]}", headers=patient).status_code == 200


TRAVERSALS = [
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2fsecrets%2fmaster.keyring",
    "%252e%252e%252f",
    "..\\..\\secrets",
    "....//....//",
    "%00",
    "a" * 300,
]


@pytest.mark.parametrize("evil", TRAVERSALS)
def test_path_traversal_in_ids_is_refused_and_touches_no_file(actors: Actors, evil: str) -> None:
    client = actors.client
    data_dir = actors.vault.settings.resolved_data_dir
    tree = data_dir.parent
    snapshot = _fingerprint(tree)
    patient, provider = bearer(actors.patient_token), bearer(actors.provider_token)
    urls = [
        ("get", f"/patient/records/{evil}", patient),
        ("get", f"/patient/records/{evil}/history", patient),
        ("delete", f"/patient/records/{evil}", patient),
        ("get", f"/provider/patients/{evil}/records?purpose=TREAT", provider),
        ("get", f"/provider/patients/{actors.handle}/records/{evil}?purpose=TREAT", provider),
        ("get", f"/admin/providers/{evil}", {"Authorization": "Bearer " + _admin()}),
    ]
    for method, url, headers in urls:
        reply = getattr(client, method)(url, headers=headers)
        assert 400 <= reply.status_code < 500, (url, reply.status_code, reply.text)
        assert reply.json()["code"], url
    put = client.put(
        f"/patient/records/{evil}",
        json={"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
        headers=patient,
    )
    assert 400 <= put.status_code < 500, put.text
    photo = photos_field((OBAMA_PROBE,), "photo")
    session = client.post(f"/patients/{evil}/sessions", files=photo)
    assert 400 <= session.status_code < 500, session.text
    changed = {p for p, _ in _fingerprint(tree) ^ snapshot}
    # Only the database (audit entries of refused reads) may change, nothing else.
    assert all(Path(p).name.startswith("vault.db") for p in changed), changed


def _admin() -> str:
    from tests.api.support import ADMIN_TOKEN

    return ADMIN_TOKEN
