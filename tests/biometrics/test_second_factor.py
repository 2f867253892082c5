"""The optional PIN: mixed into the keyed transform through Argon2id, so the template
opens only with face and PIN together (real photos, real Argon2id, real database)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import numpy as np
import pytest

from vault.biometrics import keys
from vault.biometrics.service import FaceGate
from vault.biometrics.template import TemplateParams, enroll, open_template
from vault.errors import InvalidInput, VerificationFailed

from .conftest import OBAMA_ENROLL, OBAMA_PROBE

Embed = Callable[[str], np.ndarray]
Photo = Callable[[str], bytes]


def test_template_opens_only_with_face_and_pin(embed: Embed, pepper: bytes) -> None:
    salt = secrets.token_bytes(16)
    faces = np.stack([embed(name) for name in OBAMA_ENROLL])
    right = keys.second_factor("2468", salt)
    template, kappa = enroll(faces, pepper=pepper, bind=b"p", salt=salt, factor=right)
    assert template.params.second_factor
    assert TemplateParams.decode(template.params.encode()) == template.params
    probe = embed(OBAMA_PROBE)[None, :]
    for factor, expected in (
        (right, kappa),
        (keys.second_factor("2469", salt), None),
        (None, None),
    ):
        opened = open_template(template, pepper=pepper, bind=b"p", factor=factor)
        assert opened.recover(probe)[0] == [expected]


def test_the_pin_costs_argon2id_under_the_enrollment_salt() -> None:
    salt = b"s" * 16
    assert keys.second_factor("2468", salt) == keys.second_factor("2468", salt)
    assert keys.second_factor("2468", salt) != keys.second_factor("2468", b"t" * 16)
    assert keys.PIN_MEMORY_KIB >= 64 * 1024 and keys.PIN_TIME_COST >= 3


def test_gate_with_a_pin(gate: FaceGate, photo: Photo) -> None:
    photos = [photo(name) for name in OBAMA_ENROLL]
    gate.enroll("with-pin", photos, pin="2468")
    gate.enroll("without-pin", photos)
    assert gate.verify("with-pin", photo(OBAMA_PROBE), pin="2468").handle == "with-pin"
    for pin in ("1357", None):
        with pytest.raises(VerificationFailed):
            gate.verify("with-pin", photo(OBAMA_PROBE), pin=pin)
    assert gate.failed_attempts("with-pin") == 2
    # Enrollment without a PIN stays possible: the face alone opens it.
    assert gate.verify("without-pin", photo(OBAMA_PROBE)).handle == "without-pin"
    with pytest.raises(InvalidInput):
        gate.verify("with-pin", photo(OBAMA_PROBE), pin="12")
