"""Attempt counting under parallel attempts, through FaceGate on SQLite and PostgreSQL.

As many attempts as the API has worker threads start at the same moment (a barrier); the
property is the lockout's: after ``f`` failures, at most ``threshold - f`` more faces are
compared, the counter loses no update, and nothing fails but ``VerificationFailed`` and
``BiometricLockedOut`` (anything else is a 500 at the API).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine

from vault.biometrics.embedding import FaceEncoder
from vault.biometrics.service import FaceGate
from vault.errors import BiometricLockedOut, VerificationFailed
from vault.store.database import make_engine, make_session_factory

from .conftest import OBAMA_ENROLL, OBAMA_PROBE, OTHERS, FakeClock

Photo = Callable[[str], bytes]

#: The API's worker threads (anyio's default limiter): the most attempts served at once.
PARALLEL = 40


@pytest.fixture
def backend_engine(database_url: str) -> Iterator[Engine]:
    """The migrated database of each backend (``tests/biometrics/conftest.py``'s own
    ``engine`` is SQLite only)."""
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def backend_gate(
    backend_engine: Engine, pepper: bytes, encoder: FaceEncoder, clock: FakeClock
) -> FaceGate:
    return FaceGate(
        session_factory=make_session_factory(backend_engine),
        pepper=pepper,
        encoder=encoder,
        clock=clock,
    )


def _all_at_once(gate: FaceGate, handle: str, probe: bytes, count: int) -> Counter[str]:
    """``count`` verifications released together; their outcomes by name."""
    barrier = threading.Barrier(count)

    def attempt(_: int) -> str:
        barrier.wait()
        try:
            gate.verify(handle, probe)
        except (VerificationFailed, BiometricLockedOut) as refused:
            return refused.code
        return "verified"

    with ThreadPoolExecutor(max_workers=count) as pool:
        return Counter(pool.map(attempt, range(count)))


def test_parallel_wrong_faces_after_a_failure_compare_at_most_threshold_minus_one(
    backend_gate: FaceGate, photo: Photo
) -> None:
    backend_gate.enroll("patient-1", [photo(name) for name in OBAMA_ENROLL])
    stranger = photo(OTHERS[1])
    with pytest.raises(VerificationFailed):
        backend_gate.verify("patient-1", stranger)

    outcomes = _all_at_once(backend_gate, "patient-1", stranger, PARALLEL)

    threshold = backend_gate.policy.threshold
    assert outcomes == {
        "verification_failed": threshold - 1,
        "biometric_locked_out": PARALLEL - (threshold - 1),
    }
    # Every compared face was counted; refused ones add nothing while the lock runs.
    assert backend_gate.failed_attempts("patient-1") == threshold
    with pytest.raises(BiometricLockedOut):
        backend_gate.verify("patient-1", photo(OBAMA_PROBE))


def test_parallel_first_attempts_on_a_new_handle_are_all_counted(
    backend_gate: FaceGate, photo: Photo
) -> None:
    outcomes = _all_at_once(backend_gate, "nobody-yet", photo(OTHERS[0]), PARALLEL)

    threshold = backend_gate.policy.threshold
    assert outcomes == {
        "verification_failed": threshold,
        "biometric_locked_out": PARALLEL - threshold,
    }
    assert backend_gate.failed_attempts("nobody-yet") == threshold


def test_parallel_attempts_below_the_threshold_lose_no_update(
    backend_gate: FaceGate, photo: Photo, clock: FakeClock
) -> None:
    threshold = backend_gate.policy.threshold
    outcomes = _all_at_once(backend_gate, "ghost", photo(OTHERS[0]), threshold - 1)
    assert outcomes == {"verification_failed": threshold - 1}
    assert backend_gate.failed_attempts("ghost") == threshold - 1
