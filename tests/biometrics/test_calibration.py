"""The operating point and the population statistics: shipped data files, the photo
count sealed in each template, and the per-size threshold FaceGate decides with (real
photos, real database)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session, sessionmaker

from vault.biometrics import calibration, keys, population
from vault.biometrics.calibration import OperatingPoint
from vault.biometrics.embedding import FaceEncoder
from vault.biometrics.service import FaceGate
from vault.biometrics.template import _aad, enroll, open_template
from vault.errors import VerificationFailed

from .conftest import OBAMA_ENROLL, OBAMA_PROBE

Embed = Callable[[str], np.ndarray]
Photo = Callable[[str], bytes]


def _point(thresholds: dict[int, float]) -> OperatingPoint:
    return OperatingPoint(
        thresholds=thresholds, target_fmr=1e-3, confidence=0.8, folds=(1,), source="test"
    )


def test_shipped_files_load_and_name_what_they_were_fitted_on() -> None:
    point = calibration.shipped()
    assert sorted(point.thresholds) == [1, 2, 3, 4, 5]
    assert point.target_fmr == 1e-3 and point.confidence == 0.8
    assert point.source == "lfw-dev" and point.folds == (1, 2, 3, 4, 5)
    assert all(point.impostor_attempts[size] > 10_000 for size in point.thresholds)
    stats = population.shipped()
    assert stats.mean.shape == (128,) and stats.covariance.shape == (128, 128)
    assert stats.source == "lfw-dev" and stats.folds == (1, 2, 3, 4, 5) and stats.photos > 4000
    assert np.allclose(stats.covariance, stats.covariance.T)


def test_operating_point_round_trips_and_needs_every_size(tmp_path: Path) -> None:
    point = dataclasses.replace(calibration.shipped(), source="elsewhere")
    point.save(tmp_path / "op.json")
    assert OperatingPoint.from_json((tmp_path / "op.json").read_text()) == point
    with pytest.raises(ValueError):
        _point({1: 0.1, 2: 0.2})


def test_a_template_without_its_size_gets_the_strictest_threshold() -> None:
    point = _point({1: 0.1, 2: 0.3, 3: 0.2, 4: 0.2, 5: 0.2})
    assert point.threshold(1) == 0.1 and point.threshold(3) == 0.2
    assert point.threshold(None) == 0.3 == point.threshold(9)


def test_population_file_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    fitted = population.Population.fit(rng.normal(size=(500, 128)), folds=(2, 3), source="x")
    fitted.save(tmp_path / "p.npz")
    loaded = population.Population.load((tmp_path / "p.npz").read_bytes())
    assert np.array_equal(loaded.mean, fitted.mean)
    assert np.array_equal(loaded.covariance, fitted.covariance)
    assert (loaded.folds, loaded.photos, loaded.source) == ((2, 3), 500, "x")


def test_the_photo_count_is_sealed_in_the_helper_data(embed: Embed, pepper: bytes) -> None:
    for count in (1, 3):
        faces = np.stack([embed(name) for name in OBAMA_ENROLL[:count]])
        template, _ = enroll(faces, pepper=pepper, bind=b"p")
        assert open_template(template, pepper=pepper, bind=b"p").photos == count


def test_a_template_sealed_before_counts_were_kept_still_opens(embed: Embed, pepper: bytes) -> None:
    template, kappa = enroll(embed(OBAMA_ENROLL[0])[None, :], pepper=pepper, bind=b"p")
    aead = AESGCM(keys.helper_key(pepper))
    aad = _aad(b"p", template.salt)
    helper = aead.decrypt(template.helper_nonce, template.helper_ciphertext, aad)
    legacy = dataclasses.replace(
        template, helper_ciphertext=aead.encrypt(template.helper_nonce, helper[:-1], aad)
    )
    opened = open_template(legacy, pepper=pepper, bind=b"p")
    assert opened.photos is None
    assert opened.recover(embed(OBAMA_PROBE)[None, :])[0] == [kappa]


def test_gate_decides_with_the_threshold_of_the_enrollment_size(
    sessions: sessionmaker[Session], pepper: bytes, encoder: FaceEncoder, photo: Photo
) -> None:
    # No score reaches 0.99: a size held to it refuses the genuine face, the others let
    # it in. Which one refuses shows the gate picked the template's own size.
    point = _point({1: 0.99, 2: -1.0, 3: -1.0, 4: -1.0, 5: -1.0})
    gate = FaceGate(session_factory=sessions, pepper=pepper, encoder=encoder, operating_point=point)
    gate.enroll("one-photo", [photo(OBAMA_ENROLL[0])])
    gate.enroll("three-photos", [photo(name) for name in OBAMA_ENROLL])
    assert gate.verify("three-photos", photo(OBAMA_PROBE)).handle == "three-photos"
    with pytest.raises(VerificationFailed):
        gate.verify("one-photo", photo(OBAMA_PROBE))
    assert gate.threshold(1) == 0.99
    overridden = FaceGate(
        session_factory=sessions, pepper=pepper, encoder=encoder, operating_point=point,
        min_score=-1.0,
    )  # fmt: skip
    assert overridden.verify("one-photo", photo(OBAMA_PROBE)).handle == "one-photo"
