"""LFW on disk (a folder given as an argument, never copied) and its embedding cache.

The cache keeps, per photo, the embedding the capture pipeline produced (or the error
code it refused with) and how long that took. It is a benchmark artefact of public
photos written under ``build/``; the vault itself never stores an embedding.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vault.biometrics.embedding import DetectorConfig, FaceEncoder
from vault.errors import VaultError

CACHE_VERSION = 2


@dataclass(frozen=True, slots=True)
class LfwPair:
    name_a: str
    index_a: int
    name_b: str
    index_b: int

    @property
    def genuine(self) -> bool:
        return self.name_a == self.name_b


def photo_key(name: str, index: int) -> str:
    return f"{name}/{name}_{index:04d}.jpg"


def read_pairs(lfw: Path) -> list[LfwPair]:
    """Parse the official ``pairs.txt`` (header ``folds n``, then 3- or 4-field lines)."""
    lines = (lfw / "pairs.txt").read_text().split("\n")
    pairs: list[LfwPair] = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) == 3:
            pairs.append(LfwPair(fields[0], int(fields[1]), fields[0], int(fields[2])))
        elif len(fields) == 4:
            pairs.append(LfwPair(fields[0], int(fields[1]), fields[2], int(fields[3])))
    return pairs


def read_folds(lfw: Path) -> dict[str, int]:
    """Each person's fold (1-based) in ``pairs.txt``: View 2's folds share no person.

    The header says ``folds n``; fold ``f`` is lines ``2n(f-1)+1 ... 2nf`` after it.
    Raises ValueError if a person appears in two folds (not View 2's layout).
    """
    header = (lfw / "pairs.txt").read_text().split("\n", 1)[0].split()
    per_fold = 2 * int(header[1])
    folds: dict[str, int] = {}
    for i, pair in enumerate(read_pairs(lfw)):
        fold = i // per_fold + 1
        for name in (pair.name_a, pair.name_b):
            if folds.setdefault(name, fold) != fold:
                raise ValueError(f"{name} appears in folds {folds[name]} and {fold}")
    return folds


def list_photos(lfw: Path) -> list[str]:
    """Every photo key under ``images/``, sorted (person, then index)."""
    root = lfw / "images"
    return sorted(
        f"{person.name}/{photo.name}"
        for person in root.iterdir()
        if person.is_dir()
        for photo in person.iterdir()
        if photo.suffix.lower() == ".jpg"
    )


@dataclass(slots=True)
class EmbeddingTable:
    """Embeddings of every photo (NaN rows where capture refused, with its code)."""

    keys: list[str]
    vectors: NDArray[np.float64]
    status: list[str]
    seconds: NDArray[np.float64]
    index: dict[str, int]

    @classmethod
    def build(
        cls,
        keys: list[str],
        vectors: NDArray[np.float64],
        status: list[str],
        seconds: NDArray[np.float64],
    ) -> EmbeddingTable:
        return cls(keys, vectors, status, seconds, {k: i for i, k in enumerate(keys)})

    def ok(self, key: str) -> bool:
        i = self.index.get(key)
        return i is not None and self.status[i] == "ok"

    def vector(self, key: str) -> NDArray[np.float64]:
        row: NDArray[np.float64] = self.vectors[self.index[key]]
        return row


def _cache_name(lfw: Path, detector: DetectorConfig) -> str:
    tag = json.dumps([CACHE_VERSION, str(lfw.resolve()), asdict(detector)], sort_keys=True)
    return "embeddings-" + hashlib.sha256(tag.encode()).hexdigest()[:16] + ".npz"


_worker_encoder: FaceEncoder | None = None


def _init_worker(detector: DetectorConfig) -> None:
    global _worker_encoder
    if hasattr(os, "nice"):
        os.nice(5)
    _worker_encoder = FaceEncoder(detector)


def _encode_one(path: str) -> tuple[str, list[float] | None, float]:
    assert _worker_encoder is not None
    photo = Path(path).read_bytes()
    started = time.perf_counter()
    try:
        emb = _worker_encoder.encode(photo)
    except VaultError as exc:
        return exc.code, None, time.perf_counter() - started
    return "ok", emb.vector.tolist(), time.perf_counter() - started


def load_or_extract(
    lfw: Path,
    cache_dir: Path,
    detector: DetectorConfig,
    *,
    workers: int = 2,
    use_cache: bool = True,
    progress: Callable[[int], None] | None = None,
) -> tuple[EmbeddingTable, bool]:
    """Embeddings of every LFW photo through the capture pipeline; ``(table, cached)``."""
    cache = cache_dir / _cache_name(lfw, detector)
    keys = list_photos(lfw)
    if use_cache and cache.exists():
        data = np.load(cache, allow_pickle=False)
        if list(data["keys"]) == keys:
            if progress:
                progress(len(keys))
            return (
                EmbeddingTable.build(
                    keys, data["vectors"], [str(s) for s in data["status"]], data["seconds"]
                ),
                True,
            )
    vectors = np.full((len(keys), 128), np.nan)
    status = ["pending"] * len(keys)
    seconds = np.zeros(len(keys))
    paths = [str(lfw / "images" / k) for k in keys]
    with ProcessPoolExecutor(
        max_workers=max(1, workers), initializer=_init_worker, initargs=(detector,)
    ) as pool:
        for i, (code, vec, took) in enumerate(pool.map(_encode_one, paths, chunksize=16)):
            status[i] = code
            seconds[i] = took
            if vec is not None:
                vectors[i] = vec
            if progress:
                progress(1)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, keys=np.array(keys), vectors=vectors, status=np.array(status), seconds=seconds)
    tmp.replace(cache)
    return EmbeddingTable.build(keys, vectors, status, seconds), False


def people_with(table: EmbeddingTable, keys: Iterable[str]) -> dict[str, list[str]]:
    """Group photo keys by person (the folder name)."""
    out: dict[str, list[str]] = {}
    for key in keys:
        out.setdefault(key.split("/", 1)[0], []).append(key)
    return out
