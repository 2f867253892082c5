"""Population statistics of L2-normalised face_recognition embeddings (a data file).

The mean centres the features and the covariance scales each keyed projection to unit
spread, so that every template bit is balanced over the population (see quantizer.py).
They are not personal data: a mean and a covariance over thousands of public photos.

The shipped statistics (``data/population.npz``) were fitted on all five folds of lfw-dev
by ``python -m vault.bench.population_fit``; the file names the folds and the photo
count. Changing them changes every keyed projection, so templates enrolled under other
statistics stop opening: refit only together with a re-enrollment plan.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
EMBEDDING_DIM = 128


@dataclass(frozen=True, slots=True, eq=False)
class Population:
    """Mean (128,) and covariance (128, 128) of L2-normalised embeddings, with provenance."""

    mean: FloatArray
    covariance: FloatArray
    folds: tuple[int, ...]
    photos: int
    source: str

    @classmethod
    def fit(cls, embeddings: FloatArray, *, folds: tuple[int, ...], source: str) -> Population:
        """Statistics of ``embeddings`` (N, 128), raw face_recognition vectors."""
        unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        mean = unit.mean(axis=0)
        # float32 storage: the covariance only scales projections, and float32 keeps the
        # file small; the quantizer computes with the float32 values either way.
        covariance = np.cov((unit - mean).T).astype("<f4").astype(np.float64)
        return cls(mean, covariance, tuple(folds), len(unit), source)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            mean=self.mean.astype("<f8"),
            covariance=self.covariance.astype("<f4"),
            folds=np.array(self.folds, dtype=np.int64),
            photos=np.array(self.photos),
            source=np.array(self.source),
        )
        path.write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, data: bytes) -> Population:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            mean = np.asarray(arrays["mean"], dtype=np.float64)
            covariance = np.asarray(arrays["covariance"], dtype=np.float64)
            if mean.shape != (EMBEDDING_DIM,) or covariance.shape != (EMBEDDING_DIM,) * 2:
                raise ValueError("population statistics of the wrong shape")
            return cls(
                mean,
                covariance,
                tuple(int(f) for f in arrays["folds"]),
                int(arrays["photos"]),
                str(arrays["source"]),
            )


@cache
def shipped() -> Population:
    """The statistics every template of this version is enrolled and verified under."""
    return Population.load(files("vault.biometrics").joinpath("data/population.npz").read_bytes())
