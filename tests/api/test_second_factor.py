"""The optional PIN over HTTP (real app, real database of each backend, real node, real
photos): enrolled with a PIN, the face alone no longer opens a session; re-enrollment
can drop the PIN."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.support import OBAMA_ENROLL, OBAMA_PROBE, bearer, photos_field


def _session(client: TestClient, handle: str, pin: str | None) -> int:
    data = {} if pin is None else {"pin": pin}
    reply = client.post(
        f"/patients/{handle}/sessions", files=photos_field((OBAMA_PROBE,), "photo"), data=data
    )
    return int(reply.status_code)


def test_enroll_with_a_pin_then_face_and_pin_open_a_session(client: TestClient) -> None:
    reply = client.post("/patients", files=photos_field(OBAMA_ENROLL), data={"pin": "4711"})
    assert reply.status_code == 201, reply.json()
    handle = reply.json()["handle"]
    assert _session(client, handle, None) == 401
    assert _session(client, handle, "4712") == 401
    assert _session(client, handle, "12") == 422  # not a PIN at all: refused before matching
    assert _session(client, handle, "4711") == 200
    token = client.post(
        f"/patients/{handle}/sessions",
        files=photos_field((OBAMA_PROBE,), "photo"),
        data={"pin": "4711"},
    ).json()["token"]
    # Re-enroll without a new PIN: from then on the face alone opens a session.
    renewed = client.post(
        "/patient/reenroll",
        files=photos_field((OBAMA_PROBE,), "photo") + photos_field(OBAMA_ENROLL),
        data={"pin": "4711"},
        headers=bearer(token),
    )
    assert renewed.status_code == 200, renewed.json()
    assert _session(client, handle, None) == 200
