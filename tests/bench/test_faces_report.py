"""vault bench faces' figures from scores: the cross-validation never fits on the fold it
measures, and every line renders (synthetic scores: the arithmetic is under test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vault.bench.face_linkage import CONDITIONS, Linkage
from vault.bench.face_protocol import ATTACKS, SizeScores
from vault.bench.face_stats import margin_threshold
from vault.bench.faces import BenchConfig, BenchReport, cross_validate, render
from vault.biometrics import calibration
from vault.biometrics.template import TemplateParams


def _scores(rng: np.random.Generator) -> SizeScores:
    folds = np.repeat(np.arange(1, 6), 20_000)
    impostor = np.where(rng.random(folds.size) < 0.01, rng.normal(0.1, 0.05, folds.size), -np.inf)
    impostor[folds == 1] += 0.05  # one fold whose impostors score higher than the rest
    genuine_folds = np.repeat(np.arange(1, 6), 100)
    return SizeScores(
        size=3,
        templates=100,
        genuine=rng.normal(0.35, 0.05, genuine_folds.size),
        genuine_fold=genuine_folds,
        genuine_template=np.repeat(np.arange(100), 5),
        impostor=impostor,
        impostor_fold=folds,
        unprotected_genuine=-rng.random(genuine_folds.size) * 0.5,
        unprotected_impostor=-0.4 - rng.random(folds.size) * 0.5,
        attacks=dict.fromkeys(ATTACKS, 0),
        enroll_seconds=[0.05] * 100,
        decision_seconds=[0.015] * 100,
    )


def test_cross_validation_fits_each_threshold_without_its_fold() -> None:
    scores = _scores(np.random.default_rng(0))
    point = calibration.shipped()
    cv = cross_validate(scores, point)
    for fold, threshold in cv.thresholds.items():
        others = scores.impostor[scores.impostor_fold != fold]
        assert threshold == margin_threshold(others, point.target_fmr, point.confidence)
    held_out = scores.impostor[scores.impostor_fold == 1]
    assert cv.fmr.attempts == len(scores.impostor) and cv.fnmr.attempts == len(scores.genuine)
    # The odd fold, measured at a threshold fitted on the others, exceeds the target.
    assert float(np.mean(held_out > cv.thresholds[1])) > point.target_fmr


def test_every_line_renders(tmp_path: Path) -> None:
    scores = _scores(np.random.default_rng(1))
    point = calibration.shipped()
    linkage = [Linkage(c, 10, 90, 0.01, 0.02, 0.5, 0.5) for c in CONDITIONS]
    report = BenchReport(
        BenchConfig(Path("lfw-dev"), tmp_path), TemplateParams(), point, {3: scores},
        {3: cross_validate(scores, point)}, 0, linkage, True, {"250x250": (0.1, 0.1)},
        (0.17, 0.18), tmp_path / "det.png", 1.0,
    )  # fmt: skip
    text = "\n".join(render(report))
    assert "3-photo templates: 100 templates, 500 genuine and 100000 impostor attempts" in text
    assert f"at the shipped threshold {point.threshold(3):.4f}" in text
    assert "in-sample" in text and "cross-validated" in text and "transaction" in text
    assert "D<->sys" in text and "second factor" in text and "FIDO" in text
