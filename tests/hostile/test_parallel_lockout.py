"""Parallel face sign-in attempts through the HTTP API, on SQLite and PostgreSQL.

As many requests as the API has worker threads, released together: the lockout holds
(after one failure at most ``threshold - 1`` more faces are compared, i.e. answered 401;
the rest 429), and no attempt answers 500 (simultaneous first attempts on a new handle
used to race on the counter's insert).
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from tests.api.support import BIDEN_PROBE, OBAMA_ENROLL, OBAMA_PROBE, enroll, photos_field
from vault.runtime import Vault

#: The API's worker threads (anyio's default limiter): the most requests served at once.
PARALLEL = 40


def _all_at_once(client: TestClient, handle: str, probe: str) -> Counter[int]:
    """``PARALLEL`` face sign-ins released together; their status codes."""
    barrier = threading.Barrier(PARALLEL)
    files = photos_field((probe,), "photo")

    def attempt(_: int) -> int:
        barrier.wait()
        return int(client.post(f"/patients/{handle}/sessions", files=files).status_code)

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        return Counter(pool.map(attempt, range(PARALLEL)))


def test_parallel_wrong_faces_are_held_to_the_threshold(client: TestClient, vault: Vault) -> None:
    threshold = vault.settings.face_lockout_threshold
    handle = enroll(client, OBAMA_ENROLL)
    wrong = photos_field((BIDEN_PROBE,), "photo")
    assert client.post(f"/patients/{handle}/sessions", files=wrong).status_code == 401

    codes = _all_at_once(client, handle, BIDEN_PROBE)

    assert codes == {401: threshold - 1, 429: PARALLEL - (threshold - 1)}
    right = photos_field((OBAMA_PROBE,), "photo")
    assert client.post(f"/patients/{handle}/sessions", files=right).status_code == 429


def test_parallel_first_attempts_on_a_new_handle_never_answer_500(
    client: TestClient, vault: Vault
) -> None:
    threshold = vault.settings.face_lockout_threshold

    codes = _all_at_once(client, "nobody-enrolled-this", OBAMA_PROBE)

    assert codes == {401: threshold, 429: PARALLEL - threshold}
