"""Unlinkability (ISO/IEC 30136, Gomez-Barrero et al. 2018's D↔sys) of stored templates.

Two templates per person — enrollment A from one photo, enrollment B from another photo
of the same person — and every pair (A_i, B_j) is scored: i = j mated, i ≠ j non-mated.
D↔sys near 0 means the scores cannot tell the two apart (target <= 0.05).

Linkage scores, from the weakest attacker to the strongest:

* **stored record, no pepper**: fraction of equal bits of the two helper ciphertexts (what
  a database thief sees: salt, commitment and ciphertext are all random-looking);
* **pepper holder**: decrypts both helper data and scores the overlap of the selected
  rows (reliable-bit selection keeps the projections far from a bit boundary *for this
  face*: under one transform, two enrollments of one face keep many of the same rows).

Conditions: B under a fresh salt and the same pepper (re-enrollment), B under another
pepper (another vault), and — the control that shows the score *can* link — A and B
under one reused salt (no renewal), where the pepper holder's score must separate.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vault.bench.face_stats import d_sys
from vault.biometrics.template import TemplateParams, enroll, open_template

FloatArray = NDArray[np.float64]
CONDITIONS = ("fresh salt, same pepper", "other pepper", "reused salt (control)")


@dataclass(frozen=True, slots=True)
class StoredView:
    """What each attacker sees of one template: ciphertext bits, selected-row mask."""

    ciphertext_bits: NDArray[np.uint8]
    rows: NDArray[np.bool_]


def _enroll_view(job: tuple[FloatArray, bytes, bytes | None]) -> StoredView:
    embedding, pepper, salt = job
    template, _ = enroll(embedding[None, :], pepper=pepper, bind=b"bench", salt=salt)
    mask = np.zeros(TemplateParams().candidates, dtype=bool)
    mask[open_template(template, pepper=pepper, bind=b"bench").rows] = True
    ciphertext = np.unpackbits(np.frombuffer(template.helper_ciphertext, dtype=np.uint8))
    return StoredView(ciphertext, mask)


@dataclass(frozen=True, slots=True)
class Linkage:
    condition: str
    pairs_mated: int
    pairs_non_mated: int
    d_sys_stored: float
    d_sys_pepper: float
    mated_overlap: float
    non_mated_overlap: float


def pair_scores(a: list[StoredView], b: list[StoredView]) -> tuple[FloatArray, FloatArray]:
    """(stored-record score, pepper-holder score) matrices (len(a), len(b))."""
    rows_a = np.stack([v.rows for v in a]).astype(np.float32)
    rows_b = np.stack([v.rows for v in b]).astype(np.float32)
    overlap = (rows_a @ rows_b.T) / rows_a.sum(axis=1, keepdims=True)
    length = min(min(len(v.ciphertext_bits) for v in a), min(len(v.ciphertext_bits) for v in b))
    bits_a = np.stack([v.ciphertext_bits[:length] for v in a]).astype(np.float32) * 2 - 1
    bits_b = np.stack([v.ciphertext_bits[:length] for v in b]).astype(np.float32) * 2 - 1
    agreement = (bits_a @ bits_b.T / length + 1) / 2
    return agreement.astype(np.float64), overlap.astype(np.float64)


def measure(
    first: FloatArray,
    second: FloatArray,
    *,
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> list[Linkage]:
    """``first[i]``, ``second[i]``: two embeddings of person i (different photos)."""
    pepper, other_pepper, reused = (secrets.token_bytes(32) for _ in range(3))
    reused_salt = secrets.token_bytes(16)
    jobs: list[tuple[FloatArray, bytes, bytes | None]] = (
        [(e, pepper, None) for e in first]
        + [(e, pepper, None) for e in second]
        + [(e, other_pepper, None) for e in second]
        + [(e, reused, reused_salt) for e in first]
        + [(e, reused, reused_salt) for e in second]
    )
    views: list[StoredView] = []
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for view in pool.map(_enroll_view, jobs, chunksize=8):
            views.append(view)
            if progress:
                progress(1)
    n = len(first)
    a, b, b_other, a_reused, b_reused = (views[i * n : (i + 1) * n] for i in range(5))
    out = []
    for condition, (left, right) in zip(
        CONDITIONS, ((a, b), (a, b_other), (a_reused, b_reused)), strict=True
    ):
        stored, overlap = pair_scores(left, right)
        mated = np.eye(n, dtype=bool)
        out.append(
            Linkage(
                condition=condition,
                pairs_mated=n,
                pairs_non_mated=n * (n - 1),
                d_sys_stored=d_sys(stored[mated], stored[~mated]),
                d_sys_pepper=d_sys(overlap[mated], overlap[~mated]),
                mated_overlap=float(overlap[mated].mean()),
                non_mated_overlap=float(overlap[~mated].mean()),
            )
        )
    return out
