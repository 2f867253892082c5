"""Biometric fixtures: real sample photos, the real face_recognition encoder, a real
SQLite database migrated by Alembic, a real pepper, and a clock tests can move."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from vault.biometrics.embedding import FaceEncoder
from vault.biometrics.service import FaceGate
from vault.store.database import make_engine, make_session_factory
from vault.store.migrate import upgrade

FACES = Path(__file__).resolve().parents[2] / "sample_data" / "faces"

#: Enrollment and probe photos of one person (Obama), all different shots.
OBAMA_ENROLL = ("people/obama/obama2.jpg", "people/obama/obama_test1.jpg", "obama_partial_face.jpg")
OBAMA_PROBE = "people/obama/obama.jpg"
OTHERS = (
    "people/biden/biden.jpg",
    "people/kit_harington/john1.jpeg",
    "people/rose_leslie/img1.jpg",
    "people/alex_lacamoire/img1.jpg",
    "lin-manuel-miranda.png",
)


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    return FACES


@pytest.fixture(scope="session")
def photo() -> Callable[[str], bytes]:
    def load(name: str) -> bytes:
        return (FACES / name).read_bytes()

    return load


@pytest.fixture(scope="session")
def encoder() -> FaceEncoder:
    return FaceEncoder()


@pytest.fixture(scope="session")
def embed(encoder: FaceEncoder, photo: Callable[[str], bytes]) -> Callable[[str], np.ndarray]:
    cache: dict[str, np.ndarray] = {}

    def get(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = encoder.encode(photo(name)).vector
        return cache[name]

    return get


@pytest.fixture
def pepper() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """SQLite only, on purpose: these tests are about faces (a few seconds of CPU each);
    the database side of the face gate, the lockout counters, runs on both backends in
    test_lockout.py."""
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'vault.db'}")
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@dataclass
class FakeClock:
    """Time for lockout tests (time is not the property under test elsewhere)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2030, 1, 1, tzinfo=UTC))


@pytest.fixture
def gate(
    sessions: sessionmaker[Session], pepper: bytes, encoder: FaceEncoder, clock: FakeClock
) -> FaceGate:
    return FaceGate(session_factory=sessions, pepper=pepper, encoder=encoder, clock=clock)
