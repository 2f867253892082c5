"""Embedding -> keyed, unbiased soft bits (the binarization of the fuzzy commitment).

Each bit is ``sin(ω · (w · z) / sigma_w) < 0`` where ``z`` is the L2-normalised embedding
minus the population mean, ``w`` a row of the enrollment's keyed Gaussian matrix and
``sigma_w`` the population spread of ``w · z``. Why this shape (measured on lfw-dev, see
docs/biometrics.md):

* signs of centred projections (SimHash) are unbiased but track the *angle* between
  centred vectors, a poor comparator for these embeddings (FNMR 16 % at FMR 0.1 %);
* signs of uncentred projections track the good comparator but are heavily biased;
* a periodic function of the projection tracks the *Euclidean* distance between
  normalised embeddings (a shift-invariant kernel, Raginsky & Lazebnik 2009), which is
  the good comparator; taking ``sin`` of a zero-centred, symmetric projection makes
  every bit balanced over the population (P(bit = 1) = 1/2), so no bit value is a
  population-wide default ("wolf") and the helper data does not give the bits away.

The soft value ``sin(...)`` itself feeds the soft-decision decoder at verification.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

from vault.biometrics.population import EMBEDDING_DIM, Population, shipped

FloatArray = NDArray[np.float64]

#: AES blocks of keystream per projection row (64 pairs of 32-bit uniforms -> 128 normals).
_BLOCKS_PER_ROW = EMBEDDING_DIM * 4 // 16


def normalise(embeddings: FloatArray, mean: FloatArray) -> FloatArray:
    """L2-normalise and centre on the population mean: (…, 128) -> (…, 128)."""
    e = np.asarray(embeddings, dtype=np.float64)
    unit = e / np.linalg.norm(e, axis=-1, keepdims=True)
    centred: FloatArray = unit - mean
    return centred


def keyed_rows(key: bytes, rows: NDArray[np.int64]) -> FloatArray:
    """Rows ``rows`` of the unbounded keyed Gaussian matrix: (len(rows), 128).

    Row ``r`` comes from AES-256 blocks ``r * 32 ... r * 32 + 31`` under ``key`` (a
    counter-mode keystream, computed as ECB over the counters so that verification
    regenerates only the rows it needs), turned into normals by Box-Muller on 32-bit
    uniforms.
    """
    rows = np.asarray(rows, dtype=np.int64)
    counters = (rows[:, None] * _BLOCKS_PER_ROW + np.arange(_BLOCKS_PER_ROW)[None, :]).ravel()
    blocks = np.zeros((counters.size, 2), dtype=">u8")
    blocks[:, 1] = counters.astype(np.uint64)
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - CTR keystream
    raw = encryptor.update(blocks.tobytes()) + encryptor.finalize()
    words = np.frombuffer(raw, dtype="<u4").reshape(rows.size, 2, EMBEDDING_DIM // 2)
    # float32 transcendentals: twice as fast, and a last-bit difference between CPUs
    # moves a projection by ~1e-7 — nothing next to a face's own variation.
    u1 = (words[:, 0].astype(np.float32) + np.float32(1.0)) * np.float32(2.0**-32)  # (0, 1]
    u2 = words[:, 1].astype(np.float32) * np.float32(2.0 * np.pi * 2.0**-32)
    radius = np.sqrt(np.float32(-2.0) * np.log(u1))
    pair = np.concatenate([radius * np.cos(u2), radius * np.sin(u2)], axis=1)
    gaussian: FloatArray = pair.astype(np.float64)
    return gaussian


@dataclass(frozen=True, slots=True)
class KeyedProjection:
    """Selected rows of one enrollment's keyed transform, scaled to unit population spread."""

    matrix: FloatArray  # (rows, 128), already divided by sigma_w
    frequency: float
    mean: FloatArray  # the population mean the embeddings are centred on
    kind: str = "sin"

    @classmethod
    def build(
        cls,
        key: bytes,
        rows: NDArray[np.int64],
        frequency: float,
        kind: str = "sin",
        population: Population | None = None,
    ) -> KeyedProjection:
        """``population``: the shipped statistics unless a benchmark fits its own."""
        population = population or shipped()
        w = keyed_rows(key, rows)
        w32 = w.astype(np.float32)
        cov32 = population.covariance.astype(np.float32)
        spread = np.sqrt(np.sum((w32 @ cov32) * w32, axis=1, dtype=np.float64))
        return cls(matrix=w / spread[:, None], frequency=frequency, mean=population.mean, kind=kind)

    def soft(self, embeddings: FloatArray) -> FloatArray:
        """Soft bits (…, rows); the bit is 1 where the value is negative.

        ``sin``: values in [-1, 1]. ``sign`` (SimHash, measured for comparison): the
        projection in population standard deviations, clipped to [-3, 3].
        """
        projected = normalise(embeddings, self.mean) @ self.matrix.T
        if self.kind == "sign":
            clipped: FloatArray = np.clip(projected, -3.0, 3.0)
            return clipped
        values: FloatArray = np.sin(self.frequency * projected)
        return values
