"""The operating point: the match-score threshold per number of enrollment photos.

A template opens (κ recovered) up to the code's own false-match rate; the match score,
known only once κ opened, then holds the decision to the target FMR. How far apart a
genuine probe and its template are depends on how many photos were averaged at
enrollment, so one threshold cannot fit every enrollment size: 1-photo templates need a
looser one than 3-photo templates for the same FMR (measured on lfw-dev, see
docs/biometrics.md).

The shipped thresholds (``data/operating_point.json``) are fitted by
``python -m vault.bench.calibration_fit`` on lfw-dev with a margin: each keeps the upper
80 % (one-sided Clopper-Pearson) confidence bound of the FMR on the folds it was fitted
on at or below the target. The file names those folds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

MAX_PHOTOS = 5


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """Score thresholds by enrollment size (1..5 photos), and how they were chosen."""

    thresholds: dict[int, float]
    target_fmr: float
    confidence: float
    folds: tuple[int, ...]
    source: str
    #: Attempts each threshold was fitted on, for the record (photos -> count).
    impostor_attempts: dict[int, int] = field(default_factory=dict)
    genuine_attempts: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.thresholds) != set(range(1, MAX_PHOTOS + 1)):
            raise ValueError("an operating point needs a threshold for 1 to 5 photos")

    def threshold(self, photos: int | None) -> float:
        """The score a probe must exceed for a template of ``photos`` photos.

        A template that does not say its size (sealed before sizes were kept) gets the
        strictest threshold: a false non-match is recoverable, a false match is not.
        """
        if photos is None or photos not in self.thresholds:
            return max(self.thresholds.values())
        return self.thresholds[photos]

    def to_json(self) -> str:
        return json.dumps(
            {
                "target_fmr": self.target_fmr,
                "confidence": self.confidence,
                "folds": list(self.folds),
                "source": self.source,
                "thresholds": {str(k): v for k, v in sorted(self.thresholds.items())},
                "impostor_attempts": {str(k): v for k, v in sorted(self.impostor_attempts.items())},
                "genuine_attempts": {str(k): v for k, v in sorted(self.genuine_attempts.items())},
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> OperatingPoint:
        data: dict[str, Any] = json.loads(text)
        return cls(
            thresholds={int(k): float(v) for k, v in data["thresholds"].items()},
            target_fmr=float(data["target_fmr"]),
            confidence=float(data["confidence"]),
            folds=tuple(int(f) for f in data["folds"]),
            source=str(data["source"]),
            impostor_attempts={int(k): int(v) for k, v in data["impostor_attempts"].items()},
            genuine_attempts={int(k): int(v) for k, v in data["genuine_attempts"].items()},
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")


@cache
def shipped() -> OperatingPoint:
    """The thresholds this version verifies with (unless Settings override them)."""
    data = files("vault.biometrics").joinpath("data/operating_point.json").read_text()
    return OperatingPoint.from_json(data)
