"""Crypto fixtures: the test vectors and a deterministic random source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).with_name("envelope_vectors.json")


class PatternRandom:
    """The deterministic source the vectors were made with (see the file's description)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.offset = 0

    def __call__(self, k: int) -> bytes:
        out = bytes((self.seed * 31 + self.offset + i) % 256 for i in range(k))
        self.offset += k
        return out


@pytest.fixture(scope="session")
def envelope_vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text())["vectors"]
    return vectors


@pytest.fixture
def pattern_random() -> type[PatternRandom]:
    return PatternRandom
